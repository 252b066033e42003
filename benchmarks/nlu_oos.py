"""Which out-of-scope detector, on a dataset with an ``oos`` split (CLINC150)?

Trains this project's classifier on train (or loads one saved by ``assistant nlu-eval``), embeds
train/valid/test once (pooled vectors + probabilities from one ONNX Runtime pass), then for each
detector of :mod:`assistant.nlu.oos` fits its statistics on train, chooses the threshold on valid's
**in-scope** examples (at most ``--max-loss`` of their accuracy) and scores test: in-scope accuracy,
OOS recall and precision, plus AUROC (in-scope against OOS on test; threshold-free) and, for
reference only, the OOS recall an oracle threshold on test would get at 95 % in-scope accuracy.
The knn_margin detector chosen on valid (at the first ``--max-loss``) is saved with the model: the
NLU service loads it as it is from ``<ASSISTANT_MODELS_DIR>/nlu`` (``benchmarks/nlu_latency.py`` on it
times the service with a 15,000-example detector).

    .venv/bin/python -m benchmarks.nlu_oos --data ../shared/datasets/CLINC150 [--model DIR] [--oos-train]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.common import print_table, write_json

DETECTORS = [("softmax", 0), ("mahalanobis", 0), ("knn", 1), ("knn", 5), ("knn", 10)]
MARGIN_SHOWN = (0.25, 0.5, 1.0)   # knn margin weights shown as compared on test


def auroc(in_scores: np.ndarray, oos_scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    y = np.r_[np.ones(len(in_scores)), np.zeros(len(oos_scores))]
    return float(roc_auc_score(y, np.r_[in_scores, oos_scores]))


def evaluate(detector, split_features, split_probs, labels: list[str], y_true: list[str], oos: str) -> dict:
    from assistant.nlu.report import oos_metrics

    scores = detector.scores(split_features, split_probs)
    top = [labels[i] for i in split_probs.argmax(1)]
    pred = [t if s >= detector.threshold else oos for t, s in zip(top, scores)]
    row = oos_metrics(y_true, pred)
    is_oos = np.array([t == oos for t in y_true])
    row["auroc"] = round(auroc(scores[~is_oos], scores[is_oos]), 4)
    # oracle reference: the best OOS recall on test at in-scope accuracy >= 95 %; a message whose top
    # intent is the oos class (when one was trained) counts as rejected at every threshold, as above
    correct = np.array([p == t for p, t in zip(top, y_true)])[~is_oos]
    top_oos = np.array([t == oos for t in top])
    best = 0.0
    for cut in np.unique(np.quantile(scores, np.linspace(0, 1, 400))):
        if np.mean(correct & (scores[~is_oos] >= cut)) >= 0.95:
            best = max(best, float(np.mean((scores[is_oos] < cut) | top_oos[is_oos])))
    row["oracle_oos_recall_at_95"] = round(best, 4)
    return row


def set_oos_vectors(model_dir: Path, oos_vectors: str) -> None:
    from assistant.nlu.classifier import META_FILE

    meta = json.loads((model_dir / META_FILE).read_text())
    if meta.get("oos_vectors", "last") != oos_vectors:
        meta["oos_vectors"] = oos_vectors    # the ONNX export is redone at load: meta.json is part of its digest
        (model_dir / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2))


def main() -> None:
    from assistant.models.registry import resolve_encoder
    from assistant.nlu import evaluate as nlu_evaluate
    from assistant.nlu.classifier import META_FILE, OOS_VECTORS
    from assistant.nlu.datasets import OOS, load_dataset
    from assistant.nlu.oos import OosDetector, embed, held_out_threshold, margin_detector
    from assistant.nlu.onnx_runtime import load_onnx_classifier
    from assistant.settings import Settings

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/datasets/CLINC150")
    ap.add_argument("--model", help="a model saved by `assistant nlu-eval` (model-<dataset>/); trained when absent")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--oos-train", action="store_true", help="train with the oos training examples as a class")
    ap.add_argument("--oos-vectors", choices=OOS_VECTORS,
                    help="what the detectors compare (default: ASSISTANT_NLU_OOS_VECTORS); for a saved --model, "
                         "rewrites its meta.json: the trained weights do not depend on it")
    ap.add_argument("--max-loss", type=float, nargs="+", default=[0.01, 0.02])
    args = ap.parse_args()

    s = Settings(**({"nlu_oos_vectors": args.oos_vectors} if args.oos_vectors else {}))
    data = load_dataset(Path(args.data), s.nlu_seed)
    if not data.has_oos:
        raise SystemExit(f"{args.data} has no out-of-scope test examples: nothing to measure")
    model_dir = Path(args.model) if args.model else None
    train_seconds = None
    if model_dir is None:
        started = time.perf_counter()
        clf, _ = nlu_evaluate.train(s, data, s.encoder_model, args.epochs, progress=True, oos_as_intent=args.oos_train)
        train_seconds = round(time.perf_counter() - started, 1)
        model_dir = s.var_dir / f"nlu-oos-{data.name}{'-oos-train' if args.oos_train else ''}"
        clf.save(model_dir)
    elif args.oos_vectors:
        set_oos_vectors(model_dir, args.oos_vectors)
    clf = load_onnx_classifier(model_dir, lambda spec: resolve_encoder(s, spec), int8=False, threads=s.torch_threads)
    oos_trained = OOS in clf.labels
    clf_vectors = json.loads((model_dir / META_FILE).read_text()).get("oos_vectors", "last")
    started = time.perf_counter()
    train_f, train_p = embed(clf, data.train.texts)
    valid_f, valid_p = embed(clf, data.valid.texts)
    test_f, test_p = embed(clf, data.test.texts)
    embed_s = time.perf_counter() - started
    # the detectors' statistics come from in-scope examples (an oos class, if trained, is not "in scope")
    in_train = [i for i, label in enumerate(data.train.labels) if label in clf.labels and label != OOS]
    v_in = np.array([label != OOS for label in data.valid.labels])
    v_labels = [label for label in data.valid.labels if label != OOS]

    rows = []
    for method, k in DETECTORS:
        started = time.perf_counter()
        det = OosDetector.fit(method, train_f[in_train], [data.train.labels[i] for i in in_train], k=k or 5)
        fit_s = time.perf_counter() - started
        for loss in args.max_loss:
            det.threshold, _ = held_out_threshold(det, clf, valid_f[v_in], valid_p[v_in], v_labels, loss)
            t0 = time.perf_counter()
            row = evaluate(det, test_f, test_p, clf.labels, data.test.labels, OOS)
            score_ms = (time.perf_counter() - t0) * 1000 / len(data.test)
            rows.append({"detector": method + (f" k={k}" if method == "knn" else ""), "max_loss": loss,
                         **row, "fit_s": round(fit_s, 2), "score_ms_per_msg": round(score_ms, 3)})
    # the service's knn_margin detector (negatives: the oos training examples): rows for a few weights
    # compared on test, and for the weight calibration chooses on valid (the most valid oos examples
    # rejected under the same threshold rule), as `assistant nlu-eval` and train-nlu do
    oos_train = [i for i, label in enumerate(data.train.labels) if label == OOS]
    fit_idx = in_train + oos_train
    fit_labels = [data.train.labels[i] for i in fit_idx]
    valid_recall_by_weight = {}
    for loss in args.max_loss if oos_train else ():
        for w in MARGIN_SHOWN:
            det = OosDetector.fit("knn_margin", train_f[fit_idx], fit_labels, negative=OOS, weight=w)
            det.threshold, _ = held_out_threshold(det, clf, valid_f[v_in], valid_p[v_in], v_labels, loss)
            rows.append({"detector": f"knn_margin w={w}", "max_loss": loss,
                         **evaluate(det, test_f, test_p, clf.labels, data.test.labels, OOS)})
        det, calibration = margin_detector(clf, train_f[fit_idx], fit_labels, valid_f, valid_p, data.valid.labels,
                                           OOS, loss)
        rows.append({"detector": f"knn_margin w={det.info['weight']} (w from valid)", "max_loss": loss,
                     **evaluate(det, test_f, test_p, clf.labels, data.test.labels, OOS)})
        valid_recall_by_weight[str(loss)] = calibration["negatives_rejected_by_weight"]
        if loss == args.max_loss[0]:    # saved with the model, which the NLU service can then load as is
            det.info.update(calibration=calibration)
            det.save(model_dir)
    print_table(f"{data.name}: out-of-scope detectors (threshold from valid in-scope examples; "
                f"{'oos examples trained as a class' if oos_trained else 'in-scope training only'})", rows)
    write_json(f"nlu_oos_{data.name.lower()}{'_oos_train' if oos_trained else ''}"
               f"{'_last_layer' if clf_vectors == 'last' else ''}",
               {"dataset": data.name, "model_dir": str(model_dir), "oos_vectors": clf_vectors, "labels": len(clf.labels),
                "train_seconds": train_seconds, "epochs": args.epochs if args.model is None else None,
                "embed_seconds": round(embed_s, 1), "rows": rows,
                "knn_margin_valid_oos_rejected_by_weight": valid_recall_by_weight})


if __name__ == "__main__":
    main()
