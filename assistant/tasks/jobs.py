"""What travels between the action server and a worker: the job and the answer, as plain JSON."""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from dataclasses import asdict, dataclass, field

from assistant.knowledge.answer import Citation, CitedAnswer
from assistant.knowledge.generate import Source

EXTERNAL_INTENT = "EXTERNAL_knowledge_answer"   # the intent a worker triggers to deliver an answer
KEY_ENTITY = "answer_key"
ANSWER_ENTITY = "knowledge_answer"


@dataclass
class AnswerJob:
    key: str                 # unique per answer; the idempotency key of the task and of the delivery
    sender_id: str           # the Rasa conversation
    question: str
    lang: str
    sources: list[Source]
    best: float
    deadline: float          # epoch seconds until which the turn may still answer inline
    cache_key: str = ""
    created: float = 0.0
    reply_to: dict = field(default_factory=dict)   # where the platform wants late answers (connectors.outbox)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sources"] = [asdict(s) for s in self.sources]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "AnswerJob":
        return cls(**{**d, "sources": [Source(**s) for s in d["sources"]]})


def new_job_key() -> str:
    return uuid.uuid4().hex


def normalise_question(text: str) -> str:
    """Case, width, spacing and punctuation do not make a different question."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"[\s\W_]+", " ", text)
    return text.strip()


def answer_cache_key(question: str, lang: str, kb_version: str, generator: str) -> str:
    raw = "\x1f".join([normalise_question(question), lang, kb_version, generator])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def dedup_key(sender_id: str, question: str, message_id: str | None) -> str:
    """Two turns with the same platform message id, or the same question while the first is still
    being answered, are one job."""
    basis = f"id:{message_id}" if message_id else f"q:{normalise_question(question)}"
    return hashlib.sha256(f"{sender_id}\x1f{basis}".encode()).hexdigest()[:32]


@dataclass
class AnswerPayload:
    """A :class:`CitedAnswer` in the shape that goes through Redis and Rasa entities."""

    key: str
    lang: str
    answer: CitedAnswer = field(default_factory=lambda: CitedAnswer("refused"))

    def to_dict(self) -> dict:
        return {"key": self.key, "lang": self.lang, **asdict(self.answer)}

    @classmethod
    def from_dict(cls, d: dict) -> "AnswerPayload":
        a = CitedAnswer(d["kind"], d.get("text", ""), [Citation(**c) for c in d.get("citations", [])],
                        d.get("score", 0.0), d.get("reason", ""), d.get("generator", ""))
        return cls(d["key"], d.get("lang", "en"), a)
