"""The one base class of the errors ``nas`` raises for bad input (Optuna's ``exceptions.py``
pattern): a caller catches ``NasError`` for any of them, and the CLI prints its one-line
message. Each subclass lives beside the code that raises it."""

from __future__ import annotations


class NasError(ValueError):
    """Bad input: the message says which key or file, what was expected and what was found.
    A ``ValueError`` so code written against the earlier, unrelated subclasses still works."""
