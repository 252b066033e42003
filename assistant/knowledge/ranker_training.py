"""Training and cross-validating the knowledge ranker on labelled questions.

``collect`` runs retrieval once per question and keeps its candidates and features; ``fit`` trains
the reranker (pairwise, for the order), the relevance model (pointwise, for the absolute level),
then the answerability model on *out-of-fold* relevance scores and known-gap cosines (what it sees
at run time is a model, and a list of gaps, that never held the question), then picks the refusal
threshold for a target false-refusal rate. ``cross_validate`` repeats that per fold, grouping
paraphrases of one question (and one unanswerable question's translations).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from assistant.knowledge.evaluate import EvalQuestion
from assistant.knowledge.ranker import (ANSWER_FEATURES, RERANK_FEATURES, Candidates, KnowledgeRanker, Linear,
                                        answer_features, standardiser)
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
        return self.question.group

    @property
    def known_gap(self) -> bool:
        """A question the knowledge base does not answer that retrieval had to judge (not refused by
        the guards): its vector joins the ranker's known gaps."""
        return not self.answerable and not self.guarded and self.cands.qvec is not None


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


def _labelled_candidates(examples: list[Example]) -> tuple[list[Example], np.ndarray, np.ndarray]:
    """The answerable questions that have candidates, and all their candidates' features and labels."""
    rows = [e for e in examples if e.answerable and len(e.cands.hits)]
    return rows, np.concatenate([e.cands.X for e in rows]), np.concatenate([e.labels for e in rows])


def _fit_relevance(examples: list[Example]) -> Linear:
    """Pointwise: is this candidate relevant, whatever the question? Its scores are comparable
    across questions, which the answerability test needs ("is even the best candidate good?")."""
    _, X, y = _labelled_candidates(examples)
    return Linear.fit(RERANK_FEATURES, X, y, C=1.0)


def _fit_rerank(examples: list[Example], C: float = 1.0) -> Linear:
    """The reranker, trained on pairs (RankNet-style): within each question, every relevant candidate
    against every other candidate, as a logistic regression on their feature differences. What it
    learns is which of two chunks better answers *this* question, which is what a ranking needs; a
    pointwise model spends itself on telling easy questions' chunks from hard ones' (cross-validated
    Recall@5 0.947 -> 0.96, README, 'Knowledge answers'). An offset fitted on the training candidates
    makes its score a probability of relevance again. Refusal stays with the pointwise relevance
    model: a pairwise score says little about how good the best candidate is."""
    from sklearn.linear_model import LogisticRegression

    rows, X, y = _labelled_candidates(examples)
    mean, scale = standardiser(X)
    pairs = []
    for e in rows:
        Z = (e.cands.X - mean) / scale
        pos, neg = Z[e.labels == 1], Z[e.labels == 0]
        if len(pos) and len(neg):
            pairs.append((pos[:, None, :] - neg[None, :, :]).reshape(-1, Z.shape[1]))
    if not pairs:
        raise ValueError("the reranker needs questions with both relevant and other candidates: label more questions")
    D = np.concatenate(pairs)
    # each pair both ways round: the model is antisymmetric (no intercept) and both classes are present
    pairwise = LogisticRegression(C=C, max_iter=2000, fit_intercept=False)
    pairwise.fit(np.vstack([D, -D]), np.r_[np.ones(len(D)), np.zeros(len(D))])
    w = pairwise.coef_[0]
    return Linear(RERANK_FEATURES, mean, scale, w, _calibrated_offset(((X - mean) / scale) @ w, y))


def _calibrated_offset(score: np.ndarray, y: np.ndarray) -> float:
    """The intercept b that makes sigmoid(score + b) a calibrated probability of relevance (its sum
    over the training candidates equals the number of relevant ones). Only an offset: the order of
    the scores must stay the pairwise model's, and a fitted slope could turn negative (across
    questions, a high score can go with few relevant candidates)."""
    from scipy.optimize import brentq

    return float(brentq(lambda b: float((1.0 / (1.0 + np.exp(-(score + b)))).sum() - y.sum()), -50.0, 50.0))


def _folds(examples: list[Example], k: int, seed: int) -> list[np.ndarray]:
    """Fold index per example: whole groups (paraphrases of one question) go to one fold."""
    rng = np.random.default_rng(seed)
    groups = sorted({e.group for e in examples})
    rng.shuffle(groups)
    fold_of = {g: n % k for n, g in enumerate(groups)}
    return np.array([fold_of[e.group] for e in examples])


def _answer_rows(examples: list[Example], relevance_models: list[Linear], stats, gaps: list[np.ndarray]) -> np.ndarray:
    return np.stack([answer_features(e.cands, m.proba(e.cands.X) if len(e.cands.hits) else np.zeros(0), stats, g)
                     for e, m, g in zip(examples, relevance_models, gaps)])


def gap_vectors(examples: list[Example]) -> np.ndarray:
    """The query vectors of the known gaps among ``examples`` (rows; ``(0, 0)`` when there are none)."""
    rows = [np.asarray(e.cands.qvec, dtype=np.float32) for e in examples if e.known_gap]
    return np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)


def fit(examples: list[Example], stats, target_false_refusal: float = TARGET_FALSE_REFUSAL, seed: int = 0,
        meta: dict | None = None) -> KnowledgeRanker:
    rerank, relevance, answerable, p_train = _fit_models(examples, stats, seed)
    threshold = pick_threshold(p_train, target_false_refusal)
    gaps = gap_vectors(examples)
    return KnowledgeRanker(rerank, answerable, threshold, relevance=relevance, gaps=gaps, meta={
        "trained": time.strftime("%Y-%m-%dT%H:%M:%S"), "questions": len(examples),
        "answerable": sum(e.answerable and not e.guarded for e in examples),
        "unanswerable": sum(not e.answerable and not e.guarded for e in examples),
        "known_gaps": len(gaps), "target_false_refusal": target_false_refusal, **(meta or {})})


def _fit_models(examples: list[Example], stats, seed: int) -> tuple[Linear, Linear, Linear, np.ndarray]:
    """The reranker, the relevance model, the answerability test, and that test's probabilities for
    its own answerable training questions (the threshold for any false-refusal budget is drawn from
    these). The test learns from out-of-fold inputs: each training question's relevance scores come
    from a model fitted without its fold, and its known-gap cosine from the gaps of the other folds
    (its own vector, or its translation's, would make every gap look certain)."""
    rerank, relevance = _fit_rerank(examples), _fit_relevance(examples)
    fold = _folds(examples, FOLDS, seed + 1)
    oof, oof_gaps = [None] * len(examples), [None] * len(examples)
    for f in range(FOLDS):
        rest = [e for e, g in zip(examples, fold) if g != f]
        m, gaps = _fit_relevance(rest), gap_vectors(rest)
        for n, g in enumerate(fold):
            if g == f:
                oof[n], oof_gaps[n] = m, gaps
    train = [n for n, e in enumerate(examples) if not e.guarded]
    X = _answer_rows([examples[n] for n in train], [oof[n] for n in train], stats, [oof_gaps[n] for n in train])
    y = np.array([float(examples[n].answerable) for n in train])
    answerable = Linear.fit(ANSWER_FEATURES, X, y, C=1.0)
    return rerank, relevance, answerable, answerable.proba(X)[y == 1]


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
        train = [e for e, g in zip(examples, fold) if g != f]
        rerank, relevance, answerable, p_train = _fit_models(train, stats, seed)
        gaps = gap_vectors(train)
        train_p.append(p_train)
        for e, g in zip(examples, fold):
            if g != f:
                continue
            qid = e.question.id
            if not e.cands.hits:
                rankings[qid], probs[qid] = [], 0.0
            else:
                order = np.argsort(-rerank.logit(e.cands.X), kind="stable")
                rankings[qid] = [e.cands.hits[i] for i in order]
                relevant = relevance.proba(e.cands.X)
                probs[qid] = float(answerable.proba(answer_features(e.cands, relevant, stats, gaps))[0])
    return CVResult(rankings, probs, {e.question.id for e in examples if e.guarded},
                    {e.question.id: int(g) for e, g in zip(examples, fold)}, train_p)
