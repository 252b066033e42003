"""Keyword search: a Chinese-aware tokenizer (jieba + a user dictionary of product terms; Latin
words kept whole and stemmed, numbers kept whole) and a BM25 index (``bm25s``) that can be saved and
loaded."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Container, Iterable, Sequence

import numpy as np

_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9'+.-]*[A-Za-z0-9]|[A-Za-z]|\d+(?:\.\d+)?|[\u3400-\u9fff\uf900-\ufaff]+")
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
STOPWORDS = frozenset(
    "the a an and or of to in on for is are was be do does did i my me you your we our it this that with can how what "
    "when where which who why will would could should if at by from as about there have has please any "
    "what's i'm we're you're it's there's don't doesn't can't isn't just really also anyone someone ".split()
    + list("的了吗呢吧啊呀么和与及在是我你您他她它们这那个有就也都还要会能可以怎么如何什么吗嘛哦把给跟哪")
    + ["一下", "请问", "我们", "你们", "这个", "那个", "怎么", "如何", "什么", "可以", "是否", "一个", "没有", "有没有",
       "不是", "是不是", "不能", "能不能", "哪个", "哪里", "或者", "还是", "现在", "还有", "不会", "会不会"]
)
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
# Part of the index manifest: an index built with other tokenisation rules is rebuilt.
TOKENIZER_VERSION = 3


class TextTokenizer:
    """Splits zh/en text into search terms. jieba loads its dictionary on first use (~1 s)."""

    def __init__(self, user_dict: Path | None = None):
        self._user_dict = user_dict
        self._jieba = None
        self._lock = threading.Lock()
        self._local = threading.local()   # a Snowball stemmer is not safe to share between threads

    def _cutter(self):
        if self._jieba is None:
            with self._lock:
                if self._jieba is None:
                    import logging

                    import jieba

                    jieba.setLogLevel(logging.WARNING)
                    tok = jieba.Tokenizer()
                    tok.initialize()
                    if self._user_dict and self._user_dict.is_file():
                        tok.load_userdict(str(self._user_dict))
                    self._jieba = tok
        return self._jieba

    def segment(self, run: str) -> list[str]:
        """A run of Chinese characters cut into dictionary words only (no HMM guesses at unknown
        words): what the dictionary cannot place stays single characters."""
        return list(self._cutter().cut(run, HMM=False))

    def stem(self, word: str) -> str:
        """English words by their Snowball (Porter2) stem, so "refunds", "refunded" and "refund" are
        one term; anything with digits or other marks (model numbers, "c++") stays as it is."""
        if not _WORD.fullmatch(word):
            return word
        stemmer = getattr(self._local, "stemmer", None)
        if stemmer is None:
            import Stemmer

            stemmer = self._local.stemmer = Stemmer.Stemmer("english")
        return stemmer.stemWord(word)

    def words(self, text: str) -> list[tuple[str, str]]:
        """``(word as written, search term)`` pairs: the term of an English word is its stem; a
        hyphenated word gives the joined word ("e-mail" -> "email") and then each part of two letters
        or more ("sign-in" -> "signin", "sign"); a Chinese word is its own term."""
        out: list[tuple[str, str]] = []
        for m in _TOKEN.finditer(text.lower()):
            piece = m.group(0)
            if _HAN.match(piece):
                out.extend((w, w) for w in self._cutter().cut_for_search(piece) if w not in STOPWORDS)
            elif piece in STOPWORDS:
                continue
            elif "-" in piece:
                joined = piece.replace("-", "")
                out.append((joined, self.stem(joined)))
                out.extend((p, self.stem(p)) for p in piece.split("-") if len(p) > 1 and p not in STOPWORDS)
            else:
                out.append((piece, self.stem(piece)))
        return out

    def __call__(self, text: str) -> list[str]:
        return [term for _, term in self.words(text)]


class LexicalIndex:
    """BM25 over a fixed list of ids; ``search`` can be restricted to a subset (e.g. one language)."""

    def __init__(self, tokenizer: TextTokenizer, dictionary: Container[str] = frozenset()):
        self.tokenizer = tokenizer
        self.dictionary = dictionary   # real words: left alone by the spelling correction
        self.ids: list[str] = []
        self._bm25 = None
        self._groups: dict[str, np.ndarray] = {}
        self._by_doc = None
        self._corrector = None
        self._homophones = None
        self._words: dict[str, str] = {}   # indexed Latin words as written -> their terms ("refunds" -> "refund")

    def build(self, ids: Sequence[str], texts: Sequence[str], groups: Sequence[str] | None = None) -> None:
        import bm25s

        self.ids = list(ids)
        self._bm25 = bm25s.BM25()
        corpus, self._words = [], {}
        for text in texts:
            pairs = self.tokenizer.words(text)
            self._words.update((w, t) for w, t in pairs if w.isascii())
            corpus.append([t for _, t in pairs] or ["\u2205"])
        self._bm25.index(corpus, show_progress=False)
        self._by_doc = self._corrector = self._homophones = None
        self._set_groups(groups)

    def _set_groups(self, groups: Iterable[str] | None) -> None:
        self._groups = {}
        if groups is None:
            return
        groups = list(groups)
        for g in set(groups):
            self._groups[g] = np.array([x == g for x in groups], dtype=np.float32)
        self._group_list = groups

    def query_terms(self, query: str) -> list[str]:
        """The search terms of a query, misspelt Latin words corrected to indexed ones
        (:mod:`assistant.knowledge.spelling`; a word of ``self.dictionary`` is never "corrected")."""
        words = self.tokenizer.words(query)
        if self._bm25 is None or not words:
            return [term for _, term in words]
        if self._corrector is None:
            from assistant.knowledge.spelling import TermCorrector

            # the indexed words as written ("subscription", whose stem "subscript" is two edits from
            # "subscripton"), each as frequent as its term
            df = self.document_frequencies()[0]
            self._corrector = TermCorrector({w: df.get(t, 0) for w, t in self._words.items()}, self.dictionary)
        indexed = self._bm25.vocab_dict
        return [term if term in indexed else self._words.get(self._corrector(word), term) for word, term in words]

    def corrected(self, query: str) -> str:
        """The query text with mistyped Chinese words replaced by indexed terms that sound the same
        ("发漂" -> "发票"; :class:`~assistant.knowledge.spelling.HomophoneCorrector`)."""
        if self._bm25 is None:
            return query
        if self._homophones is None:
            from assistant.knowledge.spelling import HomophoneCorrector

            self._homophones = HomophoneCorrector(self.document_frequencies()[0], self.tokenizer.segment)
        return self._homophones(query)

    def search(self, query: str, k: int = 10, group: str | None = None) -> list[tuple[str, float]]:
        return self.search_terms(self.query_terms(query), k, group)

    def search_terms(self, terms: list[str], k: int = 10, group: str | None = None) -> list[tuple[str, float]]:
        """BM25 top ``k`` for terms from :meth:`query_terms`, restricted to ``group`` when given."""
        if self._bm25 is None or not self.ids:
            return []
        terms = [t for t in terms if t in self._bm25.vocab_dict]
        if not terms:
            return []
        scores = self._bm25.get_scores(terms)
        if group is not None:
            mask = self._groups.get(group)
            if mask is None:
                return []
            scores = scores * mask
        k = min(k, len(self.ids))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [(self.ids[i], float(scores[i])) for i in top if scores[i] > 0]

    def document_frequencies(self) -> tuple[dict[str, int], int]:
        """How many chunks hold each indexed term, and how many chunks there are."""
        if self._bm25 is None:
            return {}, 0
        counts = np.diff(np.asarray(self._bm25.scores["indptr"]))   # term columns of the score matrix
        df = {t: int(counts[i]) for t, i in self._bm25.vocab_dict.items() if i < len(counts)}
        return df, int(self._bm25.scores.get("num_docs", len(self.ids)))

    def terms_of(self, id_: str) -> set[str]:
        """The indexed terms of one document, read back from the BM25 matrix instead of tokenising
        its text again (jieba on 30 candidate chunks was most of the rerank's latency)."""
        row, ptr, terms, vocab = self._doc_terms()
        n = row.get(id_)
        return set() if n is None else {vocab[t] for t in terms[ptr[n] : ptr[n + 1]]}

    def _doc_terms(self):
        """The score matrix is stored by term (CSC); its transpose gives each document's terms. Built
        once, on first use (about 0.5 s at 100k chunks)."""
        if self._by_doc is None:
            sc = self._bm25.scores
            indptr, docs = np.asarray(sc["indptr"]), np.asarray(sc["indices"])
            term_ids = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
            order = np.argsort(docs, kind="stable")
            ptr = np.searchsorted(docs[order], np.arange(len(self.ids) + 1))
            vocab = [""] * len(self._bm25.vocab_dict)
            for t, i in self._bm25.vocab_dict.items():
                if i < len(vocab):
                    vocab[i] = t
            self._by_doc = ({i: n for n, i in enumerate(self.ids)}, ptr, term_ids[order], vocab)
        return self._by_doc

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._bm25.save(str(directory / "bm25"))
        (directory / "ids.json").write_text(json.dumps({"ids": self.ids, "groups": getattr(self, "_group_list", None)}))
        (directory / "words.json").write_text(json.dumps(self._words, ensure_ascii=False))

    @classmethod
    def load(cls, directory: Path, tokenizer: TextTokenizer, dictionary: Container[str] = frozenset()) -> "LexicalIndex":
        import bm25s

        index = cls(tokenizer, dictionary)
        meta = json.loads((directory / "ids.json").read_text())
        index.ids = meta["ids"]
        index._bm25 = bm25s.BM25.load(str(directory / "bm25"))
        index._set_groups(meta.get("groups"))
        words = directory / "words.json"
        index._words = json.loads(words.read_text()) if words.is_file() else {}
        return index
