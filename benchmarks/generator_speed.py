"""Speed of each generator backend available here, on the same questions and sources: load time,
seconds per answer, generated tokens per second, and how often the grounding policy kept the LLM's
answer (the rest fell back to the extractive one).

* ``extractive``: always (the baseline: it writes no tokens, its cost is embedding sentences);
* ``smollm2``: the embedded SmolLM2-135M-Instruct GGUF through transformers (CPU, or CUDA);
* ``openai``: only when ``ASSISTANT_LLM_BASE_URL`` points at a running endpoint;
* ``hf``: only when ``ASSISTANT_LLM_MODEL_PATH`` is set.

    .venv/bin/python -m benchmarks.generator_speed [--questions 12]
"""

from __future__ import annotations

import argparse
import statistics
import time

from assistant.generation.registry import extractive_generator, llm_generator
from assistant.generation.policy import GroundedGenerator
from assistant.knowledge.answer import make_answerer
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
    args = ap.parse_args()
    base = Settings()
    answerer = make_answerer(base, with_generator=False)
    embeddings = answerer.searcher.store.embeddings
    cases = []
    for q, lang in QUESTIONS[: args.questions]:
        state = answerer.prepare(q, lang)
        if "sources" in state and state["sources"]:
            cases.append((q, lang, state["sources"]))
    backends = {"extractive": lambda: extractive_generator(base, embeddings)}
    backends["smollm2"] = lambda: llm_generator(base.model_copy(update={"kb_generator": "smollm2"}))
    if base.llm_base_url:
        backends["openai"] = lambda: llm_generator(base.model_copy(update={"kb_generator": "openai"}))
    if base.llm_model_path:
        backends["hf"] = lambda: llm_generator(base.model_copy(update={"kb_generator": "hf"}))
    rows, payload = [], {}
    fallback = extractive_generator(base, embeddings)
    for name, factory in backends.items():
        t0 = time.perf_counter()
        gen = factory()
        getattr(gen, "load", lambda: None)()
        load_s = time.perf_counter() - t0
        grounded = GroundedGenerator(gen, fallback) if name != "extractive" else None
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
        rows.append(row)
        payload[name] = row
    print_table("generator backends (same questions and sources)", rows)
    write_json("generator_speed", {"backends": payload, "questions": len(cases)})


if __name__ == "__main__":
    main()
