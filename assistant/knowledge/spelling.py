"""Spelling correction of query terms against the knowledge base's own vocabulary.

Customers type "reciepts", "cancle", "subscripton". Such a term is in no chunk, so BM25 ignores it
and the answerability test reads it as a word the knowledge base has never seen (a sign of an
unanswerable question, like "WebDAV"). A Latin query term of four letters or more that the index
does not hold is replaced by the most frequent indexed term within Damerau-Levenshtein distance 1
(distance 2 from seven letters on). Candidates are the indexed terms that share a single-deletion
key with it (the SymSpell idea: every term one edit away, and many two away), so a lookup costs a
few dictionary probes, not a scan of the vocabulary. The search terms are stems (``lexical``), so
the words compared are the knowledge base's words as written ("subscripton" is one edit from
"subscription", two from its stem "subscript"), and the correction's term is the stem. A real word
that the knowledge base does not use ("pause", "print", "Apple") is left as it is, not turned into
its nearest indexed neighbour ("cause", "point", "apply"): the real words are those the encoder's
tokenizer holds whole (:class:`TokenizerWords`, about 50,000 English words from the multilingual e5
vocabulary).

Chinese typos are of another kind: a pinyin input method offers every character of the same sound,
and customers pick the wrong one ("发漂" for 发票, "退宽" for 退款, "验正" for 验证). One character
changed is usually another word, so a Chinese term is corrected only when (:class:`HomophoneCorrector`)
it lies in a stretch of characters that the word dictionary cannot segment (single characters side
by side), it is not itself an indexed term, and an indexed term of two to four characters reads the
same in pinyin (tones ignored) and differs from it in one character. The query *text* is corrected,
so the vector search sees the intended word too.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path
from typing import Callable, Container, Iterable, Mapping

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
    """``corrector(word)``: ``word`` itself when it is indexed, not Latin, short, or in ``dictionary``
    (real words); otherwise the closest indexed word (ties: the one in most chunks), or ``word`` when
    none is close."""

    def __init__(self, document_frequency: Mapping[str, int], dictionary: Container[str] = frozenset(),
                 cache_size: int = 10_000):
        self.df = document_frequency
        self.dictionary = dictionary
        self._keys: dict[str, list[str]] = {}
        for term in document_frequency:
            if len(term) >= MIN_LENGTH - 1 and _LATIN.fullmatch(term):
                for key in _deletions(term) | {term}:
                    self._keys.setdefault(key, []).append(term)
        self._closest_cached = lru_cache(maxsize=cache_size)(self._closest)

    def __call__(self, word: str) -> str:
        if word in self.df or len(word) < MIN_LENGTH or not _LATIN.fullmatch(word) or word in self.dictionary:
            return word
        return self._closest_cached(word)

    def _closest(self, term: str) -> str:
        limit = 1 if len(term) < LONG_WORD else 2
        candidates = {c for key in _deletions(term) | {term} for c in self._keys.get(key, ())}
        scored = [(edit_distance(term, c, limit), -self.df[c], c) for c in candidates]
        best = min((s for s in scored if s[0] <= limit), default=None)
        return best[2] if best else term


class TokenizerWords:
    """The English words a Hugging Face tokenizer holds whole ("▁pause", "▁Print": word-initial
    pieces of letters only, lower-cased), read from its ``tokenizer.json`` on the first lookup and
    shared by every instance for the same file. A sub-word vocabulary keeps frequent words whole and
    splits rare ones and misspellings ("reciepts", "subscripton"), so membership separates real
    words from typos well enough to stop the corrector from "fixing" words it should not."""

    def __init__(self, tokenizer_json: Path):
        self.path = Path(tokenizer_json)

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and word in _tokenizer_words(str(self.path))


@lru_cache(maxsize=4)
def _tokenizer_words(path: str) -> frozenset[str]:
    import json

    try:
        vocab = json.loads(Path(path).read_text(encoding="utf-8"))["model"]["vocab"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        logging.getLogger(__name__).warning("no word list from %s (%s): spelling correction may change real words",
                                            path, e)
        return frozenset()
    pieces = (p[0] if isinstance(p, list) else p for p in (vocab if isinstance(vocab, list) else vocab.keys()))
    return frozenset(p[1:].lower() for p in pieces
                     if p.startswith("\u2581") and len(p) > 2 and p[1:].isascii() and p[1:].isalpha())


_HAN_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_HAN_TERM = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]{2,4}")


def _pinyin(text: str) -> tuple[str, ...]:
    from pypinyin import lazy_pinyin

    return tuple(lazy_pinyin(text))


class HomophoneCorrector:
    """``corrector(text)``: ``text`` with mistyped Chinese words replaced by the indexed term that
    sounds the same (see the module's docstring); everything else is left as it is.

    ``segment(run) -> words`` splits a run of Chinese characters with the word dictionary alone
    (jieba without its HMM, which would glue unknown characters into made-up words)."""

    def __init__(self, document_frequency: Mapping[str, int], segment: Callable[[str], Iterable[str]],
                 cache_size: int = 10_000):
        self.df = document_frequency
        self.segment = segment
        self._by_sound: dict[tuple[str, ...], list[str]] = {}
        for term in document_frequency:
            if _HAN_TERM.fullmatch(term):
                self._by_sound.setdefault(_pinyin(term), []).append(term)
        self._correct_cached = lru_cache(maxsize=cache_size)(self._correct)

    def __call__(self, text: str) -> str:
        if not self._by_sound or not _HAN_RUN.search(text):
            return text
        return self._correct_cached(text)

    def _correct(self, text: str) -> str:
        return _HAN_RUN.sub(lambda m: self._correct_run(m.group(0)), text)

    def _correct_run(self, run: str) -> str:
        out, pending = [], ""
        for word in list(self.segment(run)) + [""]:   # "" flushes the last stretch
            if len(word) == 1:
                pending += word
                continue
            out.append(self._correct_stretch(pending) if len(pending) > 1 else pending)
            out.append(word)
            pending = ""
        return "".join(out)

    def _correct_stretch(self, chars: str) -> str:
        """Single characters side by side: replace the longest windows that sound like an indexed term."""
        i, out = 0, []
        while i < len(chars):
            for size in (4, 3, 2):
                window = chars[i : i + size]
                if len(window) == size and (term := self._same_sound(window)):
                    out.append(term)
                    i += size
                    break
            else:
                out.append(chars[i])
                i += 1
        return "".join(out)

    def _same_sound(self, window: str) -> str | None:
        if window in self.df:
            return None
        near = [t for t in self._by_sound.get(_pinyin(window), ()) if sum(a != b for a, b in zip(t, window)) == 1]
        return max(near, key=lambda t: (self.df[t], t)) if near else None
