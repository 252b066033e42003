"""Shared fixtures. The ``stack`` fixture starts the real processes (NLU service, action server,
Rasa server) twice: once with the embedded defaults (SQLite business data and tracker store),
once with PostgreSQL + Redis, the servers that run on this project's machines."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
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


class RedisServer:
    """A private redis-server process (no persistence) that a test may stop and start again."""

    def __init__(self, port: int, workdir):
        self.port, self.workdir, self.proc = port, workdir, None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            msg = "redis-server is not installed (see README, 'Services')"
            pytest.fail(msg) if REQUIRE_SERVICES else pytest.skip(msg)
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--save", "", "--appendonly", "no",
                                      "--dir", str(self.workdir)], stdout=subprocess.DEVNULL)
        import redis

        client = redis.Redis(port=self.port, socket_timeout=1)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


# --- the channels: Slack, WeChat, WeCom in front of the real stack ---------------------------------
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
WECHAT = {"token": "cloudmaxwx", "app_id": "wx5823bf96d3bd56c7",
          "aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}
WECOM = {"token": "QDG6eK", "corp_id": "wx5823bf96d3bd56c7", "agent_id": 1000002,
         "aes_key": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"}
CHANNEL_GENERATOR_DELAY_S = 4.0


@dataclass
class ChannelStack:
    settings: Settings
    platforms: object          # tests.fake_platforms.FakePlatforms
    client: object             # RasaRestClient


@pytest.fixture(scope="session")
def channel_stack(tmp_path_factory, settings):
    """NLU, actions, a Celery worker with a 4-second stand-in generator, Rasa and the channels
    service, configured for Slack, WeChat and WeCom against local fakes of their APIs."""
    from assistant.stack import Stack, service_specs
    from connectors.rest import RasaRestClient
    from tests.fake_platforms import BOT_TOKEN, FakePlatforms

    var = tmp_path_factory.mktemp("var-channels")
    redis_server = RedisServer(16392, var)
    redis_server.start()
    fake = FakePlatforms().start()
    s = base_settings(
        var_dir=var, chroma_dir=settings.chroma_dir, database_url=f"sqlite:///{var / 'db.sqlite'}",
        nlu_port=15606, action_port=15655, rasa_port=15605, channels_port=15607, broker_url=redis_server.url,
        kb_generator="python:assistant.generation.fakes:slow", answer_budget_s=1.0, worker_time_limit_s=60,
        worker_visibility_timeout_s=8,
        slack_bot_token=BOT_TOKEN, slack_signing_secret=SLACK_SECRET, slack_api_url=f"{fake.url}/slack/api/",
        slack_agents_channel="CAGENTS",
        wechat_token=WECHAT["token"], wechat_app_id=WECHAT["app_id"], wechat_app_secret="oa-secret",
        wechat_aes_key=WECHAT["aes_key"], wechat_api_url=f"{fake.url}/wechat/cgi-bin/",
        wecom_token=WECOM["token"], wecom_corp_id=WECOM["corp_id"], wecom_agent_id=WECOM["agent_id"],
        wecom_aes_key=WECOM["aes_key"], wecom_secret="wecom-secret", wecom_api_url=f"{fake.url}/wecom/cgi-bin/",
    )
    seed_database(s.effective_database_url)
    stack = Stack(s, service_specs(s))
    assert {"worker", "channels"} <= {spec.name for spec in stack.specs}
    os.environ["ASSISTANT_TEST_GENERATOR_DELAY_S"] = str(CHANNEL_GENERATOR_DELAY_S)
    try:
        stack.start(echo=print)
    finally:
        os.environ.pop("ASSISTANT_TEST_GENERATOR_DELAY_S", None)
    client = RasaRestClient(s.rasa_url)
    try:
        yield ChannelStack(s, fake, client)
    finally:
        client.close()
        stack.stop()
        fake.stop()
        redis_server.stop()
