"""Rasa's own checks on the training data and the dialogue model, and `rasa shell` through a pipe."""

from __future__ import annotations

import os
import subprocess

import pytest

from assistant.rasa_files import latest_rasa_model, write_endpoints
from assistant.stack import rasa_env


def rasa(settings, *args, timeout=600, input=None):
    return subprocess.run([str(settings.rasa_bin()), *args], cwd=settings.root_dir, capture_output=True, text=True,
                          timeout=timeout, input=input, env={**os.environ, **rasa_env()})


def test_rasa_data_validate(settings):
    r = rasa(settings, "data", "validate", "--fail-on-warnings", "--data", "nlu_data", "stories",
             "--domain", "domain.yml", "--config", "config.yml")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


@pytest.mark.stack
def test_rasa_test_stories(stack, tmp_path):
    """`rasa test core` on tests/stories with --fail-on-prediction-errors; form validation runs on
    the live action server of the stack."""
    s = stack.settings
    r = rasa(s, "test", "core", "--model", str(latest_rasa_model(s)), "--stories", "tests/stories",
             "--endpoints", str(write_endpoints(s)), "--out", str(tmp_path / "results"),
             "--fail-on-prediction-errors")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]


@pytest.mark.stack
def test_rasa_shell_through_a_pipe(stack):
    s = stack.settings
    port = s.rasa_port + 10
    r = rasa(s, "shell", "--model", str(latest_rasa_model(s)), "--endpoints", str(write_endpoints(s)),
             "--port", str(port), timeout=300, input="你好\nhow much is the pro plan\n/stop\n")
    out = r.stdout + r.stderr
    assert "CloudMax 智能客服" in out, out[-3000:]
    assert "$9.99" in out, out[-3000:]
