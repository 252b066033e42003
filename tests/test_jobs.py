"""The answer-job machinery without the stack: both job stores (real Redis and in-memory) keep the
same promises, and the runner's claim protocol decides who delivers (the turn inline, or the
worker) so that every answer is delivered once."""

from __future__ import annotations

import threading
import time

import pytest
import redis as redis_lib

from assistant.knowledge.answer import CitedAnswer, KnowledgeAnswerer
from assistant.knowledge.generate import Draft, Source
from assistant.tasks.jobs import AnswerJob, AnswerPayload, answer_cache_key, dedup_key, normalise_question
from assistant.tasks.runner import AnswerRunner
from assistant.tasks.store import INLINE, LATE, WORKER, MemoryJobStore, RedisJobStore
from assistant.tasks.turns import KnowledgeTurns
from tests.conftest import REDIS_URL, services_or_skip

SOURCES = [Source(1, "Version history is kept for 30 days on Pro.", "Versions", "", "docs/en/v.md", "doc", "en")]


@pytest.fixture(params=["memory", "redis"])
def store(request):
    if request.param == "memory":
        return MemoryJobStore()
    url = REDIS_URL.rsplit("/", 1)[0] + "/9"
    client = redis_lib.Redis.from_url(url, socket_timeout=3, decode_responses=True)
    try:
        client.flushdb()
    except redis_lib.RedisError as exc:
        services_or_skip("Redis", exc)
    return RedisJobStore(client)


def job(deadline_in: float = 0.0, key: str = "k1") -> AnswerJob:
    now = time.time()
    return AnswerJob(key, "alice", "how long is history kept?", "en", SOURCES, 0.9, deadline=now + deadline_in,
                     created=now)


class Quote:
    name = "quote"

    def __init__(self, delay_s: float = 0.0):
        self.delay_s, self.calls = delay_s, 0

    def generate(self, question, lang, sources):
        self.calls += 1
        time.sleep(self.delay_s)
        return Draft(f"{sources[0].text}[1]", [1], True, generator=self.name)


def test_job_and_answer_survive_json():
    j = job()
    assert AnswerJob.from_dict(j.to_dict()) == j
    p = AnswerPayload("k", "zh", CitedAnswer("generated", "x[1]", [], 0.9, generator="g"))
    assert AnswerPayload.from_dict(p.to_dict()) == p


def test_question_normalisation_and_keys():
    assert normalise_question("  Which ＣＥＲＴＩＦＩＣＡＴＩＯＮＳ, do you have?? ") == "which certifications do you have"
    assert answer_cache_key("Refund?", "en", "v1", "g") == answer_cache_key("refund", "en", "v1", "g")
    assert answer_cache_key("refund", "en", "v1", "g") != answer_cache_key("refund", "en", "v2", "g")
    assert dedup_key("a", "q", "m1") == dedup_key("a", "other text", "m1") != dedup_key("b", "q", "m1")


def test_reserve_and_claim_first_writer_wins(store):
    assert store.reserve("d", "job-1", 60) == "job-1"
    assert store.reserve("d", "job-2", 60) == "job-1"
    assert store.claim("k", "inline:t1", 60) == "inline:t1"
    assert store.claim("k", WORKER, 60) == "inline:t1"
    assert store.get_claim("k") == "inline:t1" and store.get_claim("other") is None


def test_wait_result_wakes_when_the_result_is_stored(store):
    assert store.wait_result("k", 0.1) is None
    threading.Timer(0.3, store.put_result, args=("k", {"key": "k"}, 60)).start()
    t0 = time.monotonic()
    assert store.wait_result("k", 5.0) == {"key": "k"}
    assert time.monotonic() - t0 < 3.0  # woke on the result, not at the timeout


def test_cache_counts_hits_and_misses(store):
    assert store.cache_get("c") is None
    store.cache_set("c", {"a": 1}, 60)
    assert store.cache_get("c") == {"a": 1}
    stats = store.stats()
    assert stats["answer_cache_hits"] == 1 and stats["answer_cache_misses"] == 1
    store.cache_set("off", {"a": 1}, 0)
    assert store.cache_get("off") is None


def test_runner_delivers_when_the_turn_gave_up(store):
    delivered = []
    runner = AnswerRunner(Quote(), store, lambda j, p: delivered.append(p), grace_s=0.0)
    j = job(deadline_in=10)
    store.claim(j.key, LATE, 60)          # the turn stopped waiting
    runner.run(j)
    assert len(delivered) == 1 and delivered[0]["kind"] == "generated"
    assert store.samples("enqueue_to_delivery_s")


def test_runner_skips_delivery_when_the_turn_answered_inline(store):
    delivered = []
    runner = AnswerRunner(Quote(), store, lambda j, p: delivered.append(p), grace_s=0.2)
    j = job(deadline_in=2)
    threading.Timer(0.2, lambda: store.claim(j.key, f"{INLINE}:turn", 60)).start()
    runner.run(j)
    assert delivered == []


def test_runner_claims_after_the_deadline_when_the_turn_vanished(store):
    delivered = []
    runner = AnswerRunner(Quote(), store, lambda j, p: delivered.append(p), grace_s=0.1)
    j = job(deadline_in=0.2)
    runner.run(j)
    assert len(delivered) == 1 and store.get_claim(j.key) == WORKER


def test_a_redelivered_job_reuses_its_result(store):
    gen = Quote()
    delivered = []
    runner = AnswerRunner(gen, store, lambda j, p: delivered.append(p), grace_s=0.0)
    j = job(deadline_in=-1)
    runner.run(j)
    runner.run(j)  # the broker handed the same job out again (its worker died before the ack)
    assert gen.calls == 1 and store.stats()["results_reused"] == 1


def test_give_up_dead_letters_and_tells_the_user(store):
    delivered = []
    runner = AnswerRunner(Quote(), store, lambda j, p: delivered.append(p))
    runner.give_up(job(), RuntimeError("model crashed"), retries=3)
    assert store.dead_letters()[0]["error"] == "RuntimeError: model crashed"
    assert delivered[0]["kind"] == "refused" and delivered[0]["reason"] == "generation failed"


class Prepared(KnowledgeAnswerer):
    """Retrieval replaced by fixed sources: these tests are about what happens after it."""

    def __init__(self, generator=None):
        self.generator = generator

    def prepare(self, question, lang):
        return {"question": question, "lang": lang, "sources": SOURCES, "best": 0.9}


class InlineQueue:
    """Runs the job in a thread at once, like a worker that is idle."""

    def __init__(self, runner):
        self.runner = runner
        self.jobs = []

    def submit(self, j):
        self.jobs.append(j)
        threading.Thread(target=self.runner.run, args=(j,), daemon=True).start()


def test_turn_answers_inline_within_the_budget_and_the_worker_stays_quiet():
    store, delivered = MemoryJobStore(), []
    queue = InlineQueue(AnswerRunner(Quote(0.05), store, lambda j, p: delivered.append(p), grace_s=0.1))
    turns = KnowledgeTurns(Prepared(), queue, store, budget_s=1.0, kb_version="v", generator_fingerprint="g")
    result = turns.answer("alice", "how long is history kept?", "en")
    assert result.status == "answered" and result.answer.kind == "generated"
    time.sleep(1.5)
    assert delivered == []
    again = turns.answer("bob", "How long is history kept", "en")
    assert again.status == "cached" and len(queue.jobs) == 1


def test_turn_goes_pending_when_generation_is_slow_and_the_worker_delivers():
    store, delivered = MemoryJobStore(), []
    queue = InlineQueue(AnswerRunner(Quote(0.6), store, lambda j, p: delivered.append(p), grace_s=0.1))
    turns = KnowledgeTurns(Prepared(), queue, store, budget_s=0.3, kb_version="v", generator_fingerprint="g")
    t0 = time.monotonic()
    result = turns.answer("alice", "how long is history kept?", "en")
    assert result.status == "pending" and time.monotonic() - t0 < 0.55
    duplicate = turns.answer("alice", "how long is history kept?", "en")   # joins the job under way
    assert duplicate.status == "pending" and duplicate.key == result.key and len(queue.jobs) == 1
    time.sleep(1.0)
    assert len(delivered) == 1 and delivered[0]["key"] == result.key


def test_without_a_queue_the_turn_generates_itself():
    store = MemoryJobStore()
    turns = KnowledgeTurns(Prepared(Quote()), None, store, budget_s=1.0, kb_version="v", generator_fingerprint="g")
    assert turns.answer("alice", "q", "en").status == "answered"
    assert turns.answer("bob", "q", "en").status == "cached"


class CountingEmbeddings:
    def __init__(self):
        self.calls = 0

    def embed_queries(self, texts):
        self.calls += len(texts)
        return [[float(len(t)), 1.0, 0.5] for t in texts]


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_query_embeddings_are_cached_and_counted(backend):
    from assistant.knowledge.query_cache import CachedQueryEmbeddings, MemoryVectorCache, RedisVectorCache

    url = REDIS_URL.rsplit("/", 1)[0] + "/9"
    if backend == "redis":
        try:
            redis_lib.Redis.from_url(url, socket_timeout=3).flushdb()
        except redis_lib.RedisError as exc:
            services_or_skip("Redis", exc)
    cache = MemoryVectorCache() if backend == "memory" else RedisVectorCache(url)
    inner = CountingEmbeddings()
    emb = CachedQueryEmbeddings(inner, cache, "model-a")
    first = emb.embed_query("退款多久到账")
    assert emb.embed_queries(["退款多久到账", "how long"]) == [first, [8.0, 1.0, 0.5]]
    assert inner.calls == 2   # the repeated query was not embedded again
    assert CachedQueryEmbeddings(inner, cache, "model-b").embed_query("退款多久到账") == first and inner.calls == 3
    if backend == "redis":
        stats = RedisJobStore.from_url(url).stats()
        assert stats["embedding_cache_hits"] == 1 and stats["embedding_cache_misses"] == 3


def test_a_dead_redis_cache_only_costs_the_embedding():
    from assistant.knowledge.query_cache import CachedQueryEmbeddings, RedisVectorCache

    inner = CountingEmbeddings()
    emb = CachedQueryEmbeddings(inner, RedisVectorCache("redis://127.0.0.1:1/0", timeout_s=0.2), "m")
    assert emb.embed_query("hello") == [5.0, 1.0, 0.5] and inner.calls == 1
