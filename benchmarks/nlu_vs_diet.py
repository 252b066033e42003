"""This project's BERT intent classifier against Rasa's DIETClassifier, on the same splits.

For each dataset (the assistant's ``nlu_data/``, HWU64, CLINC150 with its ``oos`` split), both
sides train on train, pick their out-of-scope threshold on valid (the same rule for both: the
highest that costs valid's in-scope examples at most ``ASSISTANT_NLU_OOS_MAX_LOSS`` of their
accuracy; DIET thresholds its confidence, BERT the service's out-of-scope detector) and are scored on test:
accuracy, macro-F1, in-scope accuracy and OOS recall/precision (when the dataset has OOS examples),
training time, latency at batch 1 and peak memory.

* **BERT**: multilingual-e5-small fine-tuned by ``IntentClassifier.train`` (the embedding matrix
  frozen), served as the NLU service serves it (``ASSISTANT_NLU_RUNTIME``, default ONNX Runtime
  fp32) behind ``NluParser.parse``. The accuracy of every runtime (PyTorch, ONNX fp32, int8) is
  in the JSON.
* **DIET**: Rasa's recommended pipeline (WhitespaceTokenizer, or JiebaTokenizer when the data has
  Chinese; CountVectorsFeaturizer words + char_wb 1-4 grams; DIETClassifier, 100 epochs), trained
  by the real ``rasa`` 3.6 in the Rasa environment (``benchmarks/diet_runner.py``), parsed through
  ``Agent.parse_message``.

Each side runs in a process of its own, so that its peak memory (VmHWM: training + inference) is
its own. Latency: one message at a time over up to ``--latency-samples`` test messages, after a
warm-up. ``--oos-train`` gives both sides the dataset's out-of-scope training examples as one more
class (CLINC150's 100 ``oos`` examples); by default both train on in-scope examples only. The
results JSON is rewritten as each side finishes, so a long run that is stopped keeps what it
measured; the BERT side's model stays in ``var/`` (``benchmarks.nlu_oos --model`` reads it).

    .venv/bin/python -m benchmarks.nlu_vs_diet [--data nlu_data ../shared/datasets/HWU64 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ["nlu_data", "../shared/datasets/HWU64", "../shared/datasets/CLINC150"]


# -- the BERT side (a child process of the app environment) --------------------------------------
def run_bert(data_path: str, out: Path, epochs: int | None, latency_samples: int, oos_train: bool) -> None:
    from assistant.models.registry import resolve_encoder
    from assistant.nlu import evaluate
    from assistant.nlu.data import load_nlu_data
    from assistant.nlu.datasets import OOS, load_dataset
    from assistant.nlu.entities import EntityExtractor
    from assistant.nlu.onnx_runtime import load_onnx_classifier
    from assistant.nlu.oos import OosDetector, embed
    from assistant.nlu.parser import NluParser, ParserConfig
    from assistant.nlu.service import limit_blas_threads
    from assistant.settings import Settings

    s = Settings()
    data = load_dataset(Path(data_path), s.nlu_seed)
    train = [(t, label) for t, label in zip(data.train.texts, data.train.labels) if label != OOS]
    started = time.perf_counter()
    clf, rep = evaluate.train(s, data, s.encoder_model, epochs, progress=False, oos_as_intent=oos_train)
    train_seconds = time.perf_counter() - started
    model_dir = s.var_dir / f"nlu-vs-diet-{data.name}{'-oos-train' if oos_train else ''}"
    clf.save(model_dir)

    classifiers = {"torch": clf}
    for int8 in (False, True):
        onnx = load_onnx_classifier(model_dir, lambda spec: resolve_encoder(s, spec), int8=int8, threads=s.torch_threads)
        classifiers[onnx.runtime] = onnx
    # the service's out-of-scope detector, fitted on train; its score stands in for DIET's confidence
    detector = None
    if s.nlu_oos_method != "none":     # (fitted without OOS examples too: the latency includes it)
        detector = OosDetector.fit(s.nlu_oos_method, embed(classifiers[s.nlu_runtime], [t for t, _ in train])[0],
                                   [label for _, label in train])

    def top1(model, texts):
        f, p = embed(model, texts)
        oos_scores = detector.scores(f, p) if detector is not None else p.max(1)
        return [{"intent": model.labels[i], "confidence": float(p[n, i]), "oos_score": float(oos_scores[n])}
                for n, i in enumerate(p.argmax(1))]
    runtimes = {name: {"valid": top1(c, data.valid.texts), "test": top1(c, data.test.texts)}
                for name, c in classifiers.items()}
    result = {"train_seconds": round(train_seconds, 1), "epochs": rep.epochs, "runtime": s.nlu_runtime,
              "model_dir": str(model_dir),
              "oos_method": detector.method if detector is not None else "softmax",
              "runtimes": runtimes, **runtimes[s.nlu_runtime]}
    # batch 1 through the service's own code path and runtime, detector included (thresholds off: speed only)
    parser = NluParser(classifiers[s.nlu_runtime], EntityExtractor(load_nlu_data(s.nlu_data_dir)),
                       ParserConfig(0.0, s.nlu_fallback_intent, s.nlu_max_chars), detector=detector)
    limit_blas_threads()     # as the service does (load_parser)
    parser.parse("warm up")
    latency = []
    for text in data.test.texts[:latency_samples]:
        t0 = time.perf_counter()
        parser.parse(text)
        latency.append(time.perf_counter() - t0)
    from benchmarks.common import memory_mb

    result.update(latency_s=latency, peak_rss_mb=round(memory_mb("VmHWM"), 1))
    out.write_text(json.dumps(result), encoding="utf-8")


# -- the DIET side (the Rasa environment) -----------------------------------------------------------
def run_diet(data, out: Path, epochs: int, latency_samples: int, oos_train: bool) -> None:
    from assistant.lang import detect_language
    from assistant.nlu.datasets import OOS
    from assistant.settings import Settings

    has_zh = any(detect_language(t) == "zh" for t in data.train.texts[:2000])
    train = [(t, label) for t, label in zip(data.train.texts, data.train.labels) if oos_train or label != OOS]
    job = {"train_texts": [t for t, _ in train], "train_labels": [label for _, label in train],
           "valid_texts": data.valid.texts, "test_texts": data.test.texts, "epochs": epochs,
           "language": "zh" if has_zh else "en", "tokenizer": "JiebaTokenizer" if has_zh else "WhitespaceTokenizer",
           "latency_samples": latency_samples}
    job_file = out.with_suffix(".job.json")
    job_file.write_text(json.dumps(job, ensure_ascii=False), encoding="utf-8")
    from assistant.stack import rasa_env

    python = Settings().rasa_venv / "bin" / "python"
    subprocess.run([str(python), str(ROOT / "benchmarks" / "diet_runner.py"), str(job_file), str(out)],
                   check=True, env={**os.environ, **rasa_env()}, cwd=ROOT)


# -- scoring ----------------------------------------------------------------------------------------------
def score(side: dict, data, max_loss: float) -> dict:
    """Both sides by one rule: an out-of-scope score per message (DIET: its confidence; BERT: the
    service's detector), its threshold the highest that costs valid's in-scope examples at most
    ``max_loss`` of their accuracy."""
    from assistant.nlu import report
    from assistant.nlu.datasets import OOS
    from assistant.nlu.oos import choose_threshold

    out = {}
    t_lab = [r["intent"] for r in side["test"]]
    threshold = None
    if data.has_oos:
        valid = [(r, t) for r, t in zip(side["valid"], data.valid.labels) if t != OOS]
        threshold = choose_threshold([r.get("oos_score", r["confidence"]) for r, _ in valid],
                                     [r["intent"] == t for r, t in valid], max_loss)
    pred = (t_lab if threshold is None else
            [label if r.get("oos_score", r["confidence"]) >= threshold else OOS for label, r in zip(t_lab, side["test"])])
    m = report.classification_metrics(data.test.labels, pred)
    out.update(accuracy=m["accuracy"], macro_f1=m["macro_f1"], threshold=threshold, oos_max_loss=max_loss)
    if data.has_oos:
        out.update(report.oos_metrics(data.test.labels, pred))
    return out


def latency_row(values_s: list[float]) -> dict:
    from benchmarks.common import summary_ms

    s = summary_ms(values_s)
    return {"p50_ms": s["p50_ms"], "p95_ms": s["p95_ms"], "n": s["n"]}


def compare(data_path: str, work: Path, args, done: list[dict]) -> dict:
    """Both sides on one dataset; ``done`` (the datasets finished before) and this one's rows so far
    are written to the results JSON after each side."""
    from assistant.nlu.datasets import load_dataset
    from assistant.settings import Settings

    settings = Settings()
    data = load_dataset(Path(data_path), settings.nlu_seed)
    max_loss = settings.nlu_oos_max_loss
    print(f"\n== {data.name}: {len(data.train)} train / {len(data.valid)} valid / {len(data.test)} test, "
          f"{len(data.intents)} intents{', with OOS' if data.has_oos else ''}", flush=True)
    bert_out, diet_out = work / f"{data.name}-bert.json", work / f"{data.name}-diet.json"
    cmd = [sys.executable, "-m", "benchmarks.nlu_vs_diet", "--bert-child", data_path, "--child-out", str(bert_out),
           "--latency-samples", str(args.latency_samples)] + (["--epochs", str(args.epochs)] if args.epochs else []) \
        + (["--oos-train"] if args.oos_train else [])
    result = {"dataset": data.name, "train": len(data.train), "valid": len(data.valid), "test": len(data.test),
              "intents": len(data.intents), "oos": data.has_oos, "oos_trained_as_class": args.oos_train,
              "diet_epochs": args.diet_epochs, "rows": {}}

    def add(name: str, side: dict, **extra) -> None:
        result["rows"][name] = {**score(side, data, max_loss), "train_s": side["train_seconds"],
                                **latency_row(side["latency_s"]), "peak_rss_mb": side["peak_rss_mb"], **extra}
        save(args.name, done + [result])

    started = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT)
    print(f"   BERT done in {time.perf_counter() - started:.0f} s", flush=True)
    bert = json.loads(bert_out.read_text())
    bert_name = f"BERT (e5-small, {bert['runtime']}, OOS: {bert['oos_method']})"
    result.update(bert_epochs=bert["epochs"], bert_model_dir=bert["model_dir"])
    add(bert_name, bert, accuracy_by_runtime={rt: score(v, data, max_loss)["accuracy"]
                                              for rt, v in bert["runtimes"].items()})
    started = time.perf_counter()
    run_diet(data, diet_out, args.diet_epochs, args.latency_samples, args.oos_train)
    print(f"   DIET done in {time.perf_counter() - started:.0f} s", flush=True)
    diet = json.loads(diet_out.read_text())
    result["diet_pipeline"] = diet["pipeline"]
    add("Rasa DIET" + (f" ({args.diet_epochs} epochs)" if args.diet_epochs != 100 else ""), diet)
    return result


def save(name: str, results: list[dict]) -> None:
    from benchmarks.common import write_json

    write_json(name, {"datasets": results, "table": table(results)})


def table(results: list[dict]) -> list[dict]:
    out = []
    for r in results:
        for model, m in r["rows"].items():
            out.append({"dataset": r["dataset"], "model": model, "accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
                        "in_scope": m.get("in_scope_accuracy", ""), "oos_recall": m.get("oos_recall", ""),
                        "oos_precision": m.get("oos_precision", ""), "train_s": m["train_s"],
                        "p50_ms": m["p50_ms"], "p95_ms": m["p95_ms"], "peak_rss_mb": m["peak_rss_mb"]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", default=DEFAULT_DATA, help="dataset folders, CSVs or nlu_data")
    ap.add_argument("--epochs", type=int, default=None, help="BERT epochs (default: ASSISTANT_NLU_EPOCHS)")
    ap.add_argument("--diet-epochs", type=int, default=100, help="DIET epochs (Rasa's default: 100)")
    ap.add_argument("--latency-samples", type=int, default=300)
    ap.add_argument("--oos-train", action="store_true",
                    help="both sides train on the out-of-scope training examples too, as a class of their own")
    ap.add_argument("--name", default="nlu_vs_diet", help="results file name")
    ap.add_argument("--bert-child", help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.bert_child:
        run_bert(args.bert_child, Path(args.child_out), args.epochs, args.latency_samples, args.oos_train)
        return
    from benchmarks.common import print_table

    work = Path(tempfile.mkdtemp(prefix="nlu-vs-diet-"))
    results: list[dict] = []
    for d in args.data:
        results.append(compare(d, work, args, results))
    print_table("BERT vs Rasa DIET, same splits (threshold for OOS picked on valid; latency at batch 1)", table(results))


if __name__ == "__main__":
    main()
