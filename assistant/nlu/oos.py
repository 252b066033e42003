"""Out-of-scope detection: which messages the intent classifier should not answer.

A detector turns what one forward pass of the classifier gives (the pooled sentence vectors and the
intent probabilities) into an in-scope score, higher meaning "more like the training data":

* ``softmax``: the top intent's probability (what Rasa's fallback threshold reads);
* ``mahalanobis``: minus the smallest Mahalanobis distance to an intent's mean training vector, one
  covariance shared by all intents (Lee et al. 2018; Podolskiy et al. 2021 for transformers);
* ``knn``: the cosine similarity to the k-th nearest training example (Sun et al. 2022); k = 1 by
  default, the best of 1, 5 and 10 on CLINC150 (``benchmarks/nlu_oos.py``);
* ``knn_margin``: the knn score minus ``weight`` times the cosine similarity to the nearest example
  of the *negative* intent (the out-of-scope examples a company wrote, ``out_of_scope`` in
  ``nlu_data/``): a message close to something known to be out of scope scores lower. The weight is
  chosen on held-out examples, negatives included (:func:`calibrate`).

Below its threshold a message is out of scope. The threshold is chosen on held-out **in-scope**
examples alone (:func:`choose_threshold`): the highest cut that costs at most ``max_loss`` of their
accuracy. That needs no out-of-scope examples, which a company's own data rarely has; where a
split does have them they only measure the result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from assistant.models.encoder import unit_rows
from assistant.nlu.datasets import shuffled_by_label

METHODS = ("softmax", "mahalanobis", "knn", "knn_margin")
MARGIN_WEIGHTS = (0.125, 0.25, 0.375, 0.5, 0.75, 1.0)   # the knn margin's weights tried by calibration
STATS_FILE = "oos.npz"
META_FILE = "oos.json"


class OosError(ValueError):
    pass


@dataclass
class OosDetector:
    method: str
    threshold: float = float("-inf")
    k: int = 1
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    # ---------------------------------------------------------------- fitting
    @classmethod
    def fit(cls, method: str, features: np.ndarray, labels: list[str], k: int = 1, negative: str | None = None,
            weight: float = 0.25) -> "OosDetector":
        """Training statistics for ``method`` from the training examples' pooled vectors. For
        ``knn_margin``, the examples labelled ``negative`` are the out-of-scope ones it contrasts with,
        and ``weight`` how much that contrast counts; any other method given ``negative`` leaves those
        examples out of its statistics."""
        if method not in METHODS:
            raise OosError(f"unknown out-of-scope method {method!r}; choose one of {', '.join(METHODS)}")
        features = np.asarray(features, dtype=np.float64)
        if method == "softmax":
            return cls(method)
        if negative is not None:
            keep = [i for i, label in enumerate(labels) if label != negative]
            negatives = np.asarray([i for i, label in enumerate(labels) if label == negative], dtype=int)
            negatives, features, labels = features[negatives], features[keep], [labels[i] for i in keep]
        if len(features) != len(labels) or len(features) < 2:
            raise OosError("out-of-scope statistics need a vector for each of at least two training examples")
        if method == "knn_margin":
            if negative is None or not len(negatives):
                raise OosError(f"the 'knn_margin' out-of-scope method needs examples of the negative intent "
                               f"({negative or 'none named'}) to contrast with: add out-of-scope examples under that "
                               "intent, or set ASSISTANT_NLU_OOS_METHOD=knn")
            return cls(method, k=1, arrays={"bank": unit_rows(features).astype(np.float32),
                                            "negatives": unit_rows(negatives).astype(np.float32)},
                       info={"negative": negative, "weight": float(weight)})
        if method == "knn":
            return cls(method, k=max(1, min(k, len(features))), arrays={"bank": unit_rows(features).astype(np.float32)})
        from sklearn.covariance import LedoitWolf

        names = sorted(set(labels))
        y = np.array([names.index(label) for label in labels])
        means = np.stack([features[y == c].mean(0) for c in range(len(names))])
        precision = LedoitWolf().fit(features - means[y]).precision_
        return cls(method, arrays={"means": means.astype(np.float32), "precision": precision.astype(np.float32)},
                   info={"intents": names})

    # ---------------------------------------------------------------- scoring
    def scores(self, features: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """In-scope scores, one per row: higher is more in scope."""
        if self.method == "softmax":
            return np.asarray(probs).max(1)
        x = np.asarray(features, dtype=np.float32)
        if self.method in ("knn", "knn_margin"):
            x = unit_rows(x)
            sims = x @ self.arrays["bank"].T
            kth = min(self.k, sims.shape[1])
            score = -np.partition(-sims, kth - 1, axis=1)[:, kth - 1]
            if self.method == "knn_margin":
                score = score - self.info["weight"] * (x @ self.arrays["negatives"].T).max(1)
            return score
        means, precision = self.arrays["means"], self.arrays["precision"]
        xp = x @ precision
        d2 = ((xp * x).sum(1)[:, None] - 2 * xp @ means.T + ((means @ precision) * means).sum(1)[None, :])
        return -d2.min(1)

    def in_scope(self, features: np.ndarray, probs: np.ndarray) -> np.ndarray:
        return self.scores(features, probs) >= self.threshold

    # ---------------------------------------------------------------- persistence
    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        if self.arrays:
            np.savez(directory / STATS_FILE, **self.arrays)
        meta = {"method": self.method, "threshold": self.threshold, "k": self.k, **self.info}
        (directory / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2))

    @classmethod
    def load(cls, directory: Path) -> "OosDetector | None":
        """The detector saved with a model, or None when the model has none (an older model)."""
        path = directory / META_FILE
        if not path.is_file():
            return None
        meta = json.loads(path.read_text())
        method = meta.pop("method")
        if method not in METHODS:
            raise OosError(f"{path}: unknown out-of-scope method {method!r}; retrain with `assistant train-nlu`")
        arrays = {}
        if method != "softmax":
            with np.load(directory / STATS_FILE) as z:
                arrays = {name: z[name] for name in z.files}
        return cls(method, float(meta.pop("threshold")), int(meta.pop("k", 1)), arrays, meta)


def choose_threshold(scores: np.ndarray, correct: np.ndarray, max_loss: float) -> float:
    """The highest score cut that rejects held-out in-scope examples costing at most ``max_loss`` of
    their accuracy. ``correct`` says which of them the classifier got right (rejecting a wrong
    answer costs nothing)."""
    scores, correct = np.asarray(scores, dtype=np.float64), np.asarray(correct, dtype=bool)
    if not len(scores):
        raise OosError("choosing an out-of-scope threshold needs held-out in-scope examples")
    allowed = int(np.floor(max_loss * len(scores) + 1e-9))   # correct answers we may reject
    right = np.sort(scores[correct])
    if allowed >= len(right):
        return float(np.max(scores)) + 1e-6
    # rejecting everything below right[allowed] loses exactly `allowed` correct answers (ties aside)
    return float(right[allowed])


def embed(classifier, texts: list[str], batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Pooled vectors and probabilities for many texts, in batches."""
    parts = [classifier.features_and_proba(texts[i:i + batch]) for i in range(0, len(texts), batch)]
    return np.concatenate([f for f, _ in parts]), np.concatenate([p for _, p in parts])


def held_out_threshold(detector: OosDetector, classifier, features: np.ndarray, probs: np.ndarray,
                       labels: list[str], max_loss: float) -> tuple[float, dict]:
    """Choose ``detector``'s threshold on held-out in-scope examples (their vectors, probabilities and
    true labels); returns it with what it costs them."""
    scores = detector.scores(features, probs)
    correct = np.array([classifier.labels[i] == t for i, t in zip(probs.argmax(1), labels)])
    threshold = choose_threshold(scores, correct, max_loss)
    rejected = scores < threshold
    return threshold, {"method": detector.method, "threshold": round(threshold, 4), "max_loss": max_loss,
                       "held_out": len(labels), "held_out_accuracy": round(float(correct.mean()), 4),
                       "held_out_rejected": round(float(rejected.mean()), 4),
                       "held_out_accuracy_after": round(float((correct & ~rejected).mean()), 4)}


def holdout(labels: list[str], share: float, seed: int = 13) -> tuple[list[int], list[int]]:
    """Indices to fit on and indices held out, per label: ``share`` of each label's examples (at
    least one) is held out where the label has three or more."""
    fit, held = [], []
    for _, idx in shuffled_by_label(labels, seed):
        n = max(1, round(len(idx) * share)) if len(idx) >= 3 else 0
        held += idx[:n]
        fit += idx[n:]
    return sorted(fit), sorted(held)


def margin_detector(classifier, fit_features: np.ndarray, fit_labels: list[str], held_features: np.ndarray,
                    held_probs: np.ndarray, held_labels: list[str], negative: str, max_loss: float,
                    weights: tuple[float, ...] = MARGIN_WEIGHTS) -> tuple[OosDetector, dict]:
    """The knn margin fitted on the fit examples, with the weight that rejects the most held-out
    ``negative`` examples (the smallest weight on a tie) while its threshold, chosen on the other
    held-out examples, costs them at most ``max_loss`` of their accuracy. A held-out negative counts
    as rejected when its score is below the threshold or the classifier's top intent is ``negative``."""
    is_neg = np.array([label == negative for label in held_labels])
    if not is_neg.any() or is_neg.all():
        raise OosError(f"choosing the knn margin's weight needs held-out examples of {negative!r} and of other "
                       "intents: add out-of-scope examples, or set ASSISTANT_NLU_OOS_METHOD=knn")
    top_neg = np.array([classifier.labels[i] == negative for i in held_probs[is_neg].argmax(1)])
    in_labels = [label for label, neg in zip(held_labels, is_neg) if not neg]
    base = OosDetector.fit("knn_margin", fit_features, fit_labels, negative=negative)   # the banks, fitted once
    best, by_weight = None, {}
    for weight in weights:
        det = replace(base, info={**base.info, "weight": float(weight)})
        det.threshold, report = held_out_threshold(det, classifier, held_features[~is_neg], held_probs[~is_neg],
                                                   in_labels, max_loss)
        recall = float(np.mean((det.scores(held_features[is_neg], held_probs[is_neg]) < det.threshold) | top_neg))
        by_weight[str(weight)] = round(recall, 4)
        if best is None or recall > best[0]:
            best = (recall, det, report)
    recall, det, report = best
    report.update(weight=det.info["weight"], negative=negative, negatives_held_out=int(is_neg.sum()),
                  negatives_rejected=round(recall, 4), negatives_rejected_by_weight=by_weight)
    return det, report


def calibrate(method: str, classifier, texts: list[str], labels: list[str], fit_idx: list[int],
              held_idx: list[int], max_loss: float, negative: str | None = None) -> tuple[OosDetector, dict]:
    """Fit ``method``'s statistics on the examples the classifier was trained on, choose the threshold
    (and the knn margin's weight) on the held-out ones, then add the held-out vectors to the
    statistics (the threshold stays).

    For ``knn_margin`` the held-out *negatives* are not added: more negatives raise the term the margin
    subtracts, so in-scope messages would score lower than when the threshold was chosen and reject
    more than ``max_loss`` allows (on CLINC150 with w = 0.5, in-scope accuracy fell from 95.7 to
    93.7 % at a 1 % budget). Added in-scope vectors can only raise a score, which keeps the budget."""
    features, probs = embed(classifier, texts)
    fit_labels, held_labels = [labels[i] for i in fit_idx], [labels[i] for i in held_idx]
    if method == "knn_margin":
        detector, report = margin_detector(classifier, features[fit_idx], fit_labels, features[held_idx],
                                           probs[held_idx], held_labels, negative, max_loss)
    else:
        detector = OosDetector.fit(method, features[fit_idx], fit_labels)
        detector.threshold, report = held_out_threshold(detector, classifier, features[held_idx], probs[held_idx],
                                                        held_labels, max_loss)
    threshold = detector.threshold
    keep = sorted(list(fit_idx) + [i for i in held_idx if method != "knn_margin" or labels[i] != negative])
    detector = OosDetector.fit(method, features[keep], [labels[i] for i in keep], k=detector.k,
                               negative=negative if method == "knn_margin" else None,
                               weight=detector.info.get("weight", 0.25))
    detector.threshold = threshold
    detector.info.update(calibration=report)
    return detector, report
