"""A cache of query embeddings: customers ask the same things, and the encoder is the slowest part
of retrieval. Redis when a broker is configured (shared by every action server), else an in-process
LRU. The cache is an optimisation: when Redis fails, the query is embedded as if nothing was cached."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict

import numpy as np
from langchain_core.embeddings import Embeddings

log = logging.getLogger(__name__)


class MemoryVectorCache:
    def __init__(self, max_items: int = 10000):
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._max = max_items
        self._lock = threading.Lock()
        self.counts = {"embedding_cache_hits": 0, "embedding_cache_misses": 0}

    def get(self, key: str) -> np.ndarray | None:
        with self._lock:
            v = self._items.get(key)
            self.counts["embedding_cache_hits" if v is not None else "embedding_cache_misses"] += 1
            if v is not None:
                self._items.move_to_end(key)
            return v

    def set(self, key: str, vector: np.ndarray) -> None:
        with self._lock:
            self._items[key] = vector
            while len(self._items) > self._max:
                self._items.popitem(last=False)


class RedisVectorCache:
    def __init__(self, url: str, ttl_s: int = 7 * 86400, timeout_s: float = 0.5):
        import redis

        from assistant.tasks.store import STATS_KEY

        self._stats_key = STATS_KEY
        self._r = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self._errors = redis.RedisError
        self.ttl_s = ttl_s

    def get(self, key: str) -> np.ndarray | None:
        try:
            raw = self._r.get(f"assistant:cache:qemb:{key}")
            self._r.hincrby(self._stats_key, "embedding_cache_hits" if raw else "embedding_cache_misses", 1)
        except self._errors as exc:
            log.warning("query-embedding cache unavailable: %s", exc)
            return None
        return np.frombuffer(raw, dtype=np.float32) if raw else None

    def set(self, key: str, vector: np.ndarray) -> None:
        try:
            self._r.set(f"assistant:cache:qemb:{key}", np.asarray(vector, dtype=np.float32).tobytes(), ex=self.ttl_s)
        except self._errors as exc:
            log.warning("query-embedding cache unavailable: %s", exc)


class CachedQueryEmbeddings(Embeddings):
    """Queries through the cache; passages straight to the encoder (each chunk is embedded once at
    ingest anyway)."""

    def __init__(self, inner: Embeddings, cache, namespace: str):
        self.inner = inner
        self.cache = cache
        self.namespace = namespace

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self.namespace}\x1f{text}".encode()).hexdigest()[:32]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.embed_queries([text])[0]

    def embed_queries(self, texts: list[str]) -> list[list[float]]:
        keys = [self._key(t) for t in texts]
        found = [self.cache.get(k) for k in keys]
        missing = [i for i, v in enumerate(found) if v is None]
        if missing:
            fresh = self.inner.embed_queries([texts[i] for i in missing])
            for i, vec in zip(missing, fresh):
                found[i] = np.asarray(vec, dtype=np.float32)
                self.cache.set(keys[i], found[i])
        return [np.asarray(v, dtype=np.float32).tolist() for v in found]
