"""SQLAlchemy tables of the search store, kept in the same database as the Optuna study.

Optuna keeps what its samplers need (params, values, states); these tables keep what a user
asks about afterwards: which search, which architecture (spec, hash, size), each measurement
setting's throughput, every epoch of every trial, and why a trial failed. Names carry a ``nas_``
prefix so they never collide with Optuna's own tables. A change here comes with a migration in
``nas/store/migrations/versions`` (see ``nas.store.schema``).
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Search(Base):
    """One ``nas search`` run (possibly resumed several times), tied to one Optuna study."""

    __tablename__ = "nas_searches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_name: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(32), index=True)
    config: Mapped[dict] = mapped_column(JSON)
    objectives: Mapped[list] = mapped_column(JSON)
    directions: Mapped[list] = mapped_column(JSON)
    trials_requested: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="running")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    wall_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    resumes: Mapped[int] = mapped_column(Integer, default=0)
    # "search", or "validation": a higher-fidelity retraining of ``parent_id``'s trials
    kind: Mapped[str] = mapped_column(String(20), default="search")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("nas_searches.id"), nullable=True)
    # why a search ended "failed" (the driver's own error, not a trial's)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # the driver lease (nas.search.lease): which process runs the search, and its last heartbeat
    driver_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    driver_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    driver_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    trials: Mapped[list[Trial]] = relationship(back_populates="search")


class Architecture(Base):
    """A distinct network, keyed by the spec's content hash; measurements are cached on it."""

    __tablename__ = "nas_architectures"

    hash: Mapped[str] = mapped_column(String(32), primary_key=True)
    spec: Mapped[dict] = mapped_column(JSON)
    params: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    macs: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Throughput(Base):
    """Throughput of one architecture under one measurement setting (device, size, precision...).

    ``spread`` holds ``min``, ``max``, ``q25``, ``q75``, ``iqr``, ``relative`` ((max-min)/median)
    and ``relative_iqr`` (iqr/median) over the kept round's timed blocks, and ``rounds`` /
    ``repeats``: how many measurement rounds (each of ``repeats`` blocks) it took to get the
    relative IQR under the setting's threshold. ``node_id`` (Ray's node id) and ``node_host``
    say where it was measured; they are not part of its identity (see ``nas.search.trainable``).
    """

    __tablename__ = "nas_throughput"
    __table_args__ = (UniqueConstraint("arch_hash", "setting_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    arch_hash: Mapped[str] = mapped_column(ForeignKey("nas_architectures.hash"))
    setting_key: Mapped[str] = mapped_column(Text)
    setting: Mapped[dict] = mapped_column(JSON)
    images_per_s: Mapped[float] = mapped_column(Float)
    spread: Mapped[dict] = mapped_column(JSON)
    peak_memory_mb: Mapped[float | None] = mapped_column(Float, nullable=True)
    device_name: Mapped[str] = mapped_column(String(200), default="")
    measured_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # the Ray node it was measured on: id (hex) and hostname/IP
    node_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    node_host: Mapped[str | None] = mapped_column(String(255), nullable=True)


class Trial(Base):
    """One trial of a search, linked to its Optuna trial number.

    ``state`` is Optuna's (COMPLETE, PRUNED, FAIL, RUNNING) or DUPLICATE: a proposal whose
    architecture this search already trained (``duplicate_of``), never trained again nor counted.
    ``reference`` names the seed design a reference trial evaluates; ``source_trial`` is the
    parent search's trial a validation trial retrains. Accuracy comes with its noise: ``val_size``
    validation images per seed, ``seeds`` trained, the 95% Wilson interval of the pooled top-1
    (``accuracy_low``/``accuracy_high``) and the across-seed standard deviation. ``node_id``
    (Ray's node id) and ``node_host`` (its IP) say where the trial ran.
    """

    __tablename__ = "nas_trials"
    __table_args__ = (UniqueConstraint("search_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("nas_searches.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    optuna_trial_id: Mapped[int] = mapped_column(Integer)
    ray_trial_id: Mapped[str] = mapped_column(String(64), default="")
    arch_hash: Mapped[str | None] = mapped_column(
        ForeignKey("nas_architectures.hash"), nullable=True
    )
    params: Mapped[dict] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(20), default="RUNNING")
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    accuracy: Mapped[float | None] = mapped_column(Float, nullable=True)
    throughput: Mapped[float | None] = mapped_column(Float, nullable=True)
    values: Mapped[list | None] = mapped_column(JSON, nullable=True)
    epochs_done: Mapped[int] = mapped_column(Integer, default=0)
    duplicate_of: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reference: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source_trial: Mapped[int | None] = mapped_column(Integer, nullable=True)
    val_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    seeds: Mapped[int] = mapped_column(Integer, default=1)
    accuracy_low: Mapped[float | None] = mapped_column(Float, nullable=True)
    accuracy_high: Mapped[float | None] = mapped_column(Float, nullable=True)
    accuracy_std: Mapped[float | None] = mapped_column(Float, nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # the Ray node it ran on: id (hex) and hostname/IP
    node_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    node_host: Mapped[str | None] = mapped_column(String(255), nullable=True)

    search: Mapped[Search] = relationship(back_populates="trials")
    architecture: Mapped[Architecture | None] = relationship()
    epochs: Mapped[list[EpochMetric]] = relationship(
        back_populates="trial", order_by="EpochMetric.epoch"
    )


class EpochMetric(Base):
    """Validation and speed figures after one proxy-training epoch."""

    __tablename__ = "nas_epochs"
    __table_args__ = (UniqueConstraint("trial_id", "epoch"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("nas_trials.id"), index=True)
    epoch: Mapped[int] = mapped_column(Integer)
    val_top1: Mapped[float] = mapped_column(Float)
    val_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    train_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    elapsed_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    images_per_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    trial: Mapped[Trial] = relationship(back_populates="epochs")
