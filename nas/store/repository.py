"""Reads and writes of the search store; the only code that touches the ``nas_*`` tables."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from nas.store.engine import make_engine
from nas.store.models import Architecture, EpochMetric, Search, Throughput, Trial, utcnow
from nas.store.schema import SchemaState, check_readable, schema_state, upgrade


@dataclass(frozen=True)
class CachedMeasurement:
    """What the store already knows about an architecture under one throughput setting."""

    params: int | None
    macs: int | None
    images_per_s: float | None
    spread: dict[str, float] | None
    peak_memory_mb: float | None


class SearchStore:
    """Search records in a SQL database.

    A writer creates the tables on first use and migrates an older store to this code's schema
    (``nas.store.schema``). A ``read_only`` reader never writes: a store of an older schema is
    refused with ``StoreOutdated`` (run ``nas db upgrade``) unless ``allow_outdated`` (a reader
    that reads around missing columns, the dashboard); one of a newer nas with ``StoreTooNew``.
    """

    def __init__(self, url: str, read_only: bool = False, allow_outdated: bool = False):
        self.url = url
        self.read_only = read_only
        self.engine = make_engine(url, read_only=read_only)
        try:
            if read_only:
                check_readable(schema_state(self.engine), url, allow_outdated)
            else:
                upgrade(self.engine, url)
        except BaseException:
            self.engine.dispose()
            raise
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def schema(self) -> SchemaState:
        """The store's schema revision now, against this code's."""
        return schema_state(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()

    # searches ------------------------------------------------------------------------------
    def create_search(self, **fields: Any) -> Search:
        with self.session() as s:
            search = Search(**fields)
            s.add(search)
            s.flush()
            return search

    def find_resumable(self, fingerprint: str) -> Search | None:
        """The newest unfinished search started with the same configuration."""
        with self.session() as s:
            return s.scalars(
                select(Search)
                .where(Search.fingerprint == fingerprint, Search.status != "finished")
                .order_by(Search.id.desc())
            ).first()

    def searches(self) -> list[Search]:
        with self.session() as s:
            return list(s.scalars(select(Search).order_by(Search.id)))

    def get_search(self, study_name: str) -> Search | None:
        with self.session() as s:
            return s.scalars(select(Search).where(Search.study_name == study_name)).first()

    def update_search(self, search_id: int, add_wall_seconds: float = 0.0, **fields: Any) -> None:
        with self.session() as s:
            search = s.get(Search, search_id)
            for key, value in fields.items():
                setattr(search, key, value)
            search.wall_seconds += add_wall_seconds

    def claim_driver(self, search_id: int, seen_token: str | None, **lease: Any) -> bool:
        """Write the driver lease ``lease`` (token, host, pid, heartbeat) if the search's token
        is still ``seen_token``: a compare-and-swap, so of two drivers claiming at once one wins."""
        with self.session() as s:
            result = s.execute(
                update(Search).where(Search.id == search_id, _token_is(seen_token)).values(**lease)
            )
            return result.rowcount == 1

    # architectures and measurements ----------------------------------------------------------
    def cached_measurement(self, arch_hash: str, setting_key: str) -> CachedMeasurement | None:
        with self.session() as s:
            arch = s.get(Architecture, arch_hash)
            if arch is None:
                return None
            thr = s.scalars(
                select(Throughput).where(
                    Throughput.arch_hash == arch_hash, Throughput.setting_key == setting_key
                )
            ).first()
            return CachedMeasurement(
                arch.params,
                arch.macs,
                thr.images_per_s if thr else None,
                thr.spread if thr else None,
                thr.peak_memory_mb if thr else None,
            )

    def save_architecture(
        self, arch_hash: str, spec: dict, params: int | None, macs: int | None
    ) -> None:
        with self.session() as s:
            arch = s.get(Architecture, arch_hash)
            if arch is None:
                s.add(Architecture(hash=arch_hash, spec=spec, params=params, macs=macs))
            else:
                arch.params = params if params is not None else arch.params
                arch.macs = macs if macs is not None else arch.macs

    def save_throughput(
        self,
        arch_hash: str,
        setting_key: str,
        setting: dict,
        images_per_s: float,
        spread: dict[str, float],
        peak_memory_mb: float | None,
        device_name: str,
        node_id: str | None = None,
        node_host: str | None = None,
    ) -> None:
        with self.session() as s:
            row = s.scalars(
                select(Throughput).where(
                    Throughput.arch_hash == arch_hash, Throughput.setting_key == setting_key
                )
            ).first()
            if row is None:
                row = Throughput(arch_hash=arch_hash, setting_key=setting_key)
                s.add(row)
            row.setting = setting
            row.images_per_s = images_per_s
            row.spread = spread
            row.peak_memory_mb = peak_memory_mb
            row.device_name = device_name
            row.node_id = node_id
            row.node_host = node_host
            row.measured_at = utcnow()

    # trials --------------------------------------------------------------------------------
    def add_trial(self, search_id: int, number: int, **fields: Any) -> None:
        with self.session() as s:
            s.add(Trial(search_id=search_id, number=number, **fields))

    def update_trial(self, search_id: int, number: int, **fields: Any) -> None:
        with self.session() as s:
            trial = self._trial(s, search_id, number)
            for key, value in fields.items():
                setattr(trial, key, value)
            if fields.get("state") in ("COMPLETE", "PRUNED", "FAIL"):
                trial.finished_at = utcnow()

    def add_epoch(self, search_id: int, number: int, epoch: int, **metrics: Any) -> None:
        with self.session() as s:
            trial = self._trial(s, search_id, number)
            exists = s.scalars(
                select(EpochMetric).where(
                    EpochMetric.trial_id == trial.id, EpochMetric.epoch == epoch
                )
            ).first()
            if exists is None:
                s.add(EpochMetric(trial_id=trial.id, epoch=epoch, **metrics))
            trial.epochs_done = max(trial.epochs_done, epoch)

    def trials(self, search_id: int) -> list[Trial]:
        with self.session() as s:
            return list(
                s.scalars(select(Trial).where(Trial.search_id == search_id).order_by(Trial.number))
            )

    def epochs(self, search_id: int) -> list[tuple[int, EpochMetric]]:
        """(trial number, epoch row) for every epoch of every trial of a search."""
        with self.session() as s:
            rows = s.execute(
                select(Trial.number, EpochMetric)
                .join(EpochMetric, EpochMetric.trial_id == Trial.id)
                .where(Trial.search_id == search_id)
                .order_by(Trial.number, EpochMetric.epoch)
            )
            return [(number, epoch) for number, epoch in rows]

    def architecture(self, arch_hash: str) -> Architecture | None:
        with self.session() as s:
            return s.get(Architecture, arch_hash)

    def throughputs(self, arch_hash: str) -> list[Throughput]:
        with self.session() as s:
            return list(s.scalars(select(Throughput).where(Throughput.arch_hash == arch_hash)))

    def fail_running_trials(self, search_id: int, reason: str) -> list[int]:
        """Mark trials left RUNNING by a killed driver as FAIL; returns their numbers."""
        with self.session() as s:
            running = s.scalars(
                select(Trial).where(Trial.search_id == search_id, Trial.state == "RUNNING")
            ).all()
            for trial in running:
                trial.state = "FAIL"
                trial.reason = reason
                trial.finished_at = utcnow()
            return [t.number for t in running]

    @staticmethod
    def _trial(s: Session, search_id: int, number: int) -> Trial:
        trial = s.scalars(
            select(Trial).where(Trial.search_id == search_id, Trial.number == number)
        ).first()
        if trial is None:
            raise KeyError(f"no trial {number} in search {search_id}")
        return trial


def _token_is(token: str | None):
    return Search.driver_token.is_(None) if token is None else Search.driver_token == token
