"""The persistent Chroma collection and idempotent ingestion into it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

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


def ingest(settings: Settings, store: Chroma) -> IngestReport:
    """Make the collection hold exactly the knowledge base's chunks; content-hash ids make
    re-ingesting unchanged files a no-op and replace the chunks of changed ones."""
    docs = load_knowledge_base(settings.kb_dir)
    wanted = {doc_id(d): d for d in docs}
    existing = set(store.get(include=[])["ids"])
    new_ids = [i for i in wanted if i not in existing]
    stale = sorted(existing - set(wanted))
    if new_ids:
        batch = 64
        for start in range(0, len(new_ids), batch):
            ids = new_ids[start : start + batch]
            store.add_documents([wanted[i] for i in ids], ids=ids)
    if stale:
        store.delete(ids=stale)
    return IngestReport(len(wanted), len(new_ids), len(stale), len(wanted) - len(new_ids))
