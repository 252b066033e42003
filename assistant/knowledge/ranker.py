"""A learned reranker and a learned answerability test for knowledge retrieval.

All three are logistic regressions over a few interpretable features, trained on labelled questions
(``evals/knowledge/questions.yml``: answerable ones with their supporting units, unanswerable ones):

* **rerank** orders each question's fused (RRF) candidate chunks by their features: cosine to the
  chunk and to its FAQ question, the two retrievers' ranks, normalised BM25, and how much of the
  question's *rare* vocabulary (IDF-weighted query terms) the chunk and its heading contain, and the
  best cosine to one of the chunk's sentences (:mod:`assistant.knowledge.sentences`). It is
  trained on pairs of candidates of one question (which of the two is relevant);
* **relevance** scores the same features pointwise (is this chunk relevant at all), so its scores
  compare across questions;
* **answerable** scores the question given its candidates: the best relevance score, the best
  cosine, the share of the question's IDF mass found in the best chunks, the IDF mass of terms
  the knowledge base has never seen ("WebDAV", "比特币"), and the cosine to the nearest *known gap*:
  a labelled question that the knowledge base does not answer (the ranker keeps their vectors).
  Below its threshold the chain refuses.

The threshold is picked on the training questions for a target false-refusal rate. ``eval-kb``
reports both by grouped k-fold cross-validation (paraphrases of one question stay in one fold), so
no question is scored by a model that saw it; ``train-kb-ranker`` fits the shipped model on all.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RERANK_FEATURES = ("semantic", "dense", "faq_question", "has_faq_question", "lexical_norm", "dense_rank", "lexical_rank",
                   "semantic_gap", "coverage", "heading_coverage", "is_faq", "sentence")
ANSWER_FEATURES = ("relevance_top", "relevance_margin", "semantic_top", "faq_question_top", "coverage_top", "coverage_best3",
                   "unknown_idf", "uncovered_idf_max", "content_terms", "is_zh", "known_gap")
ABSENT_RANK = 30


class TermStats:
    """Inverse document frequencies of the knowledge base's search terms (from the BM25 index)."""

    def __init__(self, df: dict[str, int], n_docs: int):
        self.df = df
        self.n = max(n_docs, 1)
        self.unknown = self.idf_of(0)

    @classmethod
    def from_lexical(cls, lexical) -> "TermStats":
        return cls(*lexical.document_frequencies())

    def idf_of(self, df: int) -> float:
        return math.log(1.0 + (self.n - df + 0.5) / (df + 0.5))

    def idf(self, term: str) -> float:
        return self.idf_of(self.df.get(term, 0))

    def known(self, term: str) -> bool:
        return self.df.get(term, 0) > 0


def _coverage(terms: list[str], weights: list[float], have: set[str]) -> float:
    total = sum(weights)
    return sum(w for t, w in zip(terms, weights) if t in have) / total if total else 0.0


@dataclass
class Candidates:
    """One question's fused candidates with their feature rows (rerank) and the question's terms."""

    hits: list
    X: np.ndarray
    terms: list[str]
    weights: list[float]
    term_sets: list[set[str]]
    lang: str | None = None
    qvec: np.ndarray | None = None     # the query's vector (for the known-gap feature)


def candidate_features(hits, dense_rank: dict, lexical_rank: dict, terms: list[str], stats: TermStats,
                       tokens_of, lang: str | None = None, qvec: np.ndarray | None = None) -> Candidates:
    """Feature rows for fused candidates; ``tokens_of(hit) -> (chunk terms, heading terms)``."""
    weights = [stats.idf(t) for t in terms]
    best_sem = max((h.features["semantic"] for h in hits), default=0.0)
    rows, sets = [], []
    for h in hits:
        body, head = tokens_of(h)
        sets.append(body | head)
        faq_q = h.faq_question
        rows.append([
            h.features["semantic"], h.dense or 0.0, faq_q or 0.0, float(faq_q is not None), h.features["lexical_norm"],
            1.0 / (1 + dense_rank.get(h.id, ABSENT_RANK)), 1.0 / (1 + lexical_rank.get(h.id, ABSENT_RANK)),
            best_sem - h.features["semantic"], _coverage(terms, weights, body | head), _coverage(terms, weights, head),
            float(h.doc.metadata.get("kind") == "faq"), h.features.get("sentence", h.dense or 0.0),
        ])
    X = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(RERANK_FEATURES))
    return Candidates(hits, X, terms, weights, sets, lang, qvec)


def nearest_gap(qvec: np.ndarray | None, gaps: np.ndarray | None) -> float:
    """Cosine between the query and the nearest known gap (0 when there are none)."""
    if qvec is None or gaps is None or not len(gaps):
        return 0.0
    return float(np.max(gaps @ np.asarray(qvec, dtype=np.float32)))


def answer_features(c: Candidates, relevance: np.ndarray, stats: TermStats, gaps: np.ndarray | None = None) -> np.ndarray:
    """The question-level row for the answerability model (``relevance``: the pointwise relevance
    model's scores, aligned with ``c.hits``; ``gaps``: unit vectors of labelled questions the
    knowledge base does not answer, one per row)."""
    if not c.hits:
        return np.zeros(len(ANSWER_FEATURES))
    order = np.argsort(-relevance)
    top = order[0]
    margin = float(relevance[top] - relevance[order[1]]) if len(order) > 1 else 1.0
    best3 = set().union(*(c.term_sets[i] for i in order[:3]))
    unknown = sum(w for t, w in zip(c.terms, c.weights) if not stats.known(t))
    uncovered = [w for t, w in zip(c.terms, c.weights) if t not in best3]
    col = {n: i for i, n in enumerate(RERANK_FEATURES)}
    return np.array([
        relevance[top], margin, c.X[:, col["semantic"]].max(), c.X[:, col["faq_question"]].max(),
        c.X[top, col["coverage"]], _coverage(c.terms, c.weights, best3),
        unknown / stats.unknown, max(uncovered, default=0.0) / stats.unknown, math.log1p(len(c.terms)),
        float(c.lang == "zh"), nearest_gap(c.qvec, gaps),
    ])


def standardiser(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations of ``X`` (a constant column's deviation is taken as 1)."""
    mean, scale = X.mean(0), X.std(0)
    scale[scale < 1e-9] = 1.0
    return mean, scale


@dataclass
class Linear:
    """A standardised logistic regression, stored as plain numbers (no pickle)."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def logit(self, X: np.ndarray) -> np.ndarray:
        return ((np.atleast_2d(X) - self.mean) / self.scale) @ self.coef + self.intercept

    def proba(self, X: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logit(X)))

    @classmethod
    def fit(cls, features: tuple[str, ...], X: np.ndarray, y: np.ndarray, C: float = 1.0,
            sample_weight: np.ndarray | None = None) -> "Linear":
        from sklearn.linear_model import LogisticRegression

        mean, scale = standardiser(X)
        lr = LogisticRegression(C=C, max_iter=2000, class_weight="balanced")
        lr.fit((X - mean) / scale, y, sample_weight=sample_weight)
        return cls(features, mean, scale, lr.coef_[0].copy(), float(lr.intercept_[0]))

    def to_json(self) -> dict:
        return {"features": list(self.features), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "coef": self.coef.tolist(), "intercept": self.intercept}

    @classmethod
    def from_json(cls, d: dict) -> "Linear":
        return cls(tuple(d["features"]), np.asarray(d["mean"]), np.asarray(d["scale"]), np.asarray(d["coef"]),
                   float(d["intercept"]))


def _array_to_json(a: np.ndarray) -> dict:
    a = np.ascontiguousarray(a, dtype="<f4")
    return {"dtype": "float32", "shape": list(a.shape), "base64": base64.b64encode(a.tobytes()).decode("ascii")}


def _array_from_json(d: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(d["base64"]), dtype="<f4").reshape(d["shape"]).copy()


@dataclass
class KnowledgeRanker:
    rerank: Linear                # the order of one question's candidates (pairwise)
    answerable: Linear
    threshold: float              # answerable probability below which the chain refuses
    relevance: Linear             # pointwise relevance: the answerability test's input
    meta: dict = field(default_factory=dict)
    gaps: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))  # known gaps' vectors

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"rerank": self.rerank.to_json(), "answerable": self.answerable.to_json(),
                                   "relevance": self.relevance.to_json(), "gaps": _array_to_json(self.gaps),
                                   "threshold": self.threshold, "meta": self.meta}, ensure_ascii=False, indent=1))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "KnowledgeRanker":
        d = json.loads(Path(path).read_text())
        for part in ("rerank", "relevance", "answerable", "gaps"):
            expected = ANSWER_FEATURES if part == "answerable" else RERANK_FEATURES
            if part not in d:
                raise ValueError(f"{path} has no {part} model (an older format): run `assistant train-kb-ranker`")
            if part != "gaps" and tuple(d[part]["features"]) != expected:
                raise ValueError(f"{path} was trained with other features: run `assistant train-kb-ranker`")
        return cls(Linear.from_json(d["rerank"]), Linear.from_json(d["answerable"]), float(d["threshold"]),
                   Linear.from_json(d["relevance"]), d.get("meta", {}), _array_from_json(d["gaps"]))
