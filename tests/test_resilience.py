"""Failures of a piece of the stack are loud and clear, never silent."""

from __future__ import annotations

import httpx
import pytest

from assistant.stack import Stack, StackError, preflight, service_specs
from connectors.rest import RasaRestClient, RasaUnavailable
from tests.conftest import base_settings, seed_database

pytestmark = pytest.mark.stack


def start_partial(tmp_path_factory, settings, services: set[str], **overrides):
    var = tmp_path_factory.mktemp("var-partial")
    s = base_settings(var_dir=var, chroma_dir=settings.chroma_dir, database_url=f"sqlite:///{var / 'db.sqlite'}",
                      **overrides)
    seed_database(s.effective_database_url)
    stack = Stack(s, [spec for spec in service_specs(s) if spec.name in services])
    stack.start(echo=lambda line: None)
    return s, stack


@pytest.fixture(scope="module")
def stack_without_nlu(tmp_path_factory, settings):
    """Actions + Rasa, with Rasa's NLU endpoint pointing at a port where nothing listens."""
    s, stack = start_partial(tmp_path_factory, settings, {"actions", "rasa"}, nlu_port=15999, action_port=15155,
                             rasa_port=15105)
    try:
        yield s
    finally:
        stack.stop()


def test_unsure_nlu_falls_back_instead_of_guessing(tmp_path_factory, settings):
    """NLU + Rasa with a strict threshold: a message the classifier is not sure enough of becomes
    `nlu_fallback`, and the assistant asks to rephrase (through the real HTTP path)."""
    s, stack = start_partial(tmp_path_factory, settings, {"nlu", "rasa"}, nlu_port=15206, action_port=15255,
                             rasa_port=15205, nlu_fallback_threshold=0.995)
    try:
        client = RasaRestClient(s.rasa_url)
        reply = " ".join(m.text for m in client.send("unsure-1", "hmm"))
        assert "rephrase" in reply
        latest = client.tracker("unsure-1")["latest_message"]
        assert latest["intent"]["name"] == "nlu_fallback"
        assert latest["intent"]["confidence"] < 0.995
        assert latest["intent_ranking"][1]["name"] != "nlu_fallback"
    finally:
        stack.stop()


def test_dead_nlu_service_is_reported_to_the_user_and_counted(stack_without_nlu):
    s = stack_without_nlu
    client = RasaRestClient(s.rasa_url)
    reply = " ".join(m.text for m in client.send("dead-nlu-1", "你好，我想查订单"))
    assert "系统暂时无法理解" in reply
    reply = " ".join(m.text for m in client.send("dead-nlu-2", "hello there"))
    assert "technical trouble" in reply
    metrics = httpx.get(f"http://{s.action_host}:{s.action_port}/metrics", timeout=5).text
    assert "actions_nlu_unavailable_total 2" in metrics
    log = (s.log_dir / "actions.log").read_text()
    assert "NLU service unreachable" in log


def test_missing_pieces_are_named_with_the_command_to_run(tmp_path):
    s = base_settings(models_dir=tmp_path / "models", var_dir=tmp_path / "var", rasa_venv=tmp_path / "no-venv")
    problems = "\n".join(preflight(s))
    assert "NLU model not trained" in problems and "assistant train-nlu" in problems
    assert "Rasa model not trained" in problems and "assistant train-dialogue" in problems
    assert "Rasa is not installed" in problems and "scripts/setup.sh" in problems
    assert "knowledge base not ingested" in problems and "assistant ingest" in problems


def test_a_service_that_dies_at_start_stops_the_start_with_its_log(tmp_path, settings):
    s = base_settings(var_dir=tmp_path, chroma_dir=settings.chroma_dir, nlu_port=15998,
                      models_dir=tmp_path / "empty-models")
    nlu_only = [spec for spec in service_specs(s, include_rasa=False) if spec.name == "nlu"]
    with pytest.raises(StackError, match=r"nlu exited with code \d+ while starting(.|\n)*NLU model not trained"):
        Stack(s, nlu_only).start(echo=lambda line: None)


def test_rest_client_names_an_unreachable_server():
    with pytest.raises(RasaUnavailable, match="unreachable"):
        RasaRestClient("http://127.0.0.1:1", timeout_s=2).send("x", "hi")
