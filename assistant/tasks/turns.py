"""A knowledge turn on the action server: retrieve now, generate within the turn's budget or later.

1. Retrieval and the decisions that need no generation (curated FAQ answer, refusal) happen in the
   turn itself.
2. A cached answer (same normalised question, knowledge-base version and generator) is used as is.
3. Without a queue (fast generators) the turn generates the answer itself.
4. Otherwise a job is reserved (a duplicate message joins the job already under way) and queued;
   the turn waits for its result until the budget runs out. An answer in time is claimed
   ``inline`` and returned; else the turn claims ``late`` and says the answer is on its way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from assistant.knowledge.answer import CitedAnswer, KnowledgeAnswerer, generate_answer
from assistant.tasks.jobs import AnswerJob, AnswerPayload, answer_cache_key, dedup_key, new_job_key
from assistant.tasks.queue import AnswerQueue
from assistant.tasks.store import INLINE, LATE, JobStore


@dataclass
class TurnResult:
    status: Literal["answered", "cached", "pending"]
    answer: CitedAnswer | None = None
    key: str | None = None


class KnowledgeTurns:
    reply_margin_s = 0.08   # what the reply still needs after the wait: the action's response, Rasa's reply

    def __init__(self, answerer: KnowledgeAnswerer, queue: AnswerQueue | None, store: JobStore, budget_s: float,
                 kb_version: str, generator_fingerprint: str, cache_ttl_s: float = 86400, job_ttl_s: float = 300.0):
        """``queue=None``: generate in the turn itself (fast generators), still through the cache."""
        self.answerer = answerer
        self.queue = queue
        self.store = store
        self.budget_s = budget_s
        self.kb_version = kb_version
        self.generator_fingerprint = generator_fingerprint
        self.cache_ttl_s = cache_ttl_s
        self.job_ttl_s = job_ttl_s

    def answer(self, sender_id: str, question: str, lang: str, message_id: str | None = None,
               received_at: float | None = None, budget_s: float | None = None,
               reply_to: dict | None = None) -> TurnResult:
        """Blocking (Redis, models): call it from a thread. The budget (``budget_s``, a channel's
        own, else the configured one) runs from ``received_at`` (when Rasa got the message; default
        now); ``reply_to`` goes with the job, for a late answer. Raises ``QueueUnavailable`` or the
        job store's connection errors when the broker is down."""
        now = time.time()
        received_at = min(received_at or now, now)
        deadline = received_at + (budget_s or self.budget_s) - self.reply_margin_s
        state = self.answerer.prepare(question, lang)
        if "answer" in state:
            return TurnResult("answered", state["answer"])
        lang = state.get("lang") or lang or "en"
        cache_key = answer_cache_key(state["question"], lang, self.kb_version, self.generator_fingerprint)
        cached = self.store.cache_get(cache_key)
        if cached is not None:
            return TurnResult("cached", AnswerPayload.from_dict(cached).answer)
        if self.queue is None:
            answer = generate_answer(self.answerer.generator, state["question"], lang, state["sources"], state["best"])
            self.store.cache_set(cache_key, AnswerPayload("", lang, answer).to_dict(), self.cache_ttl_s)
            return TurnResult("answered", answer)
        fresh = new_job_key()
        key = self.store.reserve(dedup_key(sender_id, state["question"], message_id), fresh, self.job_ttl_s)
        if key == fresh:
            job = AnswerJob(key, sender_id, state["question"], lang, state["sources"], state["best"],
                            deadline=deadline, cache_key=cache_key, created=now, reply_to=reply_to or {})
            self.queue.submit(job)
        else:
            self.store.incr("duplicate_turns")
        payload = self.store.wait_result(key, deadline - time.time())
        me = f"{INLINE}:{fresh}"   # unique per turn: of two duplicate turns waiting, one wins
        if payload is not None and self.store.claim(key, me, self.job_ttl_s) == me:
            return TurnResult("answered", AnswerPayload.from_dict(payload).answer, key)
        if payload is None:
            self.store.claim(key, LATE, self.job_ttl_s)
        return TurnResult("pending", None, key)
