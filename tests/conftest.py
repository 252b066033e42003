"""Shared fixtures. The ``stack`` fixture starts the real processes (NLU service, action server,
Rasa server) twice: once with the embedded defaults (SQLite business data and tracker store),
once with PostgreSQL + Redis, the servers that run on this project's machines."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from assistant.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("ASSISTANT_TEST_POSTGRES_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DB = "cloudmax_test"
REDIS_URL = os.environ.get("ASSISTANT_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")
REQUIRE_SERVICES = os.environ.get("ASSISTANT_TEST_REQUIRE_SERVICES") == "1"


def base_settings(**overrides) -> Settings:
    """Settings of the set-up project (models/, var/chroma), ignoring any .env of the developer."""
    return Settings(_env_file=None, **overrides)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return base_settings()


def services_or_skip(what: str, error: Exception) -> None:
    msg = f"{what} is not reachable ({error}); start it (see README, 'Services') or run the embedded tests only"
    if REQUIRE_SERVICES:
        pytest.fail(msg)
    pytest.skip(msg)


def postgres_url() -> str:
    """A fresh ``cloudmax_test`` database on the local PostgreSQL server."""
    import psycopg

    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {PG_DB}")
    except psycopg.Error as exc:
        services_or_skip("PostgreSQL", exc)
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    return f"{base}/{PG_DB}"


def redis_url() -> str:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=3)
        client.flushdb()
    except redis.RedisError as exc:
        services_or_skip("Redis", exc)
    return REDIS_URL


def seed_database(url: str) -> None:
    from assistant.db.seed import seed
    from assistant.db.session import make_engine, make_sessionmaker, session_scope

    with session_scope(make_sessionmaker(make_engine(url))) as s:
        seed(s)


@dataclass
class RunningStack:
    backend: str
    settings: Settings
    client: object
    repository: object

    def new_sender(self) -> str:
        return f"test-{self.backend}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session", params=["embedded", "services"])
def stack(request, tmp_path_factory, settings):
    from assistant.db.repository import Repository
    from assistant.stack import Stack, preflight, service_specs
    from connectors.rest import RasaRestClient

    problems = preflight(settings)
    if problems:
        pytest.fail("the project is not set up: " + "; ".join(problems))
    var = tmp_path_factory.mktemp(f"var-{request.param}")
    # ports of their own, so a developer's running stack does not get in the way
    overrides = dict(var_dir=var, chroma_dir=settings.chroma_dir, nlu_port=15006, action_port=15055, rasa_port=15005)
    if request.param == "embedded":
        overrides["database_url"] = f"sqlite:///{var / 'cloudmax.db'}"
    else:
        overrides["database_url"] = postgres_url()
        overrides["redis_url"] = redis_url()
    s = base_settings(**overrides)
    seed_database(s.effective_database_url)
    running = Stack(s, service_specs(s))
    running.start(echo=lambda line: print(line))
    client = RasaRestClient(s.rasa_url)
    try:
        yield RunningStack(request.param, s, client, Repository.from_url(s.effective_database_url))
    finally:
        client.close()
        running.stop()
