"""The revisions, one file each; Alembic reads them by file, not by import."""
