"""The Celery app: Redis broker and result backend, late acknowledgement (a task taken by a worker
that dies goes back to the queue after the visibility timeout), time limits, retries with backoff,
and a dead-letter log. The app is built from the settings by :func:`create_celery`; nothing happens
at import time. ``assistant serve-worker`` runs a worker."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from assistant.settings import Settings

log = logging.getLogger(__name__)
TASK_NAME = "assistant.generate_answer"
QUEUE = "answers"


def create_celery(settings: Settings):
    from celery import Celery

    url = settings.effective_broker_url
    if not url:
        raise ValueError("Celery needs a broker: set ASSISTANT_BROKER_URL or ASSISTANT_REDIS_URL (redis://host:6379/0)")
    app = Celery("assistant", broker=url, backend=url, set_as_current=False)
    vt = settings.worker_visibility_timeout_s
    transport = {"visibility_timeout": vt, "socket_timeout": 5, "socket_connect_timeout": 2,
                 # sweep for tasks of dead workers often enough to honour the visibility timeout
                 "unacked_restore_interval": max(1, min(10, vt // 2)), "unacked_restore_throttle": 1}
    app.conf.update(
        task_default_queue=QUEUE,
        task_serializer="json", result_serializer="json", accept_content=["json"],
        task_acks_late=True,                # ack after the work: a killed worker's task is redelivered
        task_reject_on_worker_lost=True,    # a killed pool process puts its task back at once
        worker_prefetch_multiplier=1,       # a busy worker does not hold tasks others could run
        task_time_limit=settings.worker_time_limit_s,
        task_soft_time_limit=max(1.0, settings.worker_time_limit_s - 5),
        broker_transport_options=transport,
        result_backend_transport_options=transport,
        result_expires=3600,
        task_publish_retry=False,           # a dead broker is an error for the turn, not a hang
        broker_connection_timeout=2,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    context = WorkerContext(settings)
    app.task(name=TASK_NAME, bind=True, max_retries=settings.worker_max_retries)(_task_body(context))
    app.answer_context = context
    return app


class WorkerContext:
    """What a worker process builds once: the generator (a model, maybe), the job store, the delivery."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._runner = None
        self._lock = threading.Lock()

    @property
    def runner(self):
        with self._lock:
            if self._runner is None:
                from assistant.tasks.wiring import answer_runner, job_store

                self._runner = answer_runner(self.settings, job_store(self.settings))
            return self._runner


def _task_body(context: WorkerContext):
    def generate_answer(task, job_dict: dict) -> dict:
        from celery.exceptions import SoftTimeLimitExceeded

        from assistant.tasks.jobs import AnswerJob

        job = AnswerJob.from_dict(job_dict)
        try:
            return context.runner.run(job)
        except SoftTimeLimitExceeded as exc:
            context.runner.give_up(job, exc, task.request.retries)
            return {}
        except Exception as exc:  # noqa: BLE001 - every failure is retried, then dead-lettered
            if task.request.retries >= task.max_retries:
                context.runner.give_up(job, exc, task.request.retries)
                return {}
            log.warning("job %s failed (%s: %s); retry %d/%d", job.key, type(exc).__name__, exc,
                        task.request.retries + 1, task.max_retries)
            raise task.retry(exc=exc, countdown=min(30, 2 ** task.request.retries))

    return generate_answer


def ready_file(settings: Settings, name: str = "answers") -> Path:
    return settings.var_dir / "run" / f"worker-{name}.ready"


def serve_worker(settings: Settings, concurrency: int | None = None, name: str = "answers") -> None:
    """Run a worker; its pool processes load the generator before the ready file appears."""
    from celery.signals import worker_process_init, worker_shutdown

    app = create_celery(settings)
    flag = ready_file(settings, name)
    flag.parent.mkdir(parents=True, exist_ok=True)
    flag.unlink(missing_ok=True)

    @worker_process_init.connect(weak=False)
    def _warm(**_):
        _ = app.answer_context.runner   # load the generator before taking tasks
        flag.write_text(str(os.getpid()))

    @worker_shutdown.connect(weak=False)
    def _bye(**_):
        flag.unlink(missing_ok=True)

    argv = ["worker", "--loglevel=INFO", "-Q", QUEUE, "-P", "prefork",
            f"--concurrency={concurrency or settings.worker_concurrency}",
            "-n", f"{name}-{os.getpid()}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    app.worker_main(argv)
