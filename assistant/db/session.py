"""Engine and session factories. SQLite by default; any SQLAlchemy URL (e.g. PostgreSQL) by setting."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, timeout_s: float = 5.0) -> Engine:
    """An engine whose connections and statements give up after ``timeout_s`` seconds."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return create_engine(url, connect_args={"timeout": timeout_s})
    connect_args = {}
    if url.startswith("postgresql"):
        ms = int(timeout_s * 1000)
        connect_args = {"connect_timeout": max(1, int(timeout_s)), "options": f"-c statement_timeout={ms}"}
    engine = create_engine(url, pool_pre_ping=True, pool_timeout=timeout_s, connect_args=connect_args)
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    session = factory()
    try:
        yield session
        session.commit()
    except Exception:
        session.rollback()
        raise
    finally:
        session.close()


def enable_sqlite_foreign_keys(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _fk(dbapi_conn, _):  # pragma: no cover - trivial
            dbapi_conn.execute("PRAGMA foreign_keys=ON")
