"""Train-and-evaluate runs behind ``assistant nlu-eval``.

* :func:`evaluate_split`: train on train, choose the out-of-scope threshold on valid, report on test
  (the dataset's own splits, or 80/10/10 per intent for a CSV or ``nlu_data/``);
* :func:`cross_validate`: k-fold cross-validation: every example is tested once, by a model that
  did not train on it. On a few hundred examples a single 10 % test split moves by a point or two
  per example it holds; pooled over the folds the figures (per language above all) are steadier.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.nlu import report
from assistant.nlu.datasets import OOS, Dataset
from assistant.nlu.oos import OosDetector, embed, held_out_threshold, margin_detector
from assistant.settings import Settings


@dataclass
class Outcome:
    """What one evaluation produced: the result dict of the report and the test split's labels."""
    result: dict
    texts: list[str]
    y_true: list[str]
    y_pred: list[str]


def train(settings: Settings, data: Dataset, encoder: str, epochs: int | None, progress: bool,
          oos_as_intent: bool = False):
    """Fine-tune on the train split with the configured hyper-parameters; out-of-scope examples are left
    out (the detector handles them) unless ``oos_as_intent`` makes them a class of their own."""
    from assistant.models.registry import resolve_encoder
    from assistant.nlu.classifier import IntentClassifier

    keep = [(t, label) for t, label in zip(data.train.texts, data.train.labels) if oos_as_intent or label != OOS]
    return IntentClassifier.train([t for t, _ in keep], [label for _, label in keep],
                                  resolve_encoder(settings, encoder), encoder, epochs=epochs or settings.nlu_epochs,
                                  batch_size=settings.nlu_batch_size, learning_rate=settings.nlu_learning_rate,
                                  max_length=settings.nlu_max_tokens, seed=settings.nlu_seed, progress=progress,
                                  oos_vectors=settings.nlu_oos_vectors)


def fit_detector(settings: Settings, clf, data: Dataset) -> tuple[OosDetector | None, dict | None]:
    """The configured detector, fitted on train, its threshold chosen on valid's in-scope examples
    (for ``knn_margin``, its weight on valid's out-of-scope ones too, which are also its negatives in
    train); none where the dataset has no out-of-scope test examples to measure it on."""
    if not data.has_oos or settings.nlu_oos_method == "none":
        return None, None
    method = settings.nlu_oos_method
    if method == "knn_margin":
        train_f, _ = embed(clf, data.train.texts)
        valid_f, valid_p = embed(clf, data.valid.texts)
        return margin_detector(clf, train_f, data.train.labels, valid_f, valid_p, data.valid.labels, OOS,
                               settings.nlu_oos_max_loss)
    train_idx = [i for i, label in enumerate(data.train.labels) if label != OOS]
    train_f, _ = embed(clf, [data.train.texts[i] for i in train_idx])
    detector = OosDetector.fit(method, train_f, [data.train.labels[i] for i in train_idx])
    keep = [i for i, label in enumerate(data.valid.labels) if label != OOS]
    valid_f, valid_p = embed(clf, [data.valid.texts[i] for i in keep])
    detector.threshold, calibration = held_out_threshold(detector, clf, valid_f, valid_p,
                                                         [data.valid.labels[i] for i in keep],
                                                         settings.nlu_oos_max_loss)
    return detector, calibration


def predict(model, labels: list[str], detector: OosDetector | None, texts: list[str]) -> list[str]:
    features, probs = embed(model, texts)
    top = [labels[i] for i in probs.argmax(1)]
    if detector is None:
        return top
    return [label if ok else OOS for label, ok in zip(top, detector.in_scope(features, probs))]


def evaluate_split(settings: Settings, data: Dataset, encoder: str, epochs: int | None, out_dir: Path,
                   onnx: bool = True, progress: bool = True) -> Outcome:
    clf, rep = train(settings, data, encoder, epochs, progress)
    detector, calibration = fit_detector(settings, clf, data)
    pred = predict(clf, clf.labels, detector, data.test.texts)
    result = {"dataset": data.name, "model": encoder, "train_examples": rep.examples,
              "train_seconds": round(rep.seconds, 1), "epochs": rep.epochs,
              "threshold": round(detector.threshold, 4) if detector else None, "oos_detector": calibration,
              **_metrics(data.test.texts, data.test.labels, pred, data.has_oos)}
    if onnx:   # the same model exported to ONNX (fp32, int8), on the same test split
        from assistant.models.registry import resolve_encoder
        from assistant.nlu.onnx_runtime import load_onnx_classifier

        model_dir = out_dir / f"model-{data.name}"
        clf.save(model_dir)
        if detector is not None:
            detector.save(model_dir)
        result["runtimes"] = {"torch": report.runtime_row(data.test.labels, pred, pred)}
        for int8 in (False, True):
            onnx_clf = load_onnx_classifier(model_dir, lambda spec: resolve_encoder(settings, spec), int8=int8)
            result["runtimes"][onnx_clf.runtime] = report.runtime_row(
                data.test.labels, predict(onnx_clf, clf.labels, detector, data.test.texts), pred)
    return Outcome(result, data.test.texts, data.test.labels, pred)


def cross_validate(settings: Settings, splits: list[Dataset], encoder: str, epochs: int | None,
                   progress: bool = True, repeats: int = 1) -> Outcome:
    """Cross-validation over ``splits`` (:func:`assistant.nlu.datasets.kfold`); the figures pool every
    fold's test part. With ``repeats`` > 1, ``splits`` holds that many k-fold rotations of the same
    examples one after another, each from its own shuffle (repeated k-fold): every example is tested
    once per repeat, the figures pool them all, and ``per_repeat`` shows how far one k-fold run moves."""
    all_texts, y_true, y_pred, per_fold = [], [], [], []
    folds, name = len(splits) // repeats, splits[0].name
    has_oos = any(data.has_oos for data in splits)
    for n, data in enumerate(splits):
        repeat, fold = divmod(n, folds)
        if progress:
            print(f"{f'repeat {repeat + 1}/{repeats}, ' if repeats > 1 else ''}fold {fold + 1}/{folds}: "
                  f"{len(data.train)} train / {len(data.valid)} valid / {len(data.test)} test", flush=True)
        clf, rep = train(settings, data, encoder, epochs, progress)
        detector, _ = fit_detector(settings, clf, data)
        pred = predict(clf, clf.labels, detector, data.test.texts)
        m = report.classification_metrics(data.test.labels, pred)
        per_fold.append({"fold": fold + 1, **({"repeat": repeat + 1} if repeats > 1 else {}), "n": m["n"],
                         "accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
                         "train_examples": rep.examples, "train_seconds": round(rep.seconds, 1),
                         "threshold": round(detector.threshold, 4) if detector else None})
        all_texts += data.test.texts
        y_true += data.test.labels
        y_pred += pred
    accuracies = [f["accuracy"] for f in per_fold]
    thresholds = [f["threshold"] for f in per_fold if f["threshold"] is not None]
    result = {"dataset": f"{name}-cv{folds}{f'x{repeats}' if repeats > 1 else ''}", "model": encoder,
              "folds": folds, "repeats": repeats, "per_fold": per_fold,
              "fold_accuracy_std": round(float(np.std(accuracies)), 4),
              "train_examples": round(float(np.mean([f["train_examples"] for f in per_fold]))),
              "train_seconds": round(float(np.mean([f["train_seconds"] for f in per_fold])), 1),
              "epochs": epochs or settings.nlu_epochs,
              "threshold": round(float(np.mean(thresholds)), 4) if thresholds else None, "oos_detector": None,
              **_metrics(all_texts, y_true, y_pred, has_oos)}
    if repeats > 1:
        size = len(y_true) // repeats
        result["per_repeat"] = [
            {"repeat": r + 1, **_repeat_figures(all_texts[r * size:(r + 1) * size], y_true[r * size:(r + 1) * size],
                                                y_pred[r * size:(r + 1) * size])} for r in range(repeats)]
    return Outcome(result, all_texts, y_true, y_pred)


def _repeat_figures(texts: list[str], y_true: list[str], y_pred: list[str]) -> dict:
    """One k-fold run's pooled accuracy, overall and per language."""
    languages = report.sliced(texts, y_true, y_pred)["language"]
    return {"accuracy": report.classification_metrics(y_true, y_pred)["accuracy"],
            **{f"accuracy_{lang}": v["accuracy"] for lang, v in languages.items()}}


def _metrics(texts: list[str], y_true: list[str], y_pred: list[str], has_oos: bool) -> dict:
    return {"test": report.classification_metrics(y_true, y_pred), "slices": report.sliced(texts, y_true, y_pred),
            "oos": report.oos_metrics(y_true, y_pred) if has_oos else None,
            "misclassified": report.misclassified(texts, y_true, y_pred)}
