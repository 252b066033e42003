"""Training and cross-validating the knowledge ranker on labelled questions.

``collect`` runs retrieval once per question and keeps its candidates and features; ``fit`` trains
the reranker, then the answerability model on *out-of-fold* rerank scores (what it sees at run
time is a reranker that never saw the question), then picks the refusal threshold for a target
false-refusal rate. ``cross_validate`` repeats that per fold, grouping paraphrases of one question.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from assistant.knowledge.evaluate import EvalQuestion
from assistant.knowledge.ranker import (ANSWER_FEATURES, RERANK_FEATURES, Candidates, KnowledgeRanker, Linear,
                                        answer_features)
from assistant.knowledge.safety import looks_like_injection

FOLDS = 5
TARGET_FALSE_REFUSAL = 0.03


@dataclass
class Example:
    question: EvalQuestion
    cands: Candidates
    labels: np.ndarray      # per candidate: 1 when its unit supports the answer
    answerable: bool
    guarded: bool           # refused before retrieval (prompt injection, empty)

    @property
    def group(self) -> str:
        return "|".join(sorted(self.question.relevant)) if self.answerable else self.question.id


def collect(searcher, answerable: list[EvalQuestion], unanswerable: list[EvalQuestion],
            progress: bool = True) -> list[Example]:
    from tqdm import tqdm

    out = []
    for q in tqdm(answerable + unanswerable, desc="ranker features", disable=not progress):
        c = searcher.candidates(q.question, q.lang)
        labels = np.array([float(h.unit in q.relevant) for h in c.hits])
        # what the chain refuses before asking the ranker: instructions, nothing to look up
        guarded = looks_like_injection(q.question) or not searcher.lexical.tokenizer(q.question)
        out.append(Example(q, c, labels, bool(q.relevant), guarded))
    return out


def _fit_rerank(examples: list[Example]) -> Linear:
    rows = [e for e in examples if e.answerable and len(e.cands.hits)]
    X = np.concatenate([e.cands.X for e in rows])
    y = np.concatenate([e.labels for e in rows])
    return Linear.fit(RERANK_FEATURES, X, y, C=1.0)


def _folds(examples: list[Example], k: int, seed: int) -> list[np.ndarray]:
    """Fold index per example: whole groups (paraphrases of one question) go to one fold."""
    rng = np.random.default_rng(seed)
    groups = sorted({e.group for e in examples})
    rng.shuffle(groups)
    fold_of = {g: n % k for n, g in enumerate(groups)}
    return np.array([fold_of[e.group] for e in examples])


def _answer_rows(examples: list[Example], rerank_models: list[Linear], stats) -> np.ndarray:
    return np.stack([answer_features(e.cands, m.proba(e.cands.X) if len(e.cands.hits) else np.zeros(0), stats)
                     for e, m in zip(examples, rerank_models)])


def fit(examples: list[Example], stats, target_false_refusal: float = TARGET_FALSE_REFUSAL, seed: int = 0,
        meta: dict | None = None) -> KnowledgeRanker:
    rerank, answerable, p_train = _fit_models(examples, stats, seed)
    threshold = pick_threshold(p_train, target_false_refusal)
    return KnowledgeRanker(rerank, answerable, threshold, {
        "trained": time.strftime("%Y-%m-%dT%H:%M:%S"), "questions": len(examples),
        "answerable": sum(e.answerable and not e.guarded for e in examples),
        "unanswerable": sum(not e.answerable and not e.guarded for e in examples),
        "target_false_refusal": target_false_refusal, **(meta or {})})


def _fit_models(examples: list[Example], stats, seed: int) -> tuple[Linear, Linear, np.ndarray]:
    """The reranker, the answerability test, and that test's probabilities for its own answerable
    training questions (the threshold for any false-refusal budget is drawn from these)."""
    rerank = _fit_rerank(examples)
    fold = _folds(examples, FOLDS, seed + 1)
    oof = [None] * len(examples)
    for f in range(FOLDS):
        m = _fit_rerank([e for e, g in zip(examples, fold) if g != f])
        for n, g in enumerate(fold):
            if g == f:
                oof[n] = m
    train = [n for n, e in enumerate(examples) if not e.guarded]
    X = _answer_rows([examples[n] for n in train], [oof[n] for n in train], stats)
    y = np.array([float(examples[n].answerable) for n in train])
    answerable = Linear.fit(ANSWER_FEATURES, X, y, C=1.0)
    return rerank, answerable, answerable.proba(X)[y == 1]


def pick_threshold(p_answerable: np.ndarray, target_false_refusal: float) -> float:
    """The highest threshold that refuses at most ``target_false_refusal`` of the answerable questions."""
    if not len(p_answerable):
        return 0.5
    allowed = int(np.floor(target_false_refusal * len(p_answerable)))
    ordered = np.sort(p_answerable)
    return float(ordered[allowed]) - 1e-9 if allowed < len(ordered) else float(ordered[-1])


@dataclass
class CVResult:
    rankings: dict[str, list]      # question id -> reranked hits (by a model that never saw it)
    p_answerable: dict[str, float]
    guarded: set[str]              # refused by the guards whatever the threshold
    fold_of: dict[str, int]
    train_p: list[np.ndarray]      # per fold: its model's probabilities for its own answerable questions

    def thresholds(self, target_false_refusal: float = TARGET_FALSE_REFUSAL) -> list[float]:
        """Each fold's threshold for a false-refusal budget, set on that fold's training questions."""
        return [pick_threshold(p, target_false_refusal) for p in self.train_p]

    def refused(self, target_false_refusal: float = TARGET_FALSE_REFUSAL) -> dict[str, bool]:
        """Question id -> refused by the model that never saw it, at that budget."""
        t = self.thresholds(target_false_refusal)
        return {qid: qid in self.guarded or p < t[self.fold_of[qid]] for qid, p in self.p_answerable.items()}


def cross_validate(examples: list[Example], stats, folds: int = FOLDS, seed: int = 0) -> CVResult:
    """Fits each fold's models once; any false-refusal budget is then applied by ``CVResult.refused``."""
    fold = _folds(examples, folds, seed)
    rankings, probs, train_p = {}, {}, []
    for f in range(folds):
        rerank, answerable, p_train = _fit_models([e for e, g in zip(examples, fold) if g != f], stats, seed)
        train_p.append(p_train)
        for e, g in zip(examples, fold):
            if g != f:
                continue
            qid = e.question.id
            if not e.cands.hits:
                rankings[qid], probs[qid] = [], 0.0
            else:
                scores = rerank.proba(e.cands.X)
                order = np.argsort(-scores, kind="stable")
                rankings[qid] = [e.cands.hits[i] for i in order]
                probs[qid] = float(answerable.proba(answer_features(e.cands, scores, stats))[0])
    return CVResult(rankings, probs, {e.question.id for e in examples if e.guarded},
                    {e.question.id: int(g) for e, g in zip(examples, fold)}, train_p)
