"""Persistence. ``open_store`` picks the backend from the URL scheme; heavy imports stay lazy."""

from __future__ import annotations

from batchpoint.store.base import AlreadyExists, FinalState, Store, VersionConflict

SQL_SCHEMES = ("sqlite", "postgresql")


def open_store(url: str) -> Store:
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    if scheme in SQL_SCHEMES:
        from batchpoint.store.sql import SqlStore

        return SqlStore(url)
    raise ValueError(f"unsupported database URL scheme {scheme!r}; use sqlite:// or postgresql+psycopg://")


__all__ = ["AlreadyExists", "FinalState", "Store", "VersionConflict", "open_store"]
