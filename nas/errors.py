"""The one base class of the errors ``nas`` raises for bad input (Optuna's ``exceptions.py``
pattern): a caller catches ``NasError`` for any of them, and the CLI prints its one-line
message. Each subclass lives beside the code that raises it."""

from __future__ import annotations


class NasError(ValueError):
    """Bad input: the message says which key or file, what was expected and what was found.
    A ``ValueError`` so code written against the earlier, unrelated subclasses still works.
    ``exit_status`` is the CLI's: 2 for bad input, 1 for a run that failed on its own."""

    exit_status = 2
