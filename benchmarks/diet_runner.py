"""Rasa's DIETClassifier on one dataset: run by the Rasa environment's Python (3.10, rasa 3.6).

It imports nothing from this project (the two environments do not share packages). It reads a
job (JSON: the train split as Rasa YAML, the tokenizer, the texts to predict), trains Rasa's
recommended pipeline through ``rasa.model_training.train_nlu``, loads the model with
``Agent.load`` and parses every valid and test text one at a time (batch 1, the way a server does),
and writes the predictions, the top confidence, per-message latencies, the training time and the
process's peak memory as JSON.

    .venv-rasa/bin/python benchmarks/diet_runner.py JOB.json RESULT.json
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

PIPELINE = """\
recipe: default.v1
language: {language}
pipeline:
  - name: {tokenizer}
  - name: CountVectorsFeaturizer
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 1
    max_ngram: 4
  - name: DIETClassifier
    epochs: {epochs}
    entity_recognition: false
    random_seed: {seed}
assistant_id: diet-benchmark
"""


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def nlu_yaml(texts: list[str], labels: list[str]) -> str:
    by_intent: dict[str, list[str]] = {}
    for t, label in zip(texts, labels):
        by_intent.setdefault(label, []).append(t)
    lines = ['version: "3.1"', "nlu:"]
    for intent, examples in sorted(by_intent.items()):
        lines.append(f"- intent: {intent}")
        lines.append("  examples: |")
        # one line per example; JSON-quoting is not YAML block syntax, so strip line breaks only
        lines += [f"    - {' '.join(e.split())}" for e in examples]
    return "\n".join(lines) + "\n"


async def parse_all(agent, texts: list[str]) -> tuple[list[dict], list[float]]:
    out, latency = [], []
    for t in texts:
        started = time.perf_counter()
        parsed = await agent.parse_message(t)
        latency.append(time.perf_counter() - started)
        intent = parsed.get("intent") or {}
        out.append({"intent": intent.get("name"), "confidence": float(intent.get("confidence") or 0.0)})
    return out, latency


def main() -> int:
    job = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    os.environ["RASA_MAX_CACHE_SIZE"] = "0"          # no training cache: every run trains from scratch
    import logging

    from rasa.core.agent import Agent
    from rasa.model_training import train_nlu
    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog

    configure_logging_and_warnings(logging.WARNING)
    configure_structlog(logging.WARNING)       # no debug line per parsed message

    work = Path(tempfile.mkdtemp(prefix="diet-"))
    (work / "nlu.yml").write_text(nlu_yaml(job["train_texts"], job["train_labels"]), encoding="utf-8")
    (work / "config.yml").write_text(PIPELINE.format(language=job["language"], tokenizer=job["tokenizer"],
                                                     epochs=job["epochs"], seed=job.get("seed", 42)), encoding="utf-8")
    started = time.perf_counter()
    model = train_nlu(str(work / "config.yml"), str(work / "nlu.yml"), str(work / "models"), fixed_model_name="diet")
    train_seconds = time.perf_counter() - started
    if not model:
        print("rasa train nlu produced no model", file=sys.stderr)
        return 1
    agent = Agent.load(model)
    asyncio.run(agent.parse_message("warm up"))
    valid, _ = asyncio.run(parse_all(agent, job["valid_texts"]))
    test, latency = asyncio.run(parse_all(agent, job["test_texts"]))
    Path(sys.argv[2]).write_text(json.dumps({
        "train_seconds": round(train_seconds, 1), "valid": valid, "test": test,
        "latency_s": latency[: job.get("latency_samples", 500)], "peak_rss_mb": round(peak_rss_mb(), 1),
        "pipeline": (work / "config.yml").read_text(encoding="utf-8"),
    }), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
