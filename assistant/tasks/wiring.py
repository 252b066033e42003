"""How the action server answers knowledge questions under the current settings:

===================  ==============================================================================
generation_mode      where generation runs
===================  ==============================================================================
``inline``           in the turn itself (``auto`` picks this for the extractive generator: it
                     takes milliseconds)
``queue``            in a job: Celery workers when a broker is configured (``ASSISTANT_BROKER_URL``
                     or ``ASSISTANT_REDIS_URL``), else threads of the action server (``auto`` picks
                     this for every LLM generator)
===================  ==============================================================================
"""

from __future__ import annotations

import json

from assistant.settings import Settings


def generation_runs_in_queue(settings: Settings) -> bool:
    if settings.generation_mode == "auto":
        return settings.kb_generator != "extractive"
    return settings.generation_mode == "queue"


def uses_celery(settings: Settings) -> bool:
    return generation_runs_in_queue(settings) and bool(settings.effective_broker_url)


def kb_version(settings: Settings) -> str:
    """Changes whenever an ingest changes the knowledge base (part of the answer-cache key)."""
    from assistant.knowledge.retrieval import index_dir

    try:
        return json.loads((index_dir(settings) / "manifest.json").read_text())["digest"][:16]
    except (OSError, ValueError, KeyError):
        return "none"


def job_store(settings: Settings):
    from assistant.tasks.store import MemoryJobStore, RedisJobStore

    url = settings.effective_broker_url
    return RedisJobStore.from_url(url) if url else MemoryJobStore()


def query_embeddings(settings: Settings, embeddings):
    """The encoder's query embeddings behind a cache (Redis when a broker is set, else in-process)."""
    from assistant.knowledge.query_cache import CachedQueryEmbeddings, MemoryVectorCache, RedisVectorCache

    url = settings.effective_broker_url
    cache = RedisVectorCache(url) if url else MemoryVectorCache()
    namespace = f"{settings.encoder_model}|int8={settings.kb_encoder_int8}|{settings.query_prefix}"
    return CachedQueryEmbeddings(embeddings, cache, namespace)


def answer_runner(settings: Settings, store, embeddings=None, known=None):
    """What runs answer jobs (in a Celery worker or in the action server's threads): the configured
    generator, loaded now, and delivery into Rasa (and on to the platform, for Slack and WeChat).
    ``known``: the index's stored sentence vectors (loaded from the index here when not given)."""
    from assistant.generation.registry import make_generator
    from assistant.tasks.delivery import RasaDelivery
    from assistant.tasks.runner import AnswerRunner

    generator = make_generator(settings, embeddings, known if known is not None else known_sentences(settings))
    getattr(generator, "load", lambda: None)()
    deliver = RasaDelivery(settings.rasa_url, settings.rasa_api_token, settings.delivery_timeout_s)
    if settings.enabled_channels():   # late answers also go on to Slack / WeChat
        from assistant.tasks.delivery import ForwardingDelivery
        from connectors.outbox import make_outbox

        deliver = ForwardingDelivery(deliver, make_outbox(settings, store), store)
    return AnswerRunner(generator, store, deliver, cache_ttl_s=settings.answer_cache_ttl_s)


def known_sentences(settings: Settings):
    """The stored sentence vectors of the current index, or ``None`` before the first ingest (the
    generator then embeds every sentence itself)."""
    from assistant.knowledge.retrieval import DocStore, index_dir

    directory = index_dir(settings)
    if not (directory / "docs.jsonl").is_file():
        return None
    try:
        return DocStore.load(directory).known_sentences()
    except (OSError, ValueError, KeyError) as exc:   # a damaged index: answers still work, only slower
        import logging

        logging.getLogger(__name__).warning("stored sentence vectors unavailable (%s); run the ingest again", exc)
        return None


def knowledge_turns(settings: Settings, answerer):
    """The :class:`KnowledgeTurns` of the action server."""
    from assistant.generation.registry import fingerprint
    from assistant.tasks.turns import KnowledgeTurns

    store = job_store(settings)
    queue = None
    if uses_celery(settings):
        from assistant.tasks.celery_app import create_celery
        from assistant.tasks.queue import CeleryQueue

        queue = CeleryQueue(create_celery(settings))
    elif generation_runs_in_queue(settings):
        from assistant.tasks.queue import ThreadQueue

        runner = answer_runner(settings, store, answerer.searcher.store.embeddings,
                               answerer.searcher.docstore.known_sentences())
        queue = ThreadQueue(runner, settings.worker_concurrency)
    return KnowledgeTurns(answerer, queue, store, settings.answer_budget_s, kb_version(settings),
                          fingerprint(settings), cache_ttl_s=settings.answer_cache_ttl_s,
                          job_ttl_s=settings.worker_time_limit_s * (settings.worker_max_retries + 1))


def is_outage(exc: BaseException) -> bool:
    """A broker or job-store failure (as opposed to a bug): the user is told the service is down."""
    from assistant.tasks.queue import QueueUnavailable

    if isinstance(exc, QueueUnavailable):
        return True
    try:
        import redis

        return isinstance(exc, redis.RedisError)
    except ImportError:  # pragma: no cover
        return False
