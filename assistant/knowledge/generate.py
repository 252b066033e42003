"""Generators: turn a question and numbered sources into an answer that cites them.

One small interface (``Generator.generate(question, lang, sources) -> Draft``). This module holds
the interface and the ``extractive`` backend (default, offline): it picks the sentences of the
sources that best support the question and quotes them with their source numbers; nothing is
written that is not in a source. The LLM backends are in :mod:`assistant.generation`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import numpy as np

_SENT_ZH = re.compile(r"[^。！？；\n]+[。！？；]?")
_SENT_EN = re.compile(r"[^\n]+?(?:[.!?](?=\s|$)|$)")
_MD = re.compile(r"^\s*(?:[-*+]\s+|\d+[.)]\s+|#+\s+|\|)|\*\*|`")
_QUESTION = re.compile(r"[?？][\s\"'”’)）]*$")


@dataclass(frozen=True)
class Source:
    n: int                # citation number, 1-based
    text: str
    title: str
    heading: str
    source: str           # file / FAQ id
    kind: str
    lang: str


@dataclass
class Draft:
    text: str
    cited: list[int] = field(default_factory=list)
    supported: bool = True   # False: the generator found no support and the caller should refuse
    sentences: list[tuple[str, int]] = field(default_factory=list)  # (sentence, source n) for extractive
    generator: str = ""      # the backend that wrote it
    tokens: int = 0          # generated tokens, where the backend counts them
    seconds: float = 0.0


class Generator(Protocol):
    name: str

    def generate(self, question: str, lang: str, sources: Sequence[Source]) -> Draft: ...


def is_question(sentence: str) -> bool:
    """A sentence that asks (an FAQ heading, "Download keeps failing?") answers nothing."""
    return bool(_QUESTION.search(sentence))


def split_sentences(text: str, lang: str) -> list[str]:
    out = []
    for line in text.splitlines():
        line = _MD.sub("", line).strip().strip("|").strip()
        if not line or set(line) <= set("-|: "):
            continue
        pattern = _SENT_ZH if re.search(r"[\u4e00-\u9fff]", line) else _SENT_EN
        out.extend(s.strip() for s in pattern.findall(line) if len(s.strip()) > 3)
    return out


class ExtractiveGenerator:
    """Quote the best-supported sentences. ``embed(texts) -> unit vectors`` scores sentences against
    ``embed([question])``; a sentence needs ``min_support`` cosine to be used. Questions in the
    sources are not candidates (``skip_questions``): an FAQ heading such as "Is there a free trial of
    paid plans?" sits close to any question about trials and says nothing; when the sources' only
    close sentences are questions, there is no supporting sentence and the answer is refused."""

    name = "extractive"

    def __init__(self, embed_queries: Callable[[list[str]], np.ndarray], embed_passages: Callable[[list[str]], np.ndarray],
                 max_sentences: int = 3, min_support: float = 0.80, max_sources: int = 3,
                 skip_questions: bool = True):
        self.embed_queries = embed_queries
        self.embed_passages = embed_passages
        self.max_sentences = max_sentences
        self.min_support = min_support
        self.max_sources = max_sources
        self.skip_questions = skip_questions

    def generate(self, question: str, lang: str, sources: Sequence[Source]) -> Draft:
        candidates, seen = [], set()
        for src in sources[: self.max_sources]:
            for sentence in split_sentences(src.text, src.lang):
                if self.skip_questions and is_question(sentence):
                    continue
                if sentence not in seen:  # the same sentence in two sources is quoted once
                    seen.add(sentence)
                    candidates.append((sentence, src.n))
        if not candidates:
            return Draft("", supported=False)
        q = np.asarray(self.embed_queries([question]))[0]
        vecs = np.asarray(self.embed_passages([c[0] for c in candidates]))
        scores = vecs @ q
        # the first source is the retriever's best: a small prior keeps answers on it
        scores = scores + np.array([0.02 if n == sources[0].n else 0.0 for _, n in candidates])
        order = [i for i in np.argsort(-scores) if scores[i] >= self.min_support][: self.max_sentences]
        if not order:
            return Draft("", supported=False)
        best_source = candidates[order[0]][1]
        # keep sentences of the best source, in document order, plus any other strong ones
        chosen = sorted(order, key=lambda i: (candidates[i][1] != best_source, i))
        sentences = [candidates[i] for i in chosen]
        joiner = "" if lang == "zh" else " "
        text = joiner.join(f"{s}[{n}]" for s, n in sentences)
        return Draft(text, sorted({n for _, n in sentences}), True, sentences, generator=self.name)


class GeneratorUnavailable(RuntimeError):
    """The backend cannot answer now (endpoint down, model missing); the message says what to do."""
