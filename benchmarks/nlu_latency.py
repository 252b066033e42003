"""How fast does the NLU service classify one short message, per runtime?

The trained classifier (models/nlu) through the service's own code path (``NluParser.parse``:
cleaning, classifier, threshold, entities) at batch 1, for each runtime in the same process: PyTorch (the
baseline), ONNX Runtime fp32 and ONNX Runtime int8. They take turns round by round (a round: every
message once) so machine noise hits them alike; not message by message, because one runtime's idle
threads spin for a while after each call (PyTorch's OpenMP pool, ONNX Runtime's own) and slow the
next runtime's call, which a service running one runtime never sees. Then the HTTP round trip of ``POST /model/parse`` on the service with
the configured runtime. Also: how often each runtime's intent agrees with PyTorch's on every
``nlu_data/`` example. Target: p50 ≤ 10 ms and p95 ≤ 20 ms for short messages.

One more row runs ONNX fp32 with OpenBLAS at its default thread count, which the service no longer
uses (``limit_blas_threads``): the baseline for that choice, in the same process. ``--texts FILE``
times 100 lines of a file (e.g. ``../shared/datasets/CLINC150/test/seq.in``) instead of the 16
built-in short messages. The model is the one under ``ASSISTANT_MODELS_DIR`` (default ``models/``): a
models folder whose ``nlu`` is another model (e.g. the CLINC150 one ``benchmarks/nlu_oos.py`` saves, with
its detector) times the service on that model.

    .venv/bin/python -m benchmarks.nlu_latency [--rounds 30] [--threads 0] [--texts FILE]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

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


def http_round_trip(settings: Settings, rounds: int, texts: list[str]) -> dict:
    var = Path(tempfile.mkdtemp(prefix="bench-nlu-"))
    s = settings.model_copy(update={"var_dir": var, "nlu_port": 25306})
    s.__pydantic_fields_set__.update({"var_dir", "nlu_port"})
    stack = Stack(s, [spec for spec in service_specs(s, include_rasa=False) if spec.name == "nlu"])
    stack.start(echo=print)
    times = []
    try:
        with httpx.Client(timeout=10) as client:
            for _ in range(rounds):
                for text in texts:
                    started = time.perf_counter()
                    client.post(f"{s.nlu_url}/model/parse", json={"text": text}).raise_for_status()
                    times.append(time.perf_counter() - started)
    finally:
        stack.stop()
    return summary_ms(times[len(texts):])    # the first round warms up


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (0: the library's default)")
    ap.add_argument("--texts", type=Path, help="time 100 evenly spaced lines of this file instead of the short messages")
    ap.add_argument("--name", help="the results file's name (default: nlu_latency, or after --texts' dataset folder)")
    args = ap.parse_args()
    texts = SHORT
    if args.texts:
        lines = [line for line in args.texts.read_text(encoding="utf-8").splitlines() if line.strip()]
        texts = lines[::max(1, len(lines) // 100)][:100]
    settings = Settings(_env_file=None)
    problems = preflight(settings, need_rasa=False)
    if problems:
        raise SystemExit("the project is not set up: " + "; ".join(problems))
    blas_default = max((i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"), default=1)
    by_runtime = parsers(settings, args.threads)             # load_parser leaves one BLAS thread
    runs = [(runtime, parser, 1) for runtime, parser in by_runtime.items()]
    runs.append((f"onnx, {blas_default} BLAS threads (before)", by_runtime["onnx"], blas_default))
    for parser in by_runtime.values():                       # warm up
        for text in texts:
            parser.parse(text)
    times = {name: [] for name, _, _ in runs}
    for _ in range(args.rounds):
        for name, parser, blas in runs:
            with threadpool_limits(limits=blas, user_api="blas"):
                parser.parse(texts[-1])                      # untimed: the last runtime's threads settle
                for text in texts:
                    started = time.perf_counter()
                    parser.parse(text)
                    times[name].append(time.perf_counter() - started)
    from assistant.nlu.data import load_nlu_data

    examples = [e.text for e in load_nlu_data(settings.nlu_data_dir).examples]
    agree = agreement(by_runtime, examples)
    base = summary_ms(times["torch"])
    rows = []
    for runtime, t in times.items():
        m = summary_ms(t)
        rows.append({"runtime": runtime, "p50_ms": m["p50_ms"], "p95_ms": m["p95_ms"], "max_ms": m["max_ms"],
                     "speedup_p50": round(base["p50_ms"] / m["p50_ms"], 2),
                     "agreement_with_torch": agree.get(runtime, agree["onnx"])})
    http = http_round_trip(settings, max(5, args.rounds // 3), texts)
    rows.append({"runtime": f"HTTP POST /model/parse ({settings.nlu_runtime})", "p50_ms": http["p50_ms"],
                 "p95_ms": http["p95_ms"], "max_ms": http["max_ms"], "speedup_p50": "", "agreement_with_torch": ""})
    what = f"{len(texts)} lines of {args.texts}" if args.texts else f"{len(texts)} short messages"
    print_table(f"NLU parse at batch 1, {what} x {args.rounds} rounds "
                f"(threads={args.threads or 'default'}; {len(examples)} nlu_data examples for agreement)", rows)
    name = args.name or (f"nlu_latency_{args.texts.parent.parent.name.lower()}" if args.texts else "nlu_latency")
    write_json(name, {"models_dir": str(settings.models_dir), "threads": args.threads, "rounds": args.rounds, "texts": str(args.texts or "short"), "rows": rows})


if __name__ == "__main__":
    main()
