"""How long the stack takes to become ready, and how long one conversation turn takes.

Starts the real stack (embedded defaults, ports 25005/25006/25055 so a running one is not
disturbed), records each service's time to healthy, then sends turns of each kind through the REST
channel and reports p50/p95 per kind. The NLU service's own parse time is measured in the same run
as a baseline, so the ratios hold on a noisy machine.

    .venv/bin/python -m benchmarks.stack_latency [--rounds 20]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from assistant.db.seed import seed
from assistant.db.session import make_engine, make_sessionmaker, session_scope
from assistant.settings import Settings
from assistant.stack import Stack, preflight, service_specs
from benchmarks.common import print_table, summary_ms, write_json
from connectors.rest import RasaRestClient

TURNS = {
    "chitchat (rule)": ["你好", "hello", "谢谢", "thanks"],
    "scripted action (db)": ["专业版多少钱", "how much is the pro plan", "帮我查下订单CM100003", "status of order CM100007"],
    "knowledge answer (chroma)": ["怎么申请退款", "how do I export my data", "数据是怎么加密的", "what is your uptime SLA"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    base = Settings(_env_file=None)
    problems = preflight(base)
    if problems:
        raise SystemExit("not set up: " + "; ".join(problems))
    var = Path(tempfile.mkdtemp(prefix="bench-var-"))
    s = Settings(_env_file=None, var_dir=var, chroma_dir=base.chroma_dir, nlu_port=25006, action_port=25055,
                 rasa_port=25005, database_url=f"sqlite:///{var / 'db.sqlite'}")
    with session_scope(make_sessionmaker(make_engine(s.effective_database_url))) as session:
        seed(session)
    stack = Stack(s, service_specs(s))
    t0 = time.perf_counter()
    stack.start(echo=lambda line: None)
    total_ready = time.perf_counter() - t0
    startup = [{"service": r.spec.name, "ready_s": round(r.ready_s, 1)} for r in stack.running]
    startup.append({"service": "all (sequential start)", "ready_s": round(total_ready, 1)})
    try:
        client = RasaRestClient(s.rasa_url)
        nlu = httpx.Client(timeout=10)
        for kind, texts in TURNS.items():  # warm-up
            for t in texts:
                client.send(f"warm-{uuid.uuid4().hex[:6]}", t)
        timings: dict[str, list[float]] = {k: [] for k in TURNS}
        nlu_only: list[float] = []
        for _ in range(args.rounds):
            for kind, texts in TURNS.items():
                for t in texts:
                    sender = f"bench-{uuid.uuid4().hex[:8]}"
                    started = time.perf_counter()
                    client.send(sender, t)
                    timings[kind].append(time.perf_counter() - started)
                    started = time.perf_counter()
                    nlu.post(f"{s.nlu_url}/model/parse", json={"text": t})
                    nlu_only.append(time.perf_counter() - started)
    finally:
        stack.stop()
    baseline = summary_ms(nlu_only)
    rows = [{"turn": "NLU /model/parse only (baseline)", **baseline, "x_baseline_p50": 1.0}]
    for kind, values in timings.items():
        sm = summary_ms(values)
        rows.append({"turn": kind, **sm, "x_baseline_p50": round(sm["p50_ms"] / baseline["p50_ms"], 2)})
    print_table("Stack start-up (time to healthy)", startup)
    print_table("One turn through Rasa's REST channel (HTTP round trip)", rows)
    write_json("stack_latency", {"startup": startup, "turns": rows, "rounds": args.rounds})


if __name__ == "__main__":
    main()
