"""Subcommands of the ``nas`` CLI, one module per area."""
