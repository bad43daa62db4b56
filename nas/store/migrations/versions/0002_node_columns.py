"""The Ray node each trial ran on and each throughput figure was measured on (id and host), so
a multi-node search's results can be traced to their machine."""

from __future__ import annotations

import sqlalchemy as sa

from nas.store.migrations import add_columns

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    for table in ("nas_trials", "nas_throughput"):
        add_columns(
            table, sa.Column("node_id", sa.String(64)), sa.Column("node_host", sa.String(255))
        )
