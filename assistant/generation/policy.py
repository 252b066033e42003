"""The grounding policy for LLM answers: an LLM writes fluent text but may invent facts (small
ones often do), so its answer is used only when every sentence is supported by the sources it
cites, and Chinese questions go to the extractive generator (the embedded LLM writes English only).
Anything else gets the extractive answer, which only quotes the sources."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import Sequence

from assistant.knowledge.generate import Draft, Generator, GeneratorUnavailable, Source, split_sentences

log = logging.getLogger(__name__)
_CJK = re.compile(r"[\u3400-\u9fff]")
_WORD = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)?")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_CITE = re.compile(r"\s*\[\d+\]")
STOPWORDS = frozenset(
    "a an the and or of to in on for with at by from is are was were be been it its this that these those you your "
    "we our can will may do does not no yes if as so than then there their they them he she i me my us".split())


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())}


def support(sentence: str, source_text: str) -> float:
    """Share of the sentence's content words found in the source; 0 if it states a number the source lacks."""
    words = content_words(sentence)
    if not words:
        return 1.0
    if any(n not in source_text for n in _NUMBER.findall(sentence)):
        return 0.0
    return len(words & content_words(source_text)) / len(words)


def attribute(draft: Draft, sources: Sequence[Source], min_support: float) -> Draft | None:
    """Check each sentence against the sources and cite the one that supports it best; ``None`` when
    a sentence has no support."""
    by_n = {s.n: s for s in sources}
    out, cited = [], set()
    for sentence in split_sentences(draft.text, "en"):
        claimed = [int(n) for n in re.findall(r"\[(\d+)\]", sentence) if int(n) in by_n]
        bare = _CITE.sub("", sentence).strip()
        candidates = [by_n[n] for n in claimed] or list(sources)
        best = max(candidates, key=lambda s: support(bare, s.text), default=None)
        if best is None or support(bare, best.text) < min_support:
            return None
        out.append(f"{bare}[{best.n}]")
        cited.add(best.n)
    if not out:
        return None
    return replace(draft, text=" ".join(out), cited=sorted(cited), supported=True)


class GroundedGenerator:
    def __init__(self, llm: Generator, fallback: Generator, min_support: float = 0.7):
        self.llm = llm
        self.fallback = fallback
        self.min_support = min_support
        self.name = f"{llm.name}+grounded"

    def generate(self, question: str, lang: str, sources: Sequence[Source]) -> Draft:
        if lang == "zh" or _CJK.search(question):
            return self.fallback.generate(question, lang, sources)
        try:
            draft = self.llm.generate(question, lang, sources)
        except GeneratorUnavailable as exc:
            log.warning("LLM unavailable, answering extractively: %s", exc)
            return self.fallback.generate(question, lang, sources)
        checked = attribute(draft, sources, self.min_support) if draft.supported else None
        if checked is None:
            log.info("%s answer not supported by its sources; extractive answer instead", self.llm.name)
            return replace(self.fallback.generate(question, lang, sources), tokens=draft.tokens)
        return checked

    def load(self):
        getattr(self.llm, "load", lambda: None)()
        return self
