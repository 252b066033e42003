"""The work of one answer job, independent of what runs it (a Celery worker or a thread):
generate (once: a redelivered job reuses the stored result), cache, then deliver unless the
conversation's turn already answered inline.

Who delivers is settled by one claim per job, first writer wins: the turn claims ``inline:<turn>`` when
the result arrived within its budget, or ``late`` when it gave up waiting; the runner delivers on
``late``, skips on ``inline``, and after the turn's deadline (plus a grace period) claims
``worker`` itself, so an answer is never lost when the turn's process dies.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from assistant.knowledge.answer import CitedAnswer, generate_answer
from assistant.knowledge.generate import Generator
from assistant.tasks.jobs import AnswerJob, AnswerPayload
from assistant.tasks.store import INLINE, WORKER, JobStore, settle_owner

log = logging.getLogger(__name__)


class AnswerRunner:
    def __init__(self, generator: Generator, store: JobStore, deliver: Callable[[AnswerJob, dict], object],
                 cache_ttl_s: float = 86400, result_ttl_s: float = 3600, grace_s: float = 0.5,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep):
        self.generator = generator
        self.store = store
        self.deliver = deliver
        self.cache_ttl_s = cache_ttl_s
        self.result_ttl_s = result_ttl_s
        self.grace_s = grace_s
        self.clock = clock
        self.sleep = sleep

    def result(self, job: AnswerJob) -> dict:
        payload = self.store.get_result(job.key)
        if payload is not None:
            self.store.incr("results_reused")
            return payload
        answer = generate_answer(self.generator, job.question, job.lang, job.sources, job.best)
        payload = AnswerPayload(job.key, job.lang, answer).to_dict()
        if job.cache_key:
            self.store.cache_set(job.cache_key, payload, self.cache_ttl_s)
        self.store.put_result(job.key, payload, self.result_ttl_s)
        self.store.incr("generated")
        return payload

    def owner(self, job: AnswerJob) -> str:
        """Wait until the turn has decided (or its deadline has passed), then return who delivers."""
        return settle_owner(self.store, job.key, WORKER, job.deadline + self.grace_s, self.result_ttl_s,
                            self.clock, self.sleep)

    def run(self, job: AnswerJob) -> dict:
        payload = self.result(job)
        if self.owner(job).startswith(INLINE):
            log.info("job %s answered inline", job.key)
            return payload
        self.deliver(job, payload)
        self.store.incr("delivered")
        self.store.record("enqueue_to_delivery_s", self.clock() - job.created)
        log.info("job %s delivered to %s", job.key, job.sender_id)
        return payload

    def give_up(self, job: AnswerJob, exc: BaseException, retries: int = 0) -> None:
        """Dead-letter the job and tell the user a person can follow up (best effort)."""
        entry = {"key": job.key, "sender_id": job.sender_id, "question": job.question[:500],
                 "error": f"{type(exc).__name__}: {exc}"[:1000], "retries": retries, "at": self.clock()}
        log.error("job %s dead-lettered: %s", job.key, entry["error"])
        try:
            self.store.dead_letter(entry)
            failed = AnswerPayload(job.key, job.lang, CitedAnswer("refused", reason="generation failed")).to_dict()
            self.deliver(job, failed)
        except Exception:  # noqa: BLE001 - already failing; the log has the entry
            log.exception("could not record or report dead-lettered job %s", job.key)
