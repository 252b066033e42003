"""Slow generation in Celery workers: what the delivery machinery costs and whether it keeps its
promises, on the real stack (Rasa, action server, Celery worker, Redis on 127.0.0.1:6379 db 7).

1. enqueue → delivery latency, p50/p95, with a no-op generator (``fakes:echo``): a job is sent to
   the broker and the worker delivers it into a Rasa conversation through ``trigger_intent``; one
   job at a time, so nothing queues;
2. throughput: 100 no-op jobs at once with 1 worker process, then with 2 (same run: the ratio is
   what to read on a noisy machine);
3. turn budget: knowledge questions whose generator takes longer than the budget; how late the
   Rasa reply is against the budget (target: never more than budget + 200 ms);
4. soak: N questions from 4 concurrent users while the worker is SIGKILLed twice; every answer
   must arrive exactly once (lost = 0, duplicated = 0).

    .venv/bin/python -m benchmarks.worker_delivery [--questions 200] [--skip-soak]
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis

from assistant.db.seed import seed
from assistant.db.session import make_engine, make_sessionmaker, session_scope
from assistant.knowledge.generate import Source
from assistant.settings import Settings
from assistant.stack import Stack, preflight, service_specs, worker_spec
from assistant.tasks.celery_app import create_celery
from assistant.tasks.jobs import AnswerJob, new_job_key
from assistant.tasks.queue import CeleryQueue
from assistant.tasks.store import RedisJobStore
from benchmarks.common import print_table, summary_ms, write_json
from connectors.rest import RasaRestClient

BROKER = os.environ.get("ASSISTANT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
SOURCE = [Source(1, "CloudMax keeps 30 days of version history on the Pro plan. Business keeps 180 days.",
                 "Versions", "History", "docs/en/bench.md", "doc", "en")]
QUESTIONS = ["which compliance certifications do you have", "how many days of file version history do I keep",
             "what format is the data export in", "企业版有哪些安全认证", "团队版最多支持多少人",
             "does CloudMax have an SLA for outages"]


def make_settings(var: Path, base: Settings, **overrides) -> Settings:
    return Settings(_env_file=None, var_dir=var, chroma_dir=base.chroma_dir, nlu_port=25106, action_port=25155,
                    rasa_port=25105, database_url=f"sqlite:///{var / 'db.sqlite'}", broker_url=BROKER,
                    answer_cache_ttl_s=0, **overrides)


def start(s: Settings) -> Stack:
    with session_scope(make_sessionmaker(make_engine(s.effective_database_url))) as session:
        seed(session)
    stack = Stack(s, service_specs(s))
    stack.start(echo=lambda line: print(" ", line.strip()))
    return stack


def job(sender: str) -> AnswerJob:
    now = time.time()
    # a deadline in the past: the turn has given up waiting, the worker delivers at once
    return AnswerJob(new_job_key(), sender, "how long is version history kept?", "en", SOURCE, 0.9,
                     deadline=now - 1, created=now)


def wait_count(store: RedisJobStore, target: int, timeout_s: float = 300) -> None:
    end = time.monotonic() + timeout_s
    while len(store.samples("enqueue_to_delivery_s")) < target:
        if time.monotonic() > end:
            raise SystemExit(f"only {len(store.samples('enqueue_to_delivery_s'))}/{target} jobs delivered")
        time.sleep(0.02)


def bench_overhead(base: Settings, rounds: int) -> dict:
    var = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    s = make_settings(var, base, kb_generator="python:assistant.generation.fakes:echo")
    stack = start(s)
    store = RedisJobStore.from_url(BROKER)
    queue = CeleryQueue(create_celery(s))
    try:
        for i in range(5):  # warm-up: connections, Rasa's first trackers
            queue.submit(job(f"bench-warm-{i}"))
        wait_count(store, 5)
        done = len(store.samples("enqueue_to_delivery_s"))
        for i in range(rounds):
            queue.submit(job(f"bench-lat-{i}"))
            wait_count(store, done + i + 1)
        latency = store.samples("enqueue_to_delivery_s")[:rounds]
        results = {"enqueue_to_delivery": summary_ms(latency)}
        for workers in (1, 2):
            extra = None
            if workers == 2:
                extra = Stack(s, [worker_spec(s, "answers2")])
                extra.start(echo=lambda line: None)
            try:
                before = len(store.samples("enqueue_to_delivery_s"))
                t0 = time.perf_counter()
                for i in range(100):
                    queue.submit(job(f"bench-tp{workers}-{i % 10}"))
                wait_count(store, min(2000, before + 100))
                results[f"throughput_{workers}_worker"] = round(100 / (time.perf_counter() - t0), 1)
            finally:
                if extra:
                    extra.stop()
        return results
    finally:
        stack.stop()


def pending_key(messages) -> str | None:
    return next((m.custom["pending_answer"] for m in messages if m.custom and "pending_answer" in m.custom), None)


def answer_key(messages) -> str | None:
    return next((m.custom["answer_key"] for m in messages if m.custom and m.custom.get("answer_key")), None)


def bench_budget_and_soak(base: Settings, questions: int, soak: bool) -> dict:
    budget = 0.5
    os.environ["ASSISTANT_TEST_GENERATOR_DELAY_S"] = "0.8"
    var = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    s = make_settings(var, base, kb_generator="python:assistant.generation.fakes:slow", answer_budget_s=budget,
                      worker_concurrency=2, worker_visibility_timeout_s=10)
    stack = start(s)
    client = RasaRestClient(s.rasa_url)
    results: dict = {}
    try:
        late = []
        for i in range(30):
            t0 = time.perf_counter()
            messages = client.send(f"bench-budget-{i}-{uuid.uuid4().hex[:6]}", QUESTIONS[i % len(QUESTIONS)])
            took = time.perf_counter() - t0
            if pending_key(messages):
                late.append(took)
        results["reply_when_generation_is_late"] = {**summary_ms(late), "budget_ms": budget * 1000,
                                                    "over_budget_max_ms": round((max(late) - budget) * 1000, 1)}
        if not soak:
            return results
        keys: dict[str, str] = {}
        inline: set[str] = set()
        lock = threading.Lock()
        asked = [0]

        def one(i: int) -> None:
            sender = f"soak-{i}-{uuid.uuid4().hex[:6]}"
            messages = client.send(sender, QUESTIONS[i % len(QUESTIONS)])
            with lock:
                asked[0] += 1
                if (key := pending_key(messages)) is not None:
                    keys[key] = sender
                elif (key := answer_key(messages)) is not None:
                    inline.add(key)

        kills = []

        def killer() -> None:
            for fraction in (1 / 3, 2 / 3):
                while asked[0] < questions * fraction:
                    time.sleep(0.05)
                worker = next(r for r in stack.running if r.spec.name == "worker" and r.process.poll() is None)
                os.killpg(worker.process.pid, signal.SIGKILL)
                worker.process.wait()
                kills.append(time.time())
                replacement = Stack(s, [worker_spec(s)])
                replacement.start(echo=lambda line: None)
                stack.running.extend(replacement.running)

        k = threading.Thread(target=killer)
        k.start()
        t0 = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(one, range(questions)))
        k.join()
        end = time.monotonic() + 180
        counts: dict[str, int] = {}
        while time.monotonic() < end:
            counts = {}
            for key, sender in keys.items():
                counts[key] = sum(1 for _, m in client.bot_messages_since(sender, 0)
                                  if (m.custom or {}).get("answer_key") == key and m.text)
            if all(c >= 1 for c in counts.values()):
                break
            time.sleep(2)
        time.sleep(3)
        results["soak"] = {
            "questions": questions, "worker_kills": len(kills), "answered_inline": len(inline),
            "delivered_late": sum(1 for c in counts.values() if c >= 1),
            "lost": sum(1 for c in counts.values() if c == 0),
            "duplicated": sum(1 for c in counts.values() if c > 1),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        stats = RedisJobStore.from_url(BROKER).stats()
        results["soak"]["results_reused_after_kill"] = stats.get("results_reused", 0)
        return results
    finally:
        client.close()
        stack.stop()
        os.environ.pop("ASSISTANT_TEST_GENERATOR_DELAY_S", None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--questions", type=int, default=200)
    ap.add_argument("--skip-soak", action="store_true")
    args = ap.parse_args()
    base = Settings(_env_file=None)
    problems = preflight(base)
    if problems:
        raise SystemExit("not set up: " + "; ".join(problems))
    redis.Redis.from_url(BROKER).flushdb()
    print("stage 1: enqueue → delivery overhead and throughput (no-op generator)")
    overhead = bench_overhead(base, args.rounds)
    redis.Redis.from_url(BROKER).flushdb()
    print("stage 2: turn budget and soak (generator slower than the budget)")
    later = bench_budget_and_soak(base, args.questions, not args.skip_soak)
    e2d = overhead["enqueue_to_delivery"]
    print_table("enqueue → delivery (no-op generator, 1 worker)", [{"what": "enqueue→delivery", **e2d}])
    print_table("throughput (100 no-op jobs)", [
        {"workers": 1, "jobs_per_s": overhead["throughput_1_worker"]},
        {"workers": 2, "jobs_per_s": overhead["throughput_2_worker"],
         "ratio": round(overhead["throughput_2_worker"] / overhead["throughput_1_worker"], 2)}])
    r = later["reply_when_generation_is_late"]
    print_table("Rasa reply when the answer is late (generator 0.8 s, budget 0.5 s)", [r])
    if "soak" in later:
        print_table("soak: worker SIGKILLed twice", [later["soak"]])
    write_json("worker_delivery", {**overhead, **later})


if __name__ == "__main__":
    main()
