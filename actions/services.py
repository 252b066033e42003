"""What the actions depend on (business data, the knowledge base), built once per process from the
settings, lazily: importing the actions package does no work. ``assistant serve-actions`` warms it
before the server accepts requests. Tests may call :func:`set_services` to swap the container."""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from assistant.settings import Settings, get_settings

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Services:
    settings: Settings
    _repository: Any = field(default=None, repr=False)
    _answerer: Any = field(default=None, repr=False)
    _knowledge: Any = field(default=None, repr=False)

    @property
    def repository(self):
        if self._repository is None:
            from assistant.db.repository import Repository

            repo = Repository.from_url(self.settings.effective_database_url, self.settings.db_timeout_s)
            repo.create_schema()
            self._repository = repo
        return self._repository

    @property
    def answerer(self):
        """Retrieval and the answer chain; without a generator when generation runs in a queue."""
        if self._answerer is None:
            from assistant.knowledge.answer import make_answerer
            from assistant.knowledge.store import make_embeddings
            from assistant.tasks.wiring import generation_runs_in_queue, query_embeddings

            embeddings = query_embeddings(self.settings, make_embeddings(self.settings))
            self._answerer = make_answerer(self.settings, embeddings,
                                           with_generator=not generation_runs_in_queue(self.settings))
        return self._answerer

    @property
    def knowledge(self):
        """Knowledge turns: generation in this process, in threads, or in Celery workers (see
        :func:`assistant.tasks.wiring.knowledge_turns`)."""
        if self._knowledge is None:
            from assistant.tasks.wiring import knowledge_turns

            self._knowledge = knowledge_turns(self.settings, self.answerer)
        return self._knowledge

    def is_outage(self, exc: BaseException) -> bool:
        from assistant.tasks.wiring import is_outage

        return is_outage(exc)

    def warm(self) -> None:
        _ = self.repository
        _ = self.knowledge


_services: Services | None = None


def get_services() -> Services:
    global _services
    if _services is None:
        _services = Services(get_settings())
    return _services


def set_services(services: Services | None) -> None:
    global _services
    _services = services


async def run_blocking(fn: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
    """Run blocking I/O (database, model) off the event loop, with a deadline."""
    timeout = timeout if timeout is not None else get_services().settings.db_timeout_s * 2
    return await asyncio.wait_for(asyncio.to_thread(functools.partial(fn, *args)), timeout=timeout)
