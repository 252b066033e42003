"""Spelling correction of query terms against the knowledge base's own vocabulary.

Customers type "reciepts", "cancle", "subscripton". Such a term is in no chunk, so BM25 ignores it
and the answerability test reads it as a word the knowledge base has never seen (a sign of an
unanswerable question, like "WebDAV"). A Latin query term of four letters or more that the index
does not hold is replaced by the most frequent indexed term within Damerau-Levenshtein distance 1
(distance 2 from seven letters on). Candidates are the indexed terms that share a single-deletion
key with it (the SymSpell idea: every term one edit away, and many two away), so a lookup costs a
few dictionary probes, not a scan of the vocabulary. Chinese terms are left alone: one character
changed is usually another word.
"""

from __future__ import annotations

import re
from typing import Mapping

_LATIN = re.compile(r"[a-z][a-z'-]*")
MIN_LENGTH = 4
LONG_WORD = 7     # from this length on, two edits are allowed


def edit_distance(a: str, b: str, limit: int) -> int:
    """Damerau-Levenshtein distance (adjacent transpositions count one), or ``limit + 1`` once it
    is certain to exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before, prev = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if before is not None and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], before[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        before, prev = prev, cur
    return prev[-1]


def _deletions(term: str) -> set[str]:
    return {term[:i] + term[i + 1:] for i in range(len(term))}


class TermCorrector:
    """``corrector(term)``: ``term`` itself when it is indexed, not Latin or short; otherwise the
    closest indexed term (ties: the one in most chunks), or ``term`` when none is close."""

    def __init__(self, document_frequency: Mapping[str, int], cache_size: int = 10_000):
        self.df = document_frequency
        self._keys: dict[str, list[str]] = {}
        for term in document_frequency:
            if len(term) >= MIN_LENGTH - 1 and _LATIN.fullmatch(term):
                for key in _deletions(term) | {term}:
                    self._keys.setdefault(key, []).append(term)
        self._cache: dict[str, str] = {}
        self._cache_size = cache_size

    def __call__(self, term: str) -> str:
        if term in self.df or len(term) < MIN_LENGTH or not _LATIN.fullmatch(term):
            return term
        fixed = self._cache.get(term)
        if fixed is None:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            fixed = self._cache[term] = self._closest(term)
        return fixed

    def _closest(self, term: str) -> str:
        limit = 1 if len(term) < LONG_WORD else 2
        candidates = {c for key in _deletions(term) | {term} for c in self._keys.get(key, ())}
        scored = [(edit_distance(term, c, limit), -self.df[c], c) for c in candidates]
        best = min((s for s in scored if s[0] <= limit), default=None)
        return best[2] if best else term
