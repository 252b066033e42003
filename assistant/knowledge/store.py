"""The persistent Chroma collection and idempotent ingestion into it."""

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

    return EncoderEmbeddings(SentenceEncoder(resolve_encoder(settings)), settings.query_prefix, settings.passage_prefix)


def open_store(settings: Settings, embeddings: Embeddings) -> Chroma:
    settings.chroma_dir.mkdir(parents=True, exist_ok=True)
    return Chroma(
        collection_name=settings.collection_name,
        embedding_function=embeddings,
        persist_directory=str(settings.chroma_dir),
        collection_metadata={"hnsw:space": "cosine", "encoder": settings.encoder_model},
    )


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


def build_index(settings: Settings, store: Chroma, wanted: dict) -> None:
    """Write the BM25 index and the chunk store (texts, metadata, vectors, FAQ-question vectors)
    that mirror the collection. Written to a temporary directory, then swapped in."""
    import shutil

    import numpy as np

    from assistant.knowledge.lexical import LexicalIndex, TextTokenizer
    from assistant.knowledge.retrieval import DocStore, index_dir, unit_id

    ids = sorted(wanted)
    got = store.get(ids=ids, include=["embeddings"])
    vec_by_id = dict(zip(got["ids"], got["embeddings"]))
    vectors = np.asarray([vec_by_id[i] for i in ids], dtype=np.float32)
    docs = [wanted[i] for i in ids]
    # one FAQ id covers both languages: its question vectors are keyed "unit|lang"
    faq_keys = sorted({(unit_id(d.metadata), d.metadata["lang"], d.metadata["title"]) for d in docs
                       if d.metadata.get("kind") == "faq"})
    qvecs = store.embeddings.embed_queries([t for _, _, t in faq_keys]) if faq_keys else []
    faq_q = {f"{u}|{lang}": np.asarray(v, dtype=np.float32) for (u, lang, _), v in zip(faq_keys, qvecs)}
    target = index_dir(settings)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    lexical = LexicalIndex(TextTokenizer(settings.kb_dir / "userdict.txt"))
    lexical.build(ids, [d.page_content for d in docs], groups=[d.metadata["lang"] for d in docs])
    lexical.save(tmp / "lexical")
    DocStore(ids, docs, vectors, faq_q).save(tmp)
    (tmp / "manifest.json").write_text(json.dumps({"digest": _digest(ids), "chunks": len(ids)}))
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _digest(ids) -> str:
    import hashlib

    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()


def index_is_current(settings: Settings, ids) -> bool:
    from assistant.knowledge.retrieval import index_dir

    manifest = index_dir(settings) / "manifest.json"
    try:
        return json.loads(manifest.read_text())["digest"] == _digest(ids)
    except (OSError, ValueError, KeyError):
        return False


def ingest(settings: Settings, store: Chroma, progress: bool = False) -> IngestReport:
    """Make the collection hold exactly the knowledge base's chunks; content-hash ids make
    re-ingesting unchanged files a no-op and replace the chunks of changed ones. The chunks of a
    file that fails to parse are kept as they were (its error is reported)."""
    loaded = load_knowledge_base(settings.kb_dir, settings.kb_max_file_mb, tuple(settings.kb_pii_allow_domains),
                                 progress=progress)
    wanted = {doc_id(d): d for d in loaded.docs}
    failed = {f.path for f in loaded.errors}
    got = store.get(include=["metadatas", "documents"])
    existing = set(got["ids"])
    # a file that failed this time keeps its previous chunks
    from langchain_core.documents import Document

    for i, md, text in zip(got["ids"], got["metadatas"], got["documents"]):
        if _file_of(md) in failed:
            wanted[i] = Document(page_content=text, metadata=md)
    new_ids = [i for i in wanted if i not in existing]
    stale = sorted(existing - set(wanted))
    if new_ids:
        batch = 64
        for start in range(0, len(new_ids), batch):
            ids = new_ids[start : start + batch]
            store.add_documents([wanted[i] for i in ids], ids=ids)
    if stale:
        store.delete(ids=stale)
    if new_ids or stale or not index_is_current(settings, wanted):
        build_index(settings, store, wanted)
    return IngestReport(len(wanted), len(new_ids), len(stale), len(wanted) - len(new_ids), loaded.files)


def _file_of(metadata: dict) -> str:
    """The knowledge-base file a chunk came from (FAQ sources are 'file#id')."""
    return str(metadata.get("source", "")).split("#", 1)[0]
