"""The search store: SQLAlchemy tables beside the Optuna study, engines, schema migrations and
repository."""

from nas.store.engine import make_engine, resolve_storage
from nas.store.repository import CachedMeasurement, SearchStore
from nas.store.schema import SchemaState, StoreOutdated, StoreTooNew

__all__ = [
    "CachedMeasurement",
    "SchemaState",
    "SearchStore",
    "StoreOutdated",
    "StoreTooNew",
    "make_engine",
    "resolve_storage",
]
