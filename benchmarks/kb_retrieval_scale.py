"""How fast is knowledge retrieval at 1k, 10k and 100k chunks, and how fast is ingestion?

Retrieval: a synthetic corpus per size (texts sampled from the real knowledge base's sentences in
both languages, so BM25 sees realistic zh/en terms; vectors, and four sentence vectors per chunk for
the reranker, random unit vectors, since index latency depends on size, not content) in persistent Chroma collections + the BM25 index + the chunk store.
Queries are the evaluation questions, embedded by the real encoder (included in the timing).
Vector-only latency in the same run is the baseline for the ratios.

Ingestion: the real pipeline (clean, mask, chunk, embed, store, index) on a knowledge base made of
copies of the sample documents with distinct numbers, in chunks per second.

    .venv/bin/python -m benchmarks.kb_retrieval_scale [--sizes 1000 10000 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from assistant.knowledge.documents import load_knowledge_base
from assistant.knowledge.evaluate import load_eval_set
from assistant.knowledge.generate import split_sentences
from assistant.knowledge.lexical import LexicalIndex, TextTokenizer
from assistant.knowledge.retrieval import DocStore, HybridSearcher, dictionary_words, load_ranker
from assistant.knowledge.sentences import SentenceVectors
from assistant.knowledge.store import ingest, make_embeddings, open_store
from assistant.settings import Settings
from benchmarks.common import memory_mb, print_table, summary_ms, write_json


def synthetic_corpus(sentences: dict[str, list[str]], n: int, rng: random.Random):
    from langchain_core.documents import Document

    docs = []
    for i in range(n):
        lang = "zh" if i % 2 else "en"
        text = " ".join(rng.sample(sentences[lang], k=min(4, len(sentences[lang]))))
        docs.append(Document(page_content=text, id=f"syn-{i}",
                             metadata={"source": f"synthetic/{lang}/{i // 20}.md", "kind": "doc", "lang": lang,
                                       "title": f"Synthetic {i // 20}", "heading": f"Section {i % 20}", "answer": text}))
    return docs


def bench_size(n: int, base: Settings, embeddings, sentences, questions, dim: int, rng: random.Random,
               ranker=None) -> dict:
    """Latency per mode at ``n`` chunks; with a trained ``ranker`` also ``hybrid_rerank`` as the chain
    runs it (candidates, rerank and the answerability test)."""
    tmp = Path(tempfile.mkdtemp(prefix=f"kbscale-{n}-"))
    try:
        s = Settings(_env_file=None, var_dir=tmp, chroma_dir=tmp / "chroma", chroma_collection=f"scale{n}")
        store = open_store(s, embeddings)
        docs = synthetic_corpus(sentences, n, rng)
        vecs = np.random.default_rng(n).standard_normal((n, dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        started = time.perf_counter()
        for lang in ("zh", "en"):
            rows = [n_ for n_, d in enumerate(docs) if d.metadata["lang"] == lang]
            store.add_vectors(lang, [docs[r].id for r in rows], vecs[rows], [docs[r].page_content for r in rows],
                              [docs[r].metadata for r in rows])
        lexical = LexicalIndex(TextTokenizer(base.kb_dir / "userdict.txt"), dictionary_words(base))
        lexical.build([d.id for d in docs], [d.page_content for d in docs], [d.metadata["lang"] for d in docs])
        build_s = time.perf_counter() - started
        # four sentence vectors per chunk (the sample knowledge base averages 4.3 in its multi-sentence chunks)
        sent = np.random.default_rng(n + 1).standard_normal((4 * n, dim)).astype(np.float16)
        sent /= np.linalg.norm(sent.astype(np.float32), axis=1, keepdims=True).astype(np.float16)
        sentences = SentenceVectors([d.id for d in docs], np.arange(0, 4 * n + 1, 4), sent)
        searcher = HybridSearcher(store, lexical, DocStore([d.id for d in docs], docs, vecs, {}, sentences),
                                  lambda q: np.asarray(embeddings.embed_query(q)), ranker=ranker)
        timings = {m: [] for m in ("vector", "bm25", "hybrid") + (("hybrid_rerank",) if ranker else ())}
        for q in questions[:10]:  # warm-up (the rerank builds its chunk-term table on first use)
            searcher.search_judged(q.question, q.lang, "hybrid_rerank" if ranker else "hybrid")
        for q in questions:
            for mode in timings:
                t0 = time.perf_counter()
                if mode == "hybrid_rerank":
                    searcher.search_judged(q.question, q.lang, mode, k=10)
                else:
                    searcher.search(q.question, q.lang, mode, k=10)
                timings[mode].append(time.perf_counter() - t0)
        base_p50 = summary_ms(timings["vector"])["p50_ms"]
        rows = []
        for mode, values in timings.items():
            sm = summary_ms(values)
            rows.append({"chunks": n, "mode": mode, "p50_ms": sm["p50_ms"], "p95_ms": sm["p95_ms"],
                         "x_vector_p50": round(sm["p50_ms"] / base_p50, 2), "index_build_s": round(build_s, 1),
                         "rss_mb": round(memory_mb())})
        return {"rows": rows}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_ingest(base: Settings, embeddings, copies: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="kbingest-"))
    try:
        kb = tmp / "kb"
        for n in range(copies):
            for md in (base.kb_dir / "docs").rglob("*.md"):
                target = kb / "docs" / md.parent.name / f"{md.stem}-{n}.md"
                target.parent.mkdir(parents=True, exist_ok=True)
                # distinct numbers per copy so that de-duplication keeps them
                target.write_text(re.sub(r"\d+", lambda m: str(int(m.group(0)) + 1000 * (n + 1)),
                                         md.read_text(encoding="utf-8")), encoding="utf-8")
        shutil.copy(base.kb_dir / "faq.yml", kb / "faq.yml")
        s = Settings(_env_file=None, kb_dir=kb, var_dir=tmp / "var")
        started = time.perf_counter()
        report = ingest(s, open_store(s, embeddings))
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        again = ingest(s, open_store(s, embeddings))
        return {"chunks": report.documents, "seconds": round(seconds, 1),
                "chunks_per_s": round(report.documents / seconds, 1),
                "reingest_unchanged_s": round(time.perf_counter() - started, 1), "reingest_added": again.added}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def scale_runs(settings: Settings, embeddings, sizes: list[int], queries: int) -> tuple[list[dict], int]:
    """``bench_size`` at each size, printing each size's table: corpora of the knowledge base's own
    sentences, a fixed sample of the evaluation questions, and ``hybrid_rerank`` when a ranker is
    trained. Returns the rows and the number of questions timed."""
    loaded = load_knowledge_base(settings.kb_dir, pii_allow=tuple(settings.kb_pii_allow_domains))
    sentences = {"zh": [], "en": []}
    for d in loaded.docs:
        sentences[d.metadata["lang"]].extend(split_sentences(d.metadata["answer"], d.metadata["lang"]))
    answerable, _ = load_eval_set(settings.root_dir / "evals" / "knowledge" / "questions.yml")
    rng = random.Random(7)
    questions = rng.sample(answerable, k=min(queries, len(answerable)))
    dim = len(embeddings.embed_query("x"))
    ranker = load_ranker(settings)   # hybrid_rerank is timed when train-kb-ranker has run
    rows = []
    for n in sizes:
        rows += bench_size(n, settings, embeddings, sentences, questions, dim, rng, ranker=ranker)["rows"]
        print_table(f"retrieval latency at {n} chunks (query embedding included)", [r for r in rows if r["chunks"] == n])
    return rows, len(questions)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--ingest-copies", type=int, default=4)
    args = ap.parse_args()
    base = Settings(_env_file=None)
    embeddings = make_embeddings(base)
    rows, timed = scale_runs(base, embeddings, args.sizes, args.queries)
    ingest_result = bench_ingest(base, embeddings, args.ingest_copies)
    print_table("ingestion (real pipeline: clean, mask, chunk, embed, store, index)", [ingest_result])
    name = "kb_retrieval_scale_int8" if base.kb_encoder_int8 else "kb_retrieval_scale"
    write_json(name, {"retrieval": rows, "ingest": ingest_result, "queries": timed,
                      "encoder_int8": base.kb_encoder_int8})


if __name__ == "__main__":
    main()
