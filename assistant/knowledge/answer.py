"""The knowledge chain (LangChain runnables): retrieve → numbered sources under a token budget →
generate → an answer whose citations [1], [2] map to the sources — or a refusal.

* Retrieval is the hybrid searcher behind a LangChain retriever.
* An FAQ entry whose question matches closely is answered with its curated answer, no generation.
* A question the knowledge base does not answer is refused: by the trained answerability test
  (:mod:`assistant.knowledge.ranker`) when one is trained, else when the best semantic score is below
  ``min_score``; so is a generator that finds no support. The caller offers a human.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda

from assistant.knowledge.generate import Generator, Source
from assistant.knowledge.retrieval import HybridSearcher, Mode, unit_id
from assistant.knowledge.safety import looks_like_injection


class HybridRetriever(BaseRetriever):
    """LangChain retriever over :class:`HybridSearcher`; scores travel in each document's metadata."""

    searcher: Any
    lang: str | None = None
    mode: str = "hybrid"
    k: int = 5

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        """With a trained ranker, every document also carries ``answerable``: the probability that the
        knowledge base answers the query (the same for all of them)."""
        hits, answerable = self.searcher.search_judged(query, self.lang, self.mode, k=self.k)
        return [Document(page_content=h.doc.page_content, id=h.id,
                         metadata={**h.doc.metadata, "score": h.score, "unit": h.unit,
                                   "semantic": h.features.get("semantic", h.dense),
                                   "faq_question_score": h.faq_question, "answerable": answerable})
                for h in hits]


@dataclass(frozen=True)
class Citation:
    n: int
    title: str
    heading: str
    source: str
    unit: str = ""
    text: str = ""   # the cited source's text, kept for checks of what the answer says


@dataclass
class CitedAnswer:
    kind: Literal["curated", "generated", "refused"]
    text: str = ""
    citations: list[Citation] = field(default_factory=list)
    score: float = 0.0
    reason: str = ""
    generator: str = ""

    @property
    def refused(self) -> bool:
        return self.kind == "refused"


def approx_tokens(text: str) -> int:
    """A model-independent estimate: one token per CJK character, ~1.3 per Latin word."""
    return len(re.findall(r"[\u3400-\u9fff]", text)) + int(1.3 * len(re.findall(r"[A-Za-z0-9]+", text))) + 1


def _sources(docs: list[Document], budget_tokens: int, max_sources: int) -> list[Source]:
    out, used, seen_units = [], 0, set()
    for d in docs:
        md = d.metadata
        if md.get("unit") in seen_units:
            continue
        text = md.get("answer") or d.page_content
        cost = approx_tokens(text)
        if out and used + cost > budget_tokens:
            break
        seen_units.add(md.get("unit"))
        out.append(Source(len(out) + 1, text, md.get("title", ""), md.get("heading", ""), md.get("source", ""),
                          md.get("kind", ""), md.get("lang", "")))
        used += cost
        if len(out) >= max_sources:
            break
    return out


class KnowledgeAnswerer:
    def __init__(self, searcher: HybridSearcher, generator: Generator | None, min_score: float,
                 faq_direct_score: float = 0.93, top_k: int = 5, budget_tokens: int = 1200, max_sources: int = 3,
                 mode: Mode = "hybrid"):
        self.searcher = searcher
        self.generator = generator
        self.min_score = min_score
        self.faq_direct_score = faq_direct_score
        self.top_k = top_k
        self.budget_tokens = budget_tokens
        self.max_sources = max_sources
        self.mode = mode
        self.prepare_chain = (RunnableLambda(self._retrieve) | RunnableLambda(self._prepare)).with_config(
            run_name="knowledge_prepare")
        self.chain = (self.prepare_chain | RunnableLambda(self._generate)).with_config(run_name="knowledge_answer")

    def retriever(self, lang: str | None) -> HybridRetriever:
        return HybridRetriever(searcher=self.searcher, lang=lang, mode=self.mode, k=self.top_k)

    # -- chain steps ---------------------------------------------------------------
    def _retrieve(self, inp: dict) -> dict:
        question = (inp.get("question") or "").strip()
        if looks_like_injection(question):
            return {**inp, "question": question, "docs": [], "refusal": "instructions in the question"}
        if question and not self.searcher.lexical.tokenizer(question):
            return {**inp, "question": question, "docs": [], "refusal": "nothing to look up"}
        docs = self.retriever(inp.get("lang")).invoke(question) if question else []
        # chunks flagged at ingestion as carrying instructions never become sources
        docs = [d for d in docs if not d.metadata.get("suspicious")]
        return {**inp, "question": question, "docs": docs}

    def _prepare(self, state: dict) -> dict:
        docs = state["docs"]
        best = (docs[0].metadata.get("semantic") or 0.0) if docs else 0.0
        state = {**state, "best": best, "sources": _sources(docs, self.budget_tokens, self.max_sources)}
        if not docs:
            return {**state, "answer": CitedAnswer("refused", reason=state.get("refusal") or "nothing found")}
        answerable = docs[0].metadata.get("answerable")
        if answerable is not None and answerable < self.searcher.ranker.threshold:
            # the trained answerability test decides when there is one (README, 'Knowledge answers')
            return {**state, "answer": CitedAnswer(
                "refused", score=best, reason=f"not supported (answerability {answerable:.2f} < "
                                              f"{self.searcher.ranker.threshold:.2f})")}
        if answerable is None and best < self.min_score:
            return {**state, "answer": CitedAnswer("refused", score=best, reason="weak evidence")}
        # the best-ranked FAQ among the hits, when its question matches closely: its curated answer,
        # no generation (not any FAQ whose question is close: "a refund for a monthly plan after 14
        # days?" is close to a question about an annual plan, and ranked below the right answer)
        faq = next((d for d in docs if d.metadata.get("kind") == "faq"), None)
        if faq is not None and (faq.metadata.get("faq_question_score") or 0.0) >= self.faq_direct_score:
            src = _sources([faq], self.budget_tokens, 1)[0]
            return {**state, "answer": CitedAnswer("curated", src.text, [_citation(src)], best)}
        return state

    def _generate(self, state: dict) -> CitedAnswer:
        if "answer" in state:
            return state["answer"]
        if self.generator is None:
            raise RuntimeError("this answerer has no generator (generation runs in workers): use prepare()")
        return generate_answer(self.generator, state["question"], state.get("lang") or "en", state["sources"],
                               state["best"])

    # -- entry points -----------------------------------------------------------------
    def answer(self, question: str, lang: str | None) -> CitedAnswer:
        return self.chain.invoke({"question": question, "lang": lang})

    def prepare(self, question: str, lang: str | None) -> dict:
        """Retrieval and the decisions that need no generation. The state has ``answer`` (curated or
        refused) or ``sources`` + ``best`` for :func:`generate_answer`, which may run elsewhere."""
        return self.prepare_chain.invoke({"question": question, "lang": lang})


def generate_answer(generator: Generator, question: str, lang: str, sources: list[Source], best: float) -> CitedAnswer:
    """The generation step of the chain: a draft from the generator, its citations mapped to sources."""
    draft = generator.generate(question, lang, sources)
    if not draft.supported:
        return CitedAnswer("refused", score=best, reason=f"{generator.name}: no supporting sentence",
                           generator=draft.generator or generator.name)
    by_n = {s.n: s for s in sources}
    return CitedAnswer("generated", draft.text, [_citation(by_n[n]) for n in draft.cited], best,
                       generator=draft.generator or generator.name)


def _citation(src: Source) -> Citation:
    unit = unit_id({"source": src.source, "kind": src.kind, "heading": src.heading})
    return Citation(src.n, src.title, src.heading, src.source, unit, src.text)


def make_answerer(settings, embeddings=None, generator: Generator | None = None,
                  with_generator: bool = True) -> KnowledgeAnswerer:
    """The chain for these settings. ``generator`` overrides the configured one; without a
    generator (``with_generator=False``: generation runs in workers) only :meth:`prepare` works."""
    from assistant.generation.registry import make_generator
    from assistant.knowledge.retrieval import load_searcher
    from assistant.knowledge.store import make_embeddings

    embeddings = embeddings or make_embeddings(settings)
    searcher = load_searcher(settings, embeddings)
    # load jieba, pypinyin, the stemmer, the spelling indexes and the word list now, not on a user's turn
    searcher.lexical.query_terms(searcher.lexical.corrected("预热 warm-up"))
    "warm" in searcher.lexical.dictionary
    if generator is None and with_generator:
        generator = make_generator(settings, embeddings, searcher.docstore.known_sentences())
    mode = settings.kb_retrieval_mode
    if mode == "hybrid_rerank" and searcher.ranker is None:
        mode = "hybrid"  # load_searcher has said why (no trained ranker) and what to run
    return KnowledgeAnswerer(searcher, generator, settings.kb_min_score,
                             settings.kb_faq_direct_score, settings.kb_top_k, mode=mode)
