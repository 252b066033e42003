"""Hybrid retrieval: dense vectors (Chroma) + BM25 (jieba), fused by reciprocal rank (``hybrid``),
optionally reranked by the trained reranker (``hybrid_rerank``, :mod:`assistant.knowledge.ranker`),
which also judges whether the knowledge base answers the query at all.

Units: a chunk belongs to a *unit* (an FAQ entry, or a document section), the granularity at which
relevance is judged and answers are cited. ``search`` returns chunks, best first, with the scores
that produced the order, so evaluation can compare the four modes in one run.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from langchain_core.documents import Document

from assistant.knowledge.lexical import LexicalIndex, TextTokenizer

Mode = Literal["vector", "bm25", "hybrid", "hybrid_rerank"]
MODES: tuple[Mode, ...] = ("vector", "bm25", "hybrid", "hybrid_rerank")
RRF_K = 60


def unit_id(metadata: dict) -> str:
    return metadata["source"] if metadata.get("kind") == "faq" else f"{metadata['source']}#{metadata.get('heading', '')}"


def faq_question_key(metadata: dict) -> str:
    """Key of an FAQ chunk's question vector: one FAQ id covers both languages."""
    return f"{unit_id(metadata)}|{metadata.get('lang')}"


@dataclass
class Hit:
    id: str
    doc: Document
    score: float = 0.0
    dense: float | None = None
    lexical: float | None = None
    faq_question: float | None = None
    features: dict = field(default_factory=dict)

    @property
    def unit(self) -> str:
        return unit_id(self.doc.metadata)


@dataclass
class RetrievalConfig:
    candidates: int = 30          # per retriever, before fusion
    rerank_depth: int = 30        # fused candidates that get reranked


class DocStore:
    """Chunk texts, metadata and dense vectors by id, kept beside the Chroma collection."""

    def __init__(self, ids: list[str], docs: list[Document], vectors: np.ndarray, faq_q: dict[str, np.ndarray],
                 sentences=None):
        self.ids = ids
        self.docs = dict(zip(ids, docs))
        self.row = {i: n for n, i in enumerate(ids)}
        self.vectors = vectors
        self.faq_q = faq_q  # "unit|lang" -> embedding of the FAQ question alone ("query: " side)
        self.sentences = sentences  # SentenceVectors of multi-sentence chunks, or None
        self._known = None
        self._known_lock = threading.Lock()

    def known_sentences(self):
        """:class:`~assistant.knowledge.sentences.KnownSentences` of this store (built once: it
        re-splits every chunk, a few seconds at 100k chunks)."""
        from assistant.knowledge.sentences import KnownSentences

        with self._known_lock:
            if self._known is None:
                chunks = {i: (d.page_content, d.metadata.get("lang", "")) for i, d in self.docs.items()}
                self._known = KnownSentences(self.sentences, chunks,
                                             {i: self.vectors[n] for i, n in self.row.items()})
            return self._known

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        with (directory / "docs.jsonl").open("w", encoding="utf-8") as f:
            for i in self.ids:
                d = self.docs[i]
                f.write(json.dumps({"id": i, "text": d.page_content, "metadata": d.metadata}, ensure_ascii=False) + "\n")
        np.save(directory / "vectors.npy", self.vectors)
        keys = sorted(self.faq_q)
        (directory / "faq_questions.json").write_text(json.dumps(keys, ensure_ascii=False))
        np.save(directory / "faq_questions.npy", np.stack([self.faq_q[k] for k in keys]) if keys else np.zeros((0, 1)))
        if self.sentences is not None:
            self.sentences.save(directory)

    @classmethod
    def load(cls, directory: Path) -> "DocStore":
        ids, docs = [], []
        with (directory / "docs.jsonl").open(encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                ids.append(row["id"])
                docs.append(Document(page_content=row["text"], metadata=row["metadata"]))
        vectors = np.load(directory / "vectors.npy")
        keys = json.loads((directory / "faq_questions.json").read_text())
        qv = np.load(directory / "faq_questions.npy")
        from assistant.knowledge.sentences import SentenceVectors

        return cls(ids, docs, vectors, {k: qv[n] for n, k in enumerate(keys)}, SentenceVectors.load(directory))


class HybridSearcher:
    def __init__(self, store, lexical: LexicalIndex, docstore: DocStore, embed_query, config: RetrievalConfig | None = None,
                 ranker=None):
        """``store`` is the :class:`KnowledgeStore` (Chroma); ``embed_query(text) -> np.ndarray``;
        ``ranker`` a trained :class:`~assistant.knowledge.ranker.KnowledgeRanker` (``hybrid_rerank``)."""
        self.store = store
        self.lexical = lexical
        self.docstore = docstore
        self.embed_query = embed_query
        self.config = config or RetrievalConfig()
        self.ranker = ranker
        self._stats = None
        self._heading_terms: dict[str, set[str]] = {}

    def _vector(self, qvec: np.ndarray, lang: str | None, k: int) -> list[tuple[str, float]]:
        # Chunks not in the chunk store (an ingest interrupted before its index was swapped in) are
        # skipped: the previous state stays usable.
        return [(i, s) for i, s in self.store.search(qvec.tolist(), lang, k) if i in self.docstore.row]

    def search(self, query: str, lang: str | None, mode: Mode = "hybrid", k: int = 10) -> list[Hit]:
        """Every mode searches for the query as corrected (:meth:`LexicalIndex.corrected`)."""
        if mode == "hybrid_rerank":
            return self.rerank(self.candidates(query, lang))[:k]
        cfg = self.config
        query = self.lexical.corrected(query)
        dense: list[tuple[str, float]] = []
        if mode != "bm25":
            qvec = np.asarray(self.embed_query(query), dtype=np.float32)
            dense = self._vector(qvec, lang, cfg.candidates)
        if mode == "vector":
            return [self._hit(i, s, dense=s) for i, s in dense[:k]]
        lexical = self.lexical.search(query, cfg.candidates, group=lang)
        if mode == "bm25":
            return [self._hit(i, s, lexical=s) for i, s in lexical[:k]]
        return self._fused(qvec, dense, lexical)[:k]

    def search_judged(self, query: str, lang: str | None, mode: Mode = "hybrid", k: int = 10) -> tuple[list[Hit], float | None]:
        """``search`` plus the trained answerability of the query (``None`` without a ranker): one
        retrieval serves both."""
        if self.ranker is None:
            return self.search(query, lang, mode, k), None
        cands = self.candidates(query, lang)
        p = self.answerability(cands)
        if mode == "hybrid_rerank":
            return self.rerank(cands)[:k], p
        if mode == "hybrid":
            return cands.hits[:k], p
        return self.search(query, lang, mode, k), p

    def _fused(self, qvec: np.ndarray, dense: list, lexical: list) -> list[Hit]:
        fused: dict[str, float] = {}
        for ranking in (dense, lexical):
            for rank, (i, _) in enumerate(ranking):
                fused[i] = fused.get(i, 0.0) + 1.0 / (RRF_K + rank + 1)
        order = sorted(fused, key=fused.get, reverse=True)
        lex_s = dict(lexical)
        max_lex = max(lex_s.values(), default=0.0) or 1.0
        return [self._scored(i, fused[i], qvec, lex_s, max_lex) for i in order]

    # -- the learned reranker --------------------------------------------------------
    def candidates(self, query: str, lang: str | None):
        """The fused candidates of ``query`` with the reranker's features (:class:`Candidates`)."""
        from assistant.knowledge.ranker import candidate_features

        cfg = self.config
        query = self.lexical.corrected(query)
        qvec = np.asarray(self.embed_query(query), dtype=np.float32)
        dense = self._vector(qvec, lang, cfg.candidates)
        query_terms = self.lexical.query_terms(query)
        lexical = self.lexical.search_terms(query_terms, cfg.candidates, group=lang)
        hits = self._fused(qvec, dense, lexical)[: cfg.rerank_depth]
        terms = list(dict.fromkeys(query_terms))
        return candidate_features(hits, {i: r for r, (i, _) in enumerate(dense)},
                                  {i: r for r, (i, _) in enumerate(lexical)}, terms, self.term_stats(), self._terms_of, lang,
                                  qvec)

    def term_stats(self):
        from assistant.knowledge.ranker import TermStats

        if self._stats is None:
            self._stats = TermStats.from_lexical(self.lexical)
        return self._stats

    def _terms_of(self, hit: Hit) -> tuple[set[str], set[str]]:
        """(terms of the chunk, terms of its title and heading): the chunk's from the BM25 index, the
        heading's tokenised once per distinct heading."""
        md = hit.doc.metadata
        heading = f"{md.get('title', '')} {md.get('heading', '')}"
        head = self._heading_terms.get(heading)
        if head is None:
            if len(self._heading_terms) > 50_000:
                self._heading_terms.clear()
            head = self._heading_terms[heading] = set(self.lexical.tokenizer(heading))
        return self.lexical.terms_of(hit.id), head

    def rerank(self, cands, model=None) -> list[Hit]:
        """Candidates ordered by the reranker (``model``, default the loaded one); ``score`` is its probability."""
        model = model or self._require_ranker().rerank
        if not cands.hits:
            return []
        for h, p in zip(cands.hits, model.proba(cands.X)):
            h.score = float(p)
        return sorted(cands.hits, key=lambda h: h.score, reverse=True)

    def answerability(self, cands, ranker=None) -> float:
        """Probability that the knowledge base answers the question behind ``cands``."""
        from assistant.knowledge.ranker import answer_features

        ranker = ranker or self._require_ranker()
        if not cands.hits:
            return 0.0
        scores = ranker.relevance.proba(cands.X)
        return float(ranker.answerable.proba(answer_features(cands, scores, self.term_stats(), ranker.gaps))[0])

    def _require_ranker(self):
        if self.ranker is None:
            raise RuntimeError("no trained knowledge ranker: run `assistant train-kb-ranker` (or use mode 'hybrid')")
        return self.ranker

    def _scored(self, i: str, score: float, qvec: np.ndarray, lex_s: dict, max_lex: float) -> Hit:
        """A hit with the features the reranker and the refusal use: cosine to the chunk, cosine to the
        FAQ question (FAQ chunks), and BM25 relative to the best BM25 score of the query."""
        ds = self.docstore
        doc = ds.docs[i]
        dense = float(ds.vectors[ds.row[i]] @ qvec)
        qv = ds.faq_q.get(faq_question_key(doc.metadata))
        faq_q = float(qv @ qvec) if qv is not None else None
        lex_norm = lex_s.get(i, 0.0) / max_lex
        semantic = max(dense, faq_q) if faq_q is not None else dense
        sentence = ds.sentences.best(i, qvec) if ds.sentences is not None else None
        return Hit(i, doc, score, dense=dense, lexical=lex_s.get(i), faq_question=faq_q,
                   features={"semantic": semantic, "lexical_norm": lex_norm,
                             "sentence": sentence if sentence is not None else dense})

    def _hit(self, i: str, score: float, **scores) -> Hit:
        return Hit(i, self.docstore.docs[i], score, **scores)


def index_dir(settings) -> Path:
    """The BM25 index and chunk store live beside the Chroma collection they mirror."""
    return Path(settings.chroma_dir) / f"{settings.collection_name}-index"


def load_searcher(settings, embeddings=None, with_ranker: bool = True) -> HybridSearcher:
    from assistant.knowledge.store import make_embeddings, open_store

    embeddings = embeddings or make_embeddings(settings)
    directory = index_dir(settings)
    if not (directory / "docs.jsonl").is_file():
        raise FileNotFoundError(f"knowledge index missing at {directory}: run `assistant ingest`")
    tokenizer = TextTokenizer(settings.kb_dir / "userdict.txt")
    lexical = LexicalIndex.load(directory / "lexical", tokenizer, dictionary_words(settings))
    docstore = DocStore.load(directory)
    store = open_store(settings, embeddings)
    return HybridSearcher(store, lexical, docstore, lambda q: np.asarray(embeddings.embed_query(q)),
                          ranker=load_ranker(settings) if with_ranker else None)


def dictionary_words(settings):
    """The real words the query spelling correction leaves alone: those of the encoder's tokenizer."""
    from assistant.knowledge.spelling import TokenizerWords
    from assistant.models.registry import resolve_encoder

    return TokenizerWords(Path(resolve_encoder(settings)) / "tokenizer.json")


def load_ranker(settings):
    """The trained ranker, or ``None`` (with a warning) when ``train-kb-ranker`` has not run."""
    import logging

    from assistant.knowledge.ranker import KnowledgeRanker

    path = settings.kb_ranker_file
    if not path.is_file():
        logging.getLogger(__name__).warning(
            "no knowledge ranker at %s: refusing by similarity only; run `assistant train-kb-ranker`", path)
        return None
    return KnowledgeRanker.load(path)
