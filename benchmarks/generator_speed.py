"""Speed of each generator backend available here, on the same questions and sources: load time,
seconds per answer, generated tokens per second, and how often the grounding policy kept the LLM's
answer (the rest fell back to the extractive one).

* ``extractive``: always (the baseline: it writes no tokens, its cost is embedding sentences), twice:
  embedding every candidate sentence at answer time, and with the sentence vectors ingestion stored
  (``extractive+stored``, what the answerer uses); ``--agreement`` also runs both on every answerable
  question of the evaluation set and counts identical answers (the stored vectors are float16);
* ``smollm2``: the embedded SmolLM2-135M-Instruct GGUF through transformers (CPU, or CUDA);
* ``openai``: only when ``ASSISTANT_LLM_BASE_URL`` points at a running endpoint;
* ``hf``: only when ``ASSISTANT_LLM_MODEL_PATH`` is set.

    .venv/bin/python -m benchmarks.generator_speed [--questions 12] [--agreement] [--no-llm]
"""

from __future__ import annotations

import argparse
import statistics
import time

from assistant.generation.registry import extractive_generator, llm_generator
from assistant.generation.policy import GroundedGenerator
from assistant.knowledge.answer import make_answerer
from assistant.knowledge.evaluate import load_eval_set
from assistant.settings import Settings
from benchmarks.common import print_table, write_json

QUESTIONS = [
    ("I paid for a Pro annual plan 4 months ago, how much of a refund do I get?", "en"),
    ("does CloudMax have an SLA for outages", "en"),
    ("which compliance certifications do you have", "en"),
    ("what format is the data export in", "en"),
    ("how many days of file version history do I keep", "en"),
    ("how long does a refund take to arrive", "en"),
    ("企业版有哪些安全认证", "zh"),
    ("团队版最多支持多少人", "zh"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--questions", type=int, default=len(QUESTIONS))
    ap.add_argument("--agreement", action="store_true", help="compare extractive answers with and without "
                    "stored sentence vectors on the evaluation set's answerable questions")
    ap.add_argument("--no-llm", action="store_true", help="extractive rows only")
    args = ap.parse_args()
    base = Settings()
    answerer = make_answerer(base, with_generator=False)
    embeddings = answerer.searcher.store.embeddings
    cases = []
    for q, lang in QUESTIONS[: args.questions]:
        state = answerer.prepare(q, lang)
        if "sources" in state and state["sources"]:
            cases.append((q, lang, state["sources"]))
    known = answerer.searcher.docstore.known_sentences()
    backends = {"extractive": lambda: extractive_generator(base, embeddings),
                "extractive+stored": lambda: extractive_generator(base, embeddings, known)}
    if not args.no_llm:
        backends["smollm2"] = lambda: llm_generator(base.model_copy(update={"kb_generator": "smollm2"}))
        if base.llm_base_url:
            backends["openai"] = lambda: llm_generator(base.model_copy(update={"kb_generator": "openai"}))
        if base.llm_model_path:
            backends["hf"] = lambda: llm_generator(base.model_copy(update={"kb_generator": "hf"}))
    rows, payload = [], {}
    fallback = extractive_generator(base, embeddings, known)
    for name, factory in backends.items():
        t0 = time.perf_counter()
        gen = factory()
        getattr(gen, "load", lambda: None)()
        load_s = time.perf_counter() - t0
        grounded = GroundedGenerator(gen, fallback) if not name.startswith("extractive") else None
        seconds, tokens, kept, english = [], 0, 0, 0
        for q, lang, sources in cases:
            t = time.perf_counter()
            draft = gen.generate(q, lang, sources)
            seconds.append(time.perf_counter() - t)
            tokens += draft.tokens
            if grounded is not None and lang == "en":
                english += 1
                kept += grounded.generate(q, lang, sources).generator == gen.name
        row = {"backend": name, "device": getattr(gen, "device", "cpu"), "load_s": round(load_s, 1),
               "answers": len(cases), "s_per_answer": round(statistics.fmean(seconds), 2),
               "tokens_per_s": round(tokens / sum(seconds), 1) if tokens else "-",
               "llm_answer_kept": f"{kept}/{english}" if grounded is not None else "-"}
        passages = getattr(gen, "embed_passages", None)
        row["stored_sentences"] = (f"{passages.hits}/{passages.hits + passages.misses}"
                                   if hasattr(passages, "hits") else "-")
        rows.append(row)
        payload[name] = row
    print_table("generator backends (same questions and sources)", rows)
    result = {"backends": payload, "questions": len(cases)}
    if args.agreement:
        result["agreement"] = agreement(base, answerer, embeddings, known)
    write_json("generator_speed", result)


def agreement(settings, answerer, embeddings, known) -> dict:
    """Both extractive variants on every answerable evaluation question that reaches generation:
    identical answers, seconds per answer, the share of sentences served from storage."""
    answerable, _ = load_eval_set(settings.root_dir / "evals" / "knowledge" / "questions.yml")
    fresh, stored = extractive_generator(settings, embeddings), extractive_generator(settings, embeddings, known)
    same = generated = 0
    times = {"fresh": [], "stored": []}
    changed = []
    for q in answerable:
        state = answerer.prepare(q.question, q.lang)
        if "answer" in state or not state.get("sources"):
            continue   # curated or refused before generation: no generator involved
        generated += 1
        drafts = {}
        for name, gen in (("fresh", fresh), ("stored", stored)):
            t = time.perf_counter()
            drafts[name] = gen.generate(q.question, q.lang, state["sources"])
            times[name].append(time.perf_counter() - t)
        a, b = drafts["fresh"], drafts["stored"]
        if (a.supported, a.text) == (b.supported, b.text):
            same += 1
        else:
            changed.append({"id": q.id, "fresh": a.text if a.supported else "(refused)",
                            "stored": b.text if b.supported else "(refused)"})
    hits, total = stored.embed_passages.hits, stored.embed_passages.hits + stored.embed_passages.misses
    row = {"questions generated": generated, "identical answers": f"{same}/{generated}",
           "fresh s/answer": round(statistics.fmean(times["fresh"]), 3),
           "stored s/answer": round(statistics.fmean(times["stored"]), 3),
           "speed-up": f"x{statistics.fmean(times['fresh']) / statistics.fmean(times['stored']):.1f}",
           "sentences from storage": f"{hits}/{total} ({100 * hits / max(total, 1):.0f} %)"}
    print_table("extractive answers: sentences embedded at answer time vs stored at ingestion", [row])
    for c in changed:
        print(f"  {c['id']}: fresh {c['fresh'][:90]!r}\n  {' ' * len(c['id'])}  stored {c['stored'][:90]!r}")
    return {**row, "changed": changed}


if __name__ == "__main__":
    main()
