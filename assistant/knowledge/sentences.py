"""Sentence vectors: each chunk's sentences embedded one by one, for the reranker.

A chunk's vector averages everything the chunk says; a question about one line of it ("专业版一个月
多少钱" against a pricing section whose answer is the line "专业版 ¥45/月") can sit far from that
average and close to the line. So ingestion also embeds every sentence of a chunk that has more
than one (``passage:`` side), and the reranker reads, per candidate chunk, the best cosine between
the question and one of its sentences (README, 'Knowledge answers': Chinese R@5 0.953 -> 0.969 over
three fold seeds). The price is embedding time: about as much again as the chunks themselves.

Vectors are kept by chunk id in ``sentences.npz`` beside the chunk store, in float16; a rebuild of
the index reuses the vectors of chunks it already has, so only new chunks are embedded.

The extractive generator scores the same sentences again at answer time (the sentences of its
sources); :class:`KnownSentences` hands it the stored vectors by sentence text, so the encoder only
sees the sentences ingestion did not embed (README, 'Knowledge answers': seconds per answer).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

FILE = "sentences.npz"
MAX_SENTENCES = 32   # per chunk: the first ones (a chunk is a few hundred tokens)


def chunk_sentences(text: str, lang: str) -> list[str]:
    """The sentences of a chunk worth a vector of their own: none for a chunk of one sentence (its
    own vector says the same)."""
    from assistant.knowledge.generate import split_sentences

    sentences = split_sentences(text, lang)[:MAX_SENTENCES]
    return sentences if len(sentences) > 1 else []


class SentenceVectors:
    """Unit vectors of each chunk's sentences: rows ``offsets[n]:offsets[n + 1]`` belong to ``ids[n]``."""

    def __init__(self, ids: list[str], offsets: np.ndarray, vectors: np.ndarray):
        self.ids = list(ids)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.vectors = np.asarray(vectors, dtype=np.float16)
        self._row = {i: n for n, i in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.vectors)

    def span(self, chunk_id: str) -> tuple[int, int] | None:
        """The rows ``lo:hi`` of the chunk's sentences (``lo == hi``: none), or ``None`` for an unknown id."""
        n = self._row.get(chunk_id)
        return None if n is None else (int(self.offsets[n]), int(self.offsets[n + 1]))

    def of(self, chunk_id: str) -> np.ndarray | None:
        span = self.span(chunk_id)
        if span is None or span[0] == span[1]:
            return None
        return self.vectors[span[0] : span[1]]

    def best(self, chunk_id: str, query: np.ndarray) -> float | None:
        """The highest cosine between ``query`` (a unit vector) and one of the chunk's sentences, or
        ``None`` when the chunk has no sentence vectors."""
        rows = self.of(chunk_id)
        return None if rows is None else float((rows.astype(np.float32) @ query).max())

    @classmethod
    def build(cls, chunks: Mapping[str, tuple[str, str]], embed: Callable[[list[str]], Iterable],
              previous: "SentenceVectors | None" = None, batch: int = 256, progress: bool = False) -> "SentenceVectors":
        """``chunks``: id -> (text, language); ``embed(sentences) -> vectors`` (passage side). Chunks
        that ``previous`` holds keep their vectors (ids are content hashes: same id, same text)."""
        ids = sorted(chunks)
        kept = {i: previous.of(i) for i in ids if previous is not None and i in previous._row}
        todo = [(i, s) for i in ids if i not in kept for s in chunk_sentences(*chunks[i])]
        from tqdm import tqdm

        fresh: dict[str, list[np.ndarray]] = {}
        with tqdm(total=len(todo), desc="embedding sentences", unit="sentence", disable=not progress) as bar:
            for start in range(0, len(todo), batch):
                part = todo[start : start + batch]
                for (i, _), v in zip(part, embed([s for _, s in part])):
                    fresh.setdefault(i, []).append(np.asarray(v, dtype=np.float16))
                bar.update(len(part))
        rows, offsets = [], [0]
        for i in ids:
            got = kept[i] if i in kept else (np.stack(fresh[i]) if i in fresh else None)
            if got is not None:
                rows.append(got)
            offsets.append(offsets[-1] + (0 if got is None else len(got)))
        dim = rows[0].shape[1] if rows else 1
        return cls(ids, np.asarray(offsets), np.concatenate(rows) if rows else np.zeros((0, dim), np.float16))

    def save(self, directory: Path) -> None:
        np.savez(directory / FILE, ids=np.asarray(self.ids, dtype=str), offsets=self.offsets, vectors=self.vectors)

    @classmethod
    def load(cls, directory: Path) -> "SentenceVectors | None":
        """The saved vectors, or ``None`` when the index was built without them."""
        path = Path(directory) / FILE
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as z:
            return cls([str(i) for i in z["ids"]], z["offsets"], z["vectors"])


class KnownSentences:
    """Vectors that ingestion already computed, by sentence text: each sentence of a multi-sentence
    chunk (its row of :class:`SentenceVectors`) and a single-sentence chunk whose text is that
    sentence (the chunk's own vector). The same text through the same encoder gives the same vector,
    wherever it was written; a chunk whose sentences no longer line up with its rows is skipped."""

    def __init__(self, sentences: "SentenceVectors | None", chunks: Mapping[str, tuple[str, str]],
                 chunk_vectors: Mapping[str, np.ndarray] | None = None):
        self._sentences = sentences
        self._chunk_vectors = chunk_vectors or {}
        self._where: dict[str, tuple[bool, str | int]] = {}   # text -> (in sentences.npz, row | chunk id)
        from assistant.knowledge.generate import split_sentences

        for chunk_id, (text, lang) in chunks.items():
            texts = split_sentences(text, lang)[:MAX_SENTENCES]
            if len(texts) > 1:
                span = sentences.span(chunk_id) if sentences is not None else None
                if span is None:
                    continue
                lo, hi = span
                if hi - lo == len(texts):
                    for k, sentence in enumerate(texts):
                        self._where.setdefault(sentence, (True, lo + k))
            elif texts == [text.strip()] and chunk_id in self._chunk_vectors:
                self._where.setdefault(texts[0], (False, chunk_id))

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, text: str) -> bool:
        return text in self._where

    def vector(self, text: str) -> np.ndarray | None:
        """The stored unit vector of ``text`` (float32), or ``None``."""
        got = self._where.get(text)
        if got is None:
            return None
        in_sentences, at = got
        v = (self._sentences.vectors[at] if in_sentences else self._chunk_vectors[at]).astype(np.float32)
        return v / max(float(np.linalg.norm(v)), 1e-12)


class StoredFirstEmbedder:
    """``embed(texts)`` that takes stored vectors where :class:`KnownSentences` has them and sends only
    the rest to the encoder, in one batch. ``hits`` / ``misses`` count texts served each way."""

    def __init__(self, known: KnownSentences, embed: Callable[[list[str]], Iterable]):
        self.known = known
        self.embed = embed
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        rows: list[np.ndarray | None] = [self.known.vector(t) for t in texts]
        missing = [n for n, r in enumerate(rows) if r is None]
        if missing:
            for n, v in zip(missing, self.embed([texts[n] for n in missing])):
                rows[n] = np.asarray(v, dtype=np.float32)
        with self._lock:
            self.misses += len(missing)
            self.hits += len(texts) - len(missing)
        if not rows:
            return np.zeros((0, 1), np.float32)
        return np.stack(rows)
