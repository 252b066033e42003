"""Every number the knowledge issue sets a target for, from one command.

1. The evaluation (``eval-kb``): Recall@5 of hybrid + trained rerank (cross-validated), its gain on
   the Chinese slice over the better of vector-only and BM25-only, and refusal of unanswerable /
   answerable questions (cross-validated answerability test).
2. Retrieval latency at 1k, 10k and 100k chunks (``benchmarks.kb_retrieval_scale``: synthetic
   corpora, real query embedding) and ingest throughput (the real pipeline).

It prints each target beside what was measured and writes ``benchmarks/results/knowledge_targets.json``
(and the evaluation's own reports in ``var/reports/``).

    .venv/bin/python -m benchmarks.knowledge_targets [--sizes 1000 10000 100000] [--queries 200]
"""

from __future__ import annotations

import argparse

from assistant.knowledge.evaluate import run_evaluation, write_reports
from assistant.knowledge.store import make_embeddings
from assistant.settings import Settings
from benchmarks.common import print_table, write_json
from benchmarks.kb_retrieval_scale import bench_ingest, scale_runs


def targets(ev: dict, scale: list[dict], ingest: dict) -> list[dict]:
    m = ev["retrieval"]["metrics"]
    zh = {mode: m[mode]["zh"]["recall@5"] for mode in m}
    best_single = max(zh["vector"], zh["bm25"])
    refusal = ev["refusal_cv"]
    largest = max(r["chunks"] for r in scale)
    p95 = {r["mode"]: r["p95_ms"] for r in scale if r["chunks"] == largest}
    rows = [
        ("Recall@5, hybrid + rerank (all)", ">= 0.95", m["hybrid_rerank"]["all"]["recall@5"], lambda v: v >= 0.95),
        ("Recall@5 zh: rerank minus best of vector/BM25", ">= +0.05", round(zh["hybrid_rerank"] - best_single, 3),
         lambda v: v >= 0.05),
        ("unanswerable refused (cross-validated)", ">= 0.90", refusal["refusal_recall"], lambda v: v >= 0.90),
        ("answerable wrongly refused (cross-validated)", "<= 0.05", refusal["answerable_wrongly_refused"],
         lambda v: v <= 0.05),
        (f"retrieval p95 at {largest:,} chunks, hybrid (ms)", "<= 30", p95.get("hybrid"), lambda v: v <= 30),
        (f"retrieval p95 at {largest:,} chunks, hybrid + rerank (ms)", "<= 30", p95.get("hybrid_rerank"),
         lambda v: v <= 30),
        ("ingest throughput (chunks/s)", ">= 50", ingest["chunks_per_s"], lambda v: v >= 50),
    ]
    return [{"target": name, "wanted": want, "measured": v, "met": "yes" if v is not None and ok(v) else "NO"}
            for name, want, v, ok in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--ingest-copies", type=int, default=4)
    args = ap.parse_args()
    settings = Settings()
    questions = settings.root_dir / "evals" / "knowledge" / "questions.yml"
    ev = run_evaluation(settings, questions, progress=False)
    write_reports(ev, settings.var_dir / "reports")
    m = ev["retrieval"]["metrics"]
    print_table("retrieval on the evaluation set (hybrid_rerank cross-validated)",
                [{"mode": mode, **{s: m[mode][s]["recall@5"] for s in ("all", "zh", "en", "faq", "doc")},
                  "R@1": m[mode]["all"]["recall@1"], "MRR": m[mode]["all"]["mrr"]} for mode in m])

    embeddings = make_embeddings(settings)
    scale, _ = scale_runs(settings, embeddings, args.sizes, args.queries)
    ingest = bench_ingest(settings, embeddings, args.ingest_copies)
    print_table("ingestion (real pipeline)", [ingest])
    rows = targets(ev, scale, ingest)
    print_table("knowledge targets", rows)
    write_json("knowledge_targets", {"targets": rows, "retrieval_eval": m, "refusal_cv": ev["refusal_cv"],
                                     "refusal_chain": ev["refusal"], "answers": ev["answers"], "scale": scale,
                                     "ingest": ingest,
                                     "encoder_int8": settings.kb_encoder_int8})


if __name__ == "__main__":
    main()
