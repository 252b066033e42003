"""docker-compose.yml parses (Debian's docker-compose; no engine runs containers here) and
describes the same services and ports as the local stack."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail("docker-compose is not installed: `apt-get install docker-compose` (Debian) validates the file")
    r = subprocess.run([exe, "-f", str(ROOT / "docker-compose.yml"), "config"], capture_output=True, text=True,
                       timeout=60, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    return yaml.safe_load(r.stdout)


def test_services_have_health_checks(compose):
    services = compose["services"]
    assert {"rasa", "nlu", "actions", "worker", "redis", "postgres"} <= set(services)
    for name, svc in services.items():
        assert "healthcheck" in svc, f"{name} has no healthcheck"


def test_rasa_image_is_3_6_21_and_waits_for_its_dependencies(compose):
    dockerfile = (ROOT / compose["services"]["rasa"]["build"]["dockerfile"]).read_text()
    assert "FROM rasa/rasa:3.6.21" in dockerfile
    deps = compose["services"]["rasa"]["depends_on"]
    assert all(deps[d]["condition"] == "service_healthy" for d in ("nlu", "actions", "redis"))


def test_container_endpoints_match_services_and_settings(compose, settings):
    endpoints = yaml.safe_load((ROOT / "docker" / "endpoints.yml").read_text())
    assert endpoints["nlu"]["url"] == f"http://nlu:{settings.nlu_port}"
    assert endpoints["action_endpoint"]["url"] == f"http://actions:{settings.action_port}/webhook"
    assert endpoints["tracker_store"]["type"] == endpoints["lock_store"]["type"] == "redis"
    assert endpoints["tracker_store"]["url"] in compose["services"]
    published = {int(p["target"]) if isinstance(p, dict) else int(str(p).split(":")[-1])
                 for svc in ("rasa", "nlu", "actions") for p in compose["services"][svc]["ports"]}
    assert published == {settings.rasa_port, settings.nlu_port, settings.action_port}


def test_worker_and_action_server_share_a_broker_and_reach_rasa(compose):
    worker, actions = compose["services"]["worker"], compose["services"]["actions"]
    assert worker["command"] == ["assistant", "serve-worker"]
    assert worker["environment"]["ASSISTANT_BROKER_URL"] == actions["environment"]["ASSISTANT_BROKER_URL"]
    assert worker["environment"]["ASSISTANT_BROKER_URL"].startswith("redis://redis:")
    assert worker["environment"]["ASSISTANT_RASA_HOST"] == "rasa"
