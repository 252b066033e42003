"""Intent-classification metrics and reports: accuracy, macro-F1, per-intent precision/recall,
worst confusions, slices (language, message length) and out-of-scope figures (the detector and its
threshold are :mod:`assistant.nlu.oos`)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np

from assistant.lang import detect_language
from assistant.nlu.datasets import OOS

_HAN = re.compile(r"[\u3400-\u9fff]")


def length_bucket(text: str) -> str:
    n = len(text) if _HAN.search(text) else len(text.split())
    short = 8 if _HAN.search(text) else 4
    return "short" if n <= short else ("medium" if n <= short * 3 else "long")


def classification_metrics(y_true: list[str], y_pred: list[str]) -> dict:
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    labels = sorted(set(y_true) | set(y_pred))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    accuracy = float(np.mean([a == b for a, b in zip(y_true, y_pred)])) if y_true else 0.0
    return {
        "n": len(y_true),
        "accuracy": round(accuracy, 4),
        "macro_f1": round(float(f1_score(y_true, y_pred, labels=sorted(set(y_true)), average="macro", zero_division=0)), 4),
        "per_intent": {l: {"precision": round(float(pi), 4), "recall": round(float(ri), 4), "f1": round(float(fi), 4),
                           "support": int(si)} for l, pi, ri, fi, si in zip(labels, p, r, f, s)},
        "worst_confusions": [{"true": t, "predicted": q, "count": c}
                             for (t, q), c in Counter((t, q) for t, q in zip(y_true, y_pred) if t != q).most_common(10)],
    }


def sliced(texts: list[str], y_true: list[str], y_pred: list[str]) -> dict:
    out = {}
    for name, key in (("language", detect_language), ("length", length_bucket)):
        groups: dict[str, list[int]] = {}
        for i, t in enumerate(texts):
            groups.setdefault(key(t), []).append(i)
        out[name] = {g: {"n": len(ix), "accuracy": round(float(np.mean([y_true[i] == y_pred[i] for i in ix])), 4)}
                     for g, ix in sorted(groups.items())}
    return out


def misclassified(texts: list[str], y_true: list[str], y_pred: list[str], limit: int = 200) -> list[dict]:
    """The test examples the model got wrong (up to ``limit``), grouped by confusion, most frequent first:
    what a data owner reads to decide which examples to add."""
    pairs = Counter((t, p) for t, p in zip(y_true, y_pred) if t != p)
    wrong = [{"text": x, "true": t, "predicted": p} for x, t, p in zip(texts, y_true, y_pred) if t != p]
    wrong.sort(key=lambda w: (-pairs[(w["true"], w["predicted"])], w["true"], w["predicted"]))
    return wrong[:limit]


def oos_metrics(y_true: list[str], y_pred: list[str]) -> dict:
    ins = [i for i, t in enumerate(y_true) if t != OOS]
    oos_true = {i for i, t in enumerate(y_true) if t == OOS}
    oos_pred = {i for i, p in enumerate(y_pred) if p == OOS}
    return {
        "in_scope_accuracy": round(float(np.mean([y_true[i] == y_pred[i] for i in ins])), 4) if ins else None,
        "oos_recall": round(len(oos_true & oos_pred) / len(oos_true), 4) if oos_true else None,
        "oos_precision": round(len(oos_true & oos_pred) / len(oos_pred), 4) if oos_pred else None,
    }


def runtime_row(y_true: list[str], y_pred: list[str], reference: list[str]) -> dict:
    """Accuracy of one runtime's predictions, and how often it agrees with the reference runtime's."""
    m = classification_metrics(y_true, y_pred)
    agree = sum(a == b for a, b in zip(y_pred, reference)) / max(1, len(reference))
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "agreement_with_torch": round(agree, 4)}


def markdown(result: dict) -> str:
    m = result["test"]
    lines = [f"# Intent classification: {result['dataset']}", "",
             f"- model: {result['model']}, trained on {result['train_examples']} examples in {result['train_seconds']} s",
             f"- test accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f} ({m['n']} examples)"]
    if result.get("folds"):
        per_fold = ", ".join(f"{f['accuracy']:.4f}" for f in result["per_fold"])
        repeats = result.get("repeats", 1)
        tested = "once" if repeats == 1 else f"once per repeat, {repeats} repeats with their own shuffles"
        lines.append(f"- {result['folds']}-fold cross-validation, every example tested {tested} (figures pooled); "
                     f"per-fold accuracy {per_fold} (std {result['fold_accuracy_std']:.4f}); training is per fold")
        for r in result.get("per_repeat", []):
            lines.append(f"- repeat {r['repeat']}: " + ", ".join(f"{k.replace('_', ' ')} {v:.4f}"
                                                                   for k, v in r.items() if k != "repeat"))
    if result.get("oos"):
        o = result["oos"]
        method = (result.get("oos_detector") or {}).get("method", "softmax")
        lines.append(f"- out-of-scope detector {method}, threshold {result['threshold']} (chosen on valid's in-scope "
                     f"examples): in-scope accuracy {o['in_scope_accuracy']}, OOS recall {o['oos_recall']}, "
                     f"OOS precision {o['oos_precision']}")
    if result.get("runtimes"):
        lines += ["", "## Runtimes (same model, same test split)", "",
                  "| runtime | accuracy | macro-F1 | agreement with torch |", "|---|---|---|---|"]
        lines += [f"| {k} | {v['accuracy']:.4f} | {v['macro_f1']:.4f} | {v['agreement_with_torch']:.4f} |"
                  for k, v in result["runtimes"].items()]
    lines += ["", "## Slices", "", "| slice | group | n | accuracy |", "|---|---|---|---|"]
    for name, groups in result["slices"].items():
        lines += [f"| {name} | {g} | {v['n']} | {v['accuracy']:.4f} |" for g, v in groups.items()]
    lines += ["", "## Worst confusions", "", "| true | predicted | count |", "|---|---|---|"]
    lines += [f"| {c['true']} | {c['predicted']} | {c['count']} |" for c in m["worst_confusions"]]
    if result.get("misclassified"):
        lines += ["", "## Misclassified examples", "", "| text | true | predicted |", "|---|---|---|"]
        lines += [f"| {w['text'].replace('|', '/')} | {w['true']} | {w['predicted']} |" for w in result["misclassified"][:40]]
    lines += ["", "## Per intent", "", "| intent | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |"
              for k, v in m["per_intent"].items()]
    return "\n".join(lines) + "\n"


def confusion_png(y_true: list[str], y_pred: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix

    labels = sorted(set(y_true) | set(y_pred))
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    size = max(6, min(30, len(labels) * 0.25))
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(cm, cmap="Blues")
    if len(labels) <= 40:
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(result: dict, y_true: list[str], y_pred: list[str], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"\W+", "_", result["dataset"]).strip("_").lower()
    paths = [out_dir / f"nlu_{stem}.json", out_dir / f"nlu_{stem}.md", out_dir / f"nlu_{stem}_confusion.png"]
    paths[0].write_text(json.dumps(result, ensure_ascii=False, indent=2))
    paths[1].write_text(markdown(result))
    confusion_png(y_true, y_pred, paths[2])
    return paths
