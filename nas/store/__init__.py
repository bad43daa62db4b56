"""The search store: SQLAlchemy tables beside the Optuna study, engines and repository."""

from nas.store.engine import make_engine, resolve_storage
from nas.store.repository import CachedMeasurement, SearchStore

__all__ = ["CachedMeasurement", "SearchStore", "make_engine", "resolve_storage"]
