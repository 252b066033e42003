"""Answer a question from the knowledge base: the best passage in the asker's language, with its source.

A first version: vector retrieval through a LangChain retriever over Chroma and a similarity
threshold below which it declines (the caller then offers a human).
"""

from __future__ import annotations

from dataclasses import dataclass

from langchain_chroma import Chroma
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever


class ScoredRetriever(BaseRetriever):
    """A LangChain retriever over Chroma that keeps each hit's relevance (cosine similarity)
    in ``metadata["score"]``, restricted to one language and cut at ``min_score``."""

    store: Chroma
    k: int = 4
    min_score: float = 0.0
    lang: str | None = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        flt = {"lang": self.lang} if self.lang else None
        hits = self.store.similarity_search_with_relevance_scores(query, k=self.k, filter=flt)
        out = []
        for doc, score in hits:
            if score >= self.min_score:
                out.append(Document(page_content=doc.page_content, metadata={**doc.metadata, "score": float(score)}))
        return out


@dataclass(frozen=True)
class KnowledgeAnswer:
    text: str
    title: str
    source: str
    heading: str
    kind: str
    score: float


class KnowledgeAnswerer:
    def __init__(self, store: Chroma, min_score: float, top_k: int = 4):
        self.store = store
        self.min_score = min_score
        self.top_k = top_k

    def retriever(self, lang: str | None) -> ScoredRetriever:
        return ScoredRetriever(store=self.store, k=self.top_k, min_score=self.min_score, lang=lang)

    def answer(self, question: str, lang: str) -> KnowledgeAnswer | None:
        question = question.strip()
        if not question:
            return None
        docs = self.retriever(lang).invoke(question)
        if not docs:
            return None
        best = docs[0]
        md = best.metadata
        return KnowledgeAnswer(
            text=md.get("answer") or best.page_content, title=md.get("title", ""), source=md.get("source", ""),
            heading=md.get("heading", ""), kind=md.get("kind", ""), score=float(md.get("score", 0.0)),
        )
