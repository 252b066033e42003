"""Where answer jobs run: :class:`CeleryQueue` (Redis broker, separate worker processes) or
:class:`ThreadQueue` (threads of the calling process: the embedded default without Redis)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from assistant.tasks.jobs import AnswerJob

log = logging.getLogger(__name__)


class QueueUnavailable(RuntimeError):
    pass


class AnswerQueue(Protocol):
    def submit(self, job: AnswerJob) -> None: ...


class CeleryQueue:
    def __init__(self, app):
        self.app = app

    def submit(self, job: AnswerJob) -> None:
        from assistant.tasks.celery_app import TASK_NAME

        try:
            # the job key is the task id: a retried publish of the same job is one task for the worker
            self.app.send_task(TASK_NAME, args=[job.to_dict()], task_id=job.key)
        except Exception as exc:  # kombu raises OperationalError and friends; all mean the same here
            raise QueueUnavailable(f"the task broker is not reachable ({type(exc).__name__}: {exc}); "
                                   "is Redis running at ASSISTANT_BROKER_URL / ASSISTANT_REDIS_URL?") from exc


class ThreadQueue:
    """Runs jobs in this process. What it loses against Celery: jobs die with the process, and
    generation competes with the conversation for the same CPU."""

    def __init__(self, runner, workers: int = 1):
        self.runner = runner
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="answer-job")

    def submit(self, job: AnswerJob) -> None:
        self._pool.submit(self._safe_run, job)

    def _safe_run(self, job: AnswerJob) -> None:
        try:
            self.runner.run(job)
        except Exception as exc:  # noqa: BLE001 - a thread has nobody to raise to
            self.runner.give_up(job, exc)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
