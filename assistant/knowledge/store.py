"""The persistent Chroma collections (one per language) and idempotent ingestion into them.

One collection per language instead of one collection filtered by a ``lang`` field: a metadata
filter turns Chroma's HNSW search into a filtered scan, which took 150 ms at 100k chunks here;
separate collections keep every query a plain HNSW search.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from langchain_chroma import Chroma
from langchain_core.embeddings import Embeddings

from assistant.knowledge.documents import doc_id, load_knowledge_base
from assistant.settings import Settings

log = logging.getLogger(__name__)


def make_embeddings(settings: Settings) -> Embeddings:
    from assistant.knowledge.embeddings import EncoderEmbeddings
    from assistant.models.encoder import SentenceEncoder
    from assistant.models.registry import resolve_encoder

    if settings.kb_encoder_runtime == "onnx" and not settings.kb_encoder_int8:
        from assistant.models.onnx_encoder import OnnxSentenceEncoder

        encoder = OnnxSentenceEncoder(resolve_encoder(settings), settings.encoder_cache_dir / "onnx",
                                      threads=settings.torch_threads)
    else:
        encoder = SentenceEncoder(resolve_encoder(settings), int8=settings.kb_encoder_int8)
    return EncoderEmbeddings(encoder, settings.query_prefix, settings.passage_prefix)


LANGS = ("zh", "en")


class KnowledgeStore:
    """The knowledge base's Chroma collections, one per language, behind one small interface."""

    def __init__(self, collections: dict[str, Chroma], embeddings: Embeddings):
        self.collections = collections
        self.embeddings = embeddings

    def ids(self) -> set[str]:
        return {i for c in self.collections.values() for i in c.get(include=[])["ids"]}

    def records(self) -> list[tuple[str, dict, str]]:
        out = []
        for c in self.collections.values():
            got = c.get(include=["metadatas", "documents"])
            out += list(zip(got["ids"], got["metadatas"], got["documents"]))
        return out

    def vectors(self, ids: list[str]) -> dict[str, list[float]]:
        out = {}
        for c in self.collections.values():
            got = c.get(ids=ids, include=["embeddings"])
            out.update(zip(got["ids"], got["embeddings"]))
        return out

    def add(self, docs: list, ids: list[str], batch: int = 64, progress: bool = False) -> None:
        from tqdm import tqdm

        with tqdm(total=len(docs), desc="embedding chunks", unit="chunk", disable=not progress) as bar:
            for lang, coll in self.collections.items():
                mine = [(d, i) for d, i in zip(docs, ids) if d.metadata.get("lang") == lang]
                for start in range(0, len(mine), batch):
                    part = mine[start : start + batch]
                    coll.add_documents([d for d, _ in part], ids=[i for _, i in part])
                    bar.update(len(part))

    def add_vectors(self, lang: str, ids: list[str], vectors, texts: list[str], metadatas: list[dict]) -> None:
        """Add chunks whose vectors are already computed (benchmarks, migrations)."""
        coll = self.collections[lang]._collection
        for a in range(0, len(ids), 5000):
            coll.add(ids=ids[a : a + 5000], embeddings=[list(map(float, v)) for v in vectors[a : a + 5000]],
                     documents=texts[a : a + 5000], metadatas=metadatas[a : a + 5000])

    def delete(self, ids: list[str]) -> None:
        for c in self.collections.values():
            c.delete(ids=ids)

    def search(self, vector: list[float], lang: str | None, k: int) -> list[tuple[str, float]]:
        """(id, cosine similarity) best first, in one language or across all."""
        colls = [self.collections[lang]] if lang in self.collections else list(self.collections.values())
        hits = []
        for c in colls:
            # ids and distances only: the chunk texts come from the chunk store, and fetching them
            # from Chroma's SQLite cost 2-3 ms per query
            got = c._collection.query(query_embeddings=[vector], n_results=k, include=["distances"])
            hits += [(i, 1.0 - float(d)) for i, d in zip(got["ids"][0], got["distances"][0])]  # cosine distance -> similarity
        return sorted(hits, key=lambda h: h[1], reverse=True)[:k]


def open_store(settings: Settings, embeddings: Embeddings) -> KnowledgeStore:
    settings.chroma_dir.mkdir(parents=True, exist_ok=True)
    return KnowledgeStore({
        lang: Chroma(collection_name=f"{settings.collection_name}-{lang}", embedding_function=embeddings,
                     persist_directory=str(settings.chroma_dir),
                     collection_metadata={"hnsw:space": "cosine", "encoder": settings.encoder_model, "lang": lang})
        for lang in LANGS
    }, embeddings)


@dataclass
class IngestReport:
    documents: int
    added: int
    removed: int
    unchanged: int
    files: list = field(default_factory=list)

    @property
    def errors(self) -> list:
        return [f for f in self.files if f.error]

    def summary(self) -> str:
        from collections import Counter

        pii = sum((f.pii for f in self.files), Counter())
        dups = sum(f.duplicates for f in self.files)
        lines = [f"{len(self.files)} files, {self.documents} chunks: {self.added} added, {self.removed} removed, "
                 f"{self.unchanged} unchanged; {dups} duplicate chunks dropped"]
        if pii:
            lines.append("PII masked: " + ", ".join(f"{k} {v}" for k, v in sorted(pii.items())) + " ("
                         + ", ".join(f"{f.path}" for f in self.files if f.pii) + ")")
        for f in self.errors:
            lines.append(f"SKIPPED {f.path}: {f.error}")
        return "\n".join(lines)


def build_index(settings: Settings, store: KnowledgeStore, wanted: dict, progress: bool = False) -> None:
    """Write the BM25 index and the chunk store (texts, metadata, vectors, FAQ-question vectors,
    sentence vectors) that mirror the collection. Written to a temporary directory, then swapped in."""
    import shutil

    import numpy as np

    from assistant.knowledge.lexical import LexicalIndex, TextTokenizer
    from assistant.knowledge.retrieval import DocStore, faq_question_key, index_dir

    ids = sorted(wanted)
    vec_by_id = store.vectors(ids)
    vectors = np.asarray([vec_by_id[i] for i in ids], dtype=np.float32)
    docs = [wanted[i] for i in ids]
    faq_docs = {faq_question_key(d.metadata): d.metadata["title"] for d in docs if d.metadata.get("kind") == "faq"}
    keys = sorted(faq_docs)
    qvecs = store.embeddings.embed_queries([faq_docs[k] for k in keys]) if keys else []
    faq_q = {k: np.asarray(v, dtype=np.float32) for k, v in zip(keys, qvecs)}
    target = index_dir(settings)
    sentences = None
    if settings.kb_sentence_vectors:
        from assistant.knowledge.sentences import SentenceVectors

        sentences = SentenceVectors.build({i: (d.page_content, d.metadata["lang"]) for i, d in zip(ids, docs)},
                                          store.embeddings.embed_documents, previous=SentenceVectors.load(target),
                                          progress=progress)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    lexical = LexicalIndex(TextTokenizer(settings.kb_dir / "userdict.txt"))
    lexical.build(ids, [d.page_content for d in docs], groups=[d.metadata["lang"] for d in docs])
    lexical.save(tmp / "lexical")
    DocStore(ids, docs, vectors, faq_q, sentences).save(tmp)
    (tmp / "manifest.json").write_text(json.dumps({"digest": _digest(ids, settings.kb_sentence_vectors),
                                                  "chunks": len(ids)}))
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _digest(ids, sentence_vectors: bool) -> str:
    """What the index was built from: the chunk ids, the tokenisation rules, sentence vectors or not."""
    import hashlib

    from assistant.knowledge.lexical import TOKENIZER_VERSION

    return hashlib.sha256(("\n".join(sorted(ids)) + f"\ntokenizer={TOKENIZER_VERSION}"
                           + f"\nsentences={sentence_vectors}").encode()).hexdigest()


def index_is_current(settings: Settings, ids) -> bool:
    from assistant.knowledge.retrieval import index_dir

    manifest = index_dir(settings) / "manifest.json"
    try:
        return json.loads(manifest.read_text())["digest"] == _digest(ids, settings.kb_sentence_vectors)
    except (OSError, ValueError, KeyError):
        return False


def ingest(settings: Settings, store: KnowledgeStore, progress: bool = False) -> IngestReport:
    """Make the collection hold exactly the knowledge base's chunks; content-hash ids make
    re-ingesting unchanged files a no-op and replace the chunks of changed ones. The chunks of a
    file that fails to parse are kept as they were (its error is reported)."""
    loaded = load_knowledge_base(settings.kb_dir, settings.kb_max_file_mb, tuple(settings.kb_pii_allow_domains),
                                 progress=progress)
    wanted = {doc_id(d): d for d in loaded.docs}
    failed = {f.path for f in loaded.errors}
    records = store.records()
    existing = {i for i, _, _ in records}
    # a file that failed this time keeps its previous chunks
    from langchain_core.documents import Document

    for i, md, text in records:
        if _file_of(md) in failed:
            wanted[i] = Document(page_content=text, metadata=md)
    new_ids = [i for i in wanted if i not in existing]
    stale = sorted(existing - set(wanted))
    if new_ids:
        # longest first, so each embedding batch pads to similar lengths
        new_ids.sort(key=lambda i: len(wanted[i].page_content), reverse=True)
        store.add([wanted[i] for i in new_ids], new_ids, progress=progress)
    # the index is swapped in before stale chunks go: an interruption anywhere leaves either the
    # previous state or the new one searchable
    if new_ids or stale or not index_is_current(settings, wanted):
        build_index(settings, store, wanted, progress)
    if stale:
        store.delete(stale)
    return IngestReport(len(wanted), len(new_ids), len(stale), len(wanted) - len(new_ids), loaded.files)


def _file_of(metadata: dict) -> str:
    """The knowledge-base file a chunk came from (FAQ sources are 'file#id')."""
    return str(metadata.get("source", "")).split("#", 1)[0]
