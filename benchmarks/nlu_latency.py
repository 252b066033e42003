"""How fast does the NLU service classify one short message, per runtime?

The trained classifier (models/nlu) through the service's own code path (``NluParser.parse``:
cleaning, classifier, threshold, entities) at batch 1, for each runtime in the same process, taking
turns message by message so machine noise hits them alike: PyTorch (the baseline), ONNX Runtime
fp32 and ONNX Runtime int8. Then the HTTP round trip of ``POST /model/parse`` on the service with
the configured runtime. Also: how often each runtime's intent agrees with PyTorch's on every
``nlu_data/`` example. Target: p50 ≤ 10 ms and p95 ≤ 20 ms for short messages.

    .venv/bin/python -m benchmarks.nlu_latency [--rounds 30] [--threads 0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from assistant.settings import Settings
from assistant.stack import Stack, preflight, service_specs
from benchmarks.common import print_table, summary_ms, write_json

SHORT = ["你好", "hello", "帮我查下订单CM100003", "status of order CM100007", "专业版多少钱", "how much is the pro plan",
         "我忘记密码了", "reset my password", "开发票", "I need an invoice for order CM100004", "转人工",
         "can I talk to a human", "怎么申请退款", "how do I export my data", "谢谢", "bye"]


def parsers(settings: Settings, threads: int) -> dict:
    from assistant.nlu.service import load_parser

    out = {}
    for runtime in ("torch", "onnx", "onnx-int8"):
        started = time.perf_counter()
        out[runtime] = load_parser(settings.model_copy(update={"nlu_runtime": runtime, "torch_threads": threads}))
        print(f"{runtime:10s} loaded in {time.perf_counter() - started:5.1f} s")
    return out


def agreement(by_runtime: dict, texts: list[str]) -> dict:
    ref = None
    out = {}
    for runtime, parser in by_runtime.items():
        pred = np.concatenate([parser.classifier.predict_proba(texts[i:i + 64]) for i in range(0, len(texts), 64)])
        pred = pred.argmax(1)
        ref = pred if ref is None else ref
        out[runtime] = round(float((pred == ref).mean()), 4)
    return out


def http_round_trip(settings: Settings, rounds: int) -> dict:
    var = Path(tempfile.mkdtemp(prefix="bench-nlu-"))
    s = settings.model_copy(update={"var_dir": var, "nlu_port": 25306})
    s.__pydantic_fields_set__.update({"var_dir", "nlu_port"})
    stack = Stack(s, [spec for spec in service_specs(s, include_rasa=False) if spec.name == "nlu"])
    stack.start(echo=print)
    times = []
    try:
        with httpx.Client(timeout=10) as client:
            for _ in range(rounds):
                for text in SHORT:
                    started = time.perf_counter()
                    client.post(f"{s.nlu_url}/model/parse", json={"text": text}).raise_for_status()
                    times.append(time.perf_counter() - started)
    finally:
        stack.stop()
    return summary_ms(times[len(SHORT):])    # the first round warms up


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (0: the library's default)")
    args = ap.parse_args()
    settings = Settings(_env_file=None)
    problems = preflight(settings, need_rasa=False)
    if problems:
        raise SystemExit("the project is not set up: " + "; ".join(problems))
    by_runtime = parsers(settings, args.threads)
    for parser in by_runtime.values():                       # warm up
        for text in SHORT:
            parser.parse(text)
    times = {runtime: [] for runtime in by_runtime}
    for _ in range(args.rounds):
        for text in SHORT:
            for runtime, parser in by_runtime.items():
                started = time.perf_counter()
                parser.parse(text)
                times[runtime].append(time.perf_counter() - started)
    from assistant.nlu.data import load_nlu_data

    examples = [e.text for e in load_nlu_data(settings.nlu_data_dir).examples]
    agree = agreement(by_runtime, examples)
    base = summary_ms(times["torch"])
    rows = []
    for runtime, t in times.items():
        m = summary_ms(t)
        rows.append({"runtime": runtime, "p50_ms": m["p50_ms"], "p95_ms": m["p95_ms"], "max_ms": m["max_ms"],
                     "speedup_p50": round(base["p50_ms"] / m["p50_ms"], 2), "agreement_with_torch": agree[runtime]})
    http = http_round_trip(settings, max(5, args.rounds // 3))
    rows.append({"runtime": f"HTTP POST /model/parse ({settings.nlu_runtime})", "p50_ms": http["p50_ms"],
                 "p95_ms": http["p95_ms"], "max_ms": http["max_ms"], "speedup_p50": "", "agreement_with_torch": ""})
    print_table(f"NLU parse at batch 1, {len(SHORT)} short messages x {args.rounds} rounds "
                f"(threads={args.threads or 'default'}; {len(examples)} nlu_data examples for agreement)", rows)
    write_json("nlu_latency", {"threads": args.threads, "rounds": args.rounds, "rows": rows})


if __name__ == "__main__":
    main()
