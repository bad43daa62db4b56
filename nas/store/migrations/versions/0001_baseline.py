"""Baseline: the ``nas_*`` tables as release b6c471a created them, before the schema had a version.

Written to bring any earlier store up: tables that are missing are created, and columns that
a table lacks (a store written before they were added) are added, nullable, with existing rows
given the column's default. On a store of that release it changes nothing and only stamps it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from nas.store.migrations import add_columns

revision = "0001"
down_revision = None

metadata = sa.MetaData()

sa.Table(
    "nas_searches",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("study_name", sa.String(200), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("fingerprint", sa.String(32), nullable=False, index=True),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("objectives", sa.JSON, nullable=False),
    sa.Column("directions", sa.JSON, nullable=False),
    sa.Column("trials_requested", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False, default="running"),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime, nullable=True),
    sa.Column("wall_seconds", sa.Float, nullable=False, default=0.0),
    sa.Column("resumes", sa.Integer, nullable=False, default=0),
    sa.Column("kind", sa.String(20), nullable=False, default="search"),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("nas_searches.id"), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("driver_token", sa.String(32), nullable=True),
    sa.Column("driver_host", sa.String(255), nullable=True),
    sa.Column("driver_pid", sa.Integer, nullable=True),
    sa.Column("heartbeat_at", sa.DateTime, nullable=True),
)

sa.Table(
    "nas_architectures",
    metadata,
    sa.Column("hash", sa.String(32), primary_key=True),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("params", sa.BigInteger, nullable=True),
    sa.Column("macs", sa.BigInteger, nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

sa.Table(
    "nas_throughput",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("arch_hash", sa.String(32), sa.ForeignKey("nas_architectures.hash"), nullable=False),
    sa.Column("setting_key", sa.Text, nullable=False),
    sa.Column("setting", sa.JSON, nullable=False),
    sa.Column("images_per_s", sa.Float, nullable=False),
    sa.Column("spread", sa.JSON, nullable=False),
    sa.Column("peak_memory_mb", sa.Float, nullable=True),
    sa.Column("device_name", sa.String(200), nullable=False, default=""),
    sa.Column("measured_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("arch_hash", "setting_key"),
)

sa.Table(
    "nas_trials",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "search_id", sa.Integer, sa.ForeignKey("nas_searches.id"), nullable=False, index=True
    ),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("optuna_trial_id", sa.Integer, nullable=False),
    sa.Column("ray_trial_id", sa.String(64), nullable=False, default=""),
    sa.Column("arch_hash", sa.String(32), sa.ForeignKey("nas_architectures.hash"), nullable=True),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("state", sa.String(20), nullable=False, default="RUNNING"),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("accuracy", sa.Float, nullable=True),
    sa.Column("throughput", sa.Float, nullable=True),
    sa.Column("values", sa.JSON, nullable=True),
    sa.Column("epochs_done", sa.Integer, nullable=False, default=0),
    sa.Column("duplicate_of", sa.Integer, nullable=True),
    sa.Column("reference", sa.String(64), nullable=True),
    sa.Column("source_trial", sa.Integer, nullable=True),
    sa.Column("val_size", sa.Integer, nullable=True),
    sa.Column("seeds", sa.Integer, nullable=False, default=1),
    sa.Column("accuracy_low", sa.Float, nullable=True),
    sa.Column("accuracy_high", sa.Float, nullable=True),
    sa.Column("accuracy_std", sa.Float, nullable=True),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime, nullable=True),
    sa.UniqueConstraint("search_id", "number"),
)

sa.Table(
    "nas_epochs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("trial_id", sa.Integer, sa.ForeignKey("nas_trials.id"), nullable=False, index=True),
    sa.Column("epoch", sa.Integer, nullable=False),
    sa.Column("val_top1", sa.Float, nullable=False),
    sa.Column("val_loss", sa.Float, nullable=True),
    sa.Column("train_loss", sa.Float, nullable=True),
    sa.Column("elapsed_s", sa.Float, nullable=True),
    sa.Column("images_per_s", sa.Float, nullable=True),
    sa.Column("recorded_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("trial_id", "epoch"),
)


def upgrade() -> None:
    metadata.create_all(op.get_bind(), checkfirst=True)
    for table in metadata.sorted_tables:
        add_columns(table.name, *table.columns)
