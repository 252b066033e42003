"""LangChain ``Embeddings`` over the project's sentence encoder, with e5's query/passage prefixes."""

from __future__ import annotations

from langchain_core.embeddings import Embeddings


class EncoderEmbeddings(Embeddings):
    """``encoder``: a :class:`~assistant.models.encoder.SentenceEncoder` or its ONNX Runtime twin
    (:class:`~assistant.models.onnx_encoder.OnnxSentenceEncoder`): anything with ``embed(texts, prefix)``."""

    def __init__(self, encoder, query_prefix: str = "query: ", passage_prefix: str = "passage: "):
        self.encoder = encoder
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encoder.embed(texts, self.passage_prefix).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encoder.embed([text], self.query_prefix)[0].tolist()

    def embed_queries(self, texts: list[str]) -> list[list[float]]:
        return self.encoder.embed(texts, self.query_prefix).tolist()
