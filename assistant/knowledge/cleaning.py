"""Text cleaning and duplicate detection for ingestion.

* ``clean``: Unicode NFC, no control or zero-width characters, normalised spaces and blank lines,
  boilerplate lines (copyright notices, "back to top", cookie banners) removed.
* ``Deduplicator``: exact duplicates by a normalised hash; near duplicates by MinHash over character
  5-grams with LSH banding, confirmed by Jaccard similarity.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

import numpy as np

_BOILERPLATE = re.compile(
    r"^\s*(?:copyright\b.*|©.*|all rights reserved\.?|版权所有.*|back to top|返回顶部|"
    r"this (?:site|website) uses cookies.*|本网站使用\s*cookie.*|skip to (?:main )?content)\s*$",
    re.IGNORECASE,
)
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)


def clean(text: str) -> str:
    text = unicodedata.normalize("NFC", text).translate(_ZERO_WIDTH)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    lines = []
    for line in text.split("\n"):
        line = re.sub(r"[ \t\u3000\u00a0]+", " ", line).rstrip()
        if _BOILERPLATE.match(line):
            continue
        lines.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _normal(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


class Deduplicator:
    """``seen(text) -> reason | None``: 'exact' or 'near' when an earlier text was (nearly) the same."""

    def __init__(self, threshold: float = 0.9, num_perm: int = 64, bands: int = 16, seed: int = 7):
        self.threshold = threshold
        self.bands = bands
        self.rows = num_perm // bands
        rng = np.random.default_rng(seed)
        self._a = rng.integers(1, (1 << 31) - 1, size=num_perm, dtype=np.uint64)
        self._b = rng.integers(0, (1 << 31) - 1, size=num_perm, dtype=np.uint64)
        self._exact: set[str] = set()
        self._buckets: dict[tuple, list[int]] = {}
        self._shingles: list[set[int]] = []

    @staticmethod
    def _shingle_set(norm: str, n: int = 5) -> set[int]:
        if len(norm) <= n:
            return {hash(norm)}
        return {int.from_bytes(hashlib.blake2b(norm[i : i + n].encode(), digest_size=4).digest(), "little")
                for i in range(len(norm) - n + 1)}

    def seen(self, text: str) -> str | None:
        norm = _normal(text)
        digest = hashlib.sha1(norm.encode()).hexdigest()
        if digest in self._exact:
            return "exact"
        self._exact.add(digest)
        shingles = self._shingle_set(norm)
        values = np.fromiter(shingles, dtype=np.uint64)
        prime = np.uint64((1 << 31) - 1)
        sig = ((np.outer(self._a, values) + self._b[:, None]) % prime).min(axis=1)
        keys = [(b, tuple(sig[b * self.rows : (b + 1) * self.rows].tolist())) for b in range(self.bands)]
        candidates = {i for k in keys for i in self._buckets.get(k, [])}
        for i in candidates:
            other = self._shingles[i]
            if len(shingles & other) / len(shingles | other) >= self.threshold:
                return "near"
        index = len(self._shingles)
        self._shingles.append(shingles)
        for k in keys:
            self._buckets.setdefault(k, []).append(index)
        return None
