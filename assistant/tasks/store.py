"""The shared state of answer jobs: reservations (one job per duplicate), results, the claim that
decides who delivers an answer, the answer cache, counters and the dead-letter log.

:class:`RedisJobStore` is the real one (every process sees it); :class:`MemoryJobStore` serves the
embedded mode, where jobs run in threads of the action server.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict, defaultdict
from typing import Protocol

PREFIX = "assistant:"
STATS_KEY = f"{PREFIX}stats"    # counters of every cache and job, read by `assistant jobs`
INLINE, LATE, WORKER = "inline", "late", "worker"


class JobStore(Protocol):
    def reserve(self, dedup: str, key: str, ttl_s: float) -> str: ...
    def put_result(self, key: str, payload: dict, ttl_s: float) -> None: ...
    def get_result(self, key: str) -> dict | None: ...
    def wait_result(self, key: str, timeout_s: float) -> dict | None: ...
    def claim(self, key: str, who: str, ttl_s: float) -> str: ...
    def get_claim(self, key: str) -> str | None: ...
    def cache_get(self, key: str) -> dict | None: ...
    def cache_set(self, key: str, payload: dict, ttl_s: float) -> None: ...
    def incr(self, counter: str, n: int = 1) -> None: ...
    def stats(self) -> dict[str, int]: ...
    def dead_letter(self, entry: dict) -> None: ...
    def dead_letters(self) -> list[dict]: ...
    def record(self, series: str, value: float, keep: int = 2000) -> None: ...
    def samples(self, series: str) -> list[float]: ...


def settle_owner(store: JobStore, key: str, fallback: str, deadline: float, ttl_s: float,
                 clock=time.time, sleep=time.sleep) -> str:
    """Who answers ``key``: whatever a waiting turn claimed, or, once ``deadline`` has passed with no
    claim, ``fallback`` (claimed now; a claim that gets in first still wins)."""
    while (who := store.get_claim(key)) is None:
        remaining = deadline - clock()
        if remaining <= 0:
            return store.claim(key, fallback, ttl_s)
        sleep(min(0.05, remaining))
    return who


class RedisJobStore:
    def __init__(self, client):
        self.r = client

    @classmethod
    def from_url(cls, url: str, timeout_s: float = 2.0) -> "RedisJobStore":
        import redis

        return cls(redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                        health_check_interval=15, decode_responses=True))

    def reserve(self, dedup: str, key: str, ttl_s: float) -> str:
        k = f"{PREFIX}pending:{dedup}"
        if self.r.set(k, key, nx=True, ex=max(1, int(ttl_s))):
            return key
        return self.r.get(k) or key

    def put_result(self, key: str, payload: dict, ttl_s: float) -> None:
        ttl = max(60, int(ttl_s))
        pipe = self.r.pipeline(transaction=True)
        pipe.set(f"{PREFIX}result:{key}", json.dumps(payload, ensure_ascii=False), ex=ttl)
        pipe.rpush(f"{PREFIX}ready:{key}", 1)
        pipe.expire(f"{PREFIX}ready:{key}", ttl)
        pipe.execute()

    def get_result(self, key: str) -> dict | None:
        raw = self.r.get(f"{PREFIX}result:{key}")
        return json.loads(raw) if raw else None

    def wait_result(self, key: str, timeout_s: float) -> dict | None:
        # BLPOP wakes as soon as the worker stores the result (then the token goes back for other
        # waiters); it blocks at most 1 s per call, below the client's socket timeout
        end = time.monotonic() + timeout_s
        while (found := self.get_result(key)) is None and (remaining := end - time.monotonic()) > 0:
            if self.r.blpop([f"{PREFIX}ready:{key}"], timeout=max(0.01, min(1.0, remaining))):
                self.r.rpush(f"{PREFIX}ready:{key}", 1)
        return found

    def claim(self, key: str, who: str, ttl_s: float) -> str:
        k = f"{PREFIX}claim:{key}"
        if self.r.set(k, who, nx=True, ex=max(60, int(ttl_s))):
            return who
        return self.r.get(k) or who

    def get_claim(self, key: str) -> str | None:
        return self.r.get(f"{PREFIX}claim:{key}")

    def cache_get(self, key: str) -> dict | None:
        raw = self.r.get(f"{PREFIX}cache:answer:{key}")
        self.incr("answer_cache_hits" if raw else "answer_cache_misses")
        return json.loads(raw) if raw else None

    def cache_set(self, key: str, payload: dict, ttl_s: float) -> None:
        if ttl_s > 0:
            self.r.set(f"{PREFIX}cache:answer:{key}", json.dumps(payload, ensure_ascii=False), ex=int(ttl_s))

    def incr(self, counter: str, n: int = 1) -> None:
        self.r.hincrby(STATS_KEY, counter, n)

    def stats(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.r.hgetall(STATS_KEY).items()}

    def dead_letter(self, entry: dict) -> None:
        self.r.lpush(f"{PREFIX}dead_letters", json.dumps(entry, ensure_ascii=False))
        self.r.ltrim(f"{PREFIX}dead_letters", 0, 9999)
        self.incr("dead_letters")

    def dead_letters(self) -> list[dict]:
        return [json.loads(x) for x in self.r.lrange(f"{PREFIX}dead_letters", 0, -1)]

    def record(self, series: str, value: float, keep: int = 2000) -> None:
        pipe = self.r.pipeline(transaction=False)
        pipe.lpush(f"{PREFIX}samples:{series}", value)
        pipe.ltrim(f"{PREFIX}samples:{series}", 0, keep - 1)
        pipe.execute()

    def samples(self, series: str) -> list[float]:
        return [float(x) for x in self.r.lrange(f"{PREFIX}samples:{series}", 0, -1)]


class MemoryJobStore:
    """The same semantics in one process (expiry is checked on read)."""

    def __init__(self, max_cache: int = 2048):
        self._cond = threading.Condition()
        self._values: dict[str, tuple[object, float]] = {}
        self._cache: OrderedDict[str, tuple[dict, float]] = OrderedDict()
        self._max_cache = max_cache
        self._stats: dict[str, int] = defaultdict(int)
        self._dead: list[dict] = []
        self._samples: dict[str, list[float]] = {}

    def _get(self, k: str):
        v = self._values.get(k)
        if v is None or v[1] < time.monotonic():
            self._values.pop(k, None)
            return None
        return v[0]

    def _set_nx(self, k: str, value, ttl_s: float):
        with self._cond:
            current = self._get(k)
            if current is None:
                self._values[k] = (value, time.monotonic() + ttl_s)
                self._cond.notify_all()
                return value
            return current

    def reserve(self, dedup: str, key: str, ttl_s: float) -> str:
        return self._set_nx(f"pending:{dedup}", key, ttl_s)

    def put_result(self, key: str, payload: dict, ttl_s: float) -> None:
        with self._cond:
            self._values[f"result:{key}"] = (payload, time.monotonic() + max(60, ttl_s))
            self._cond.notify_all()

    def get_result(self, key: str) -> dict | None:
        with self._cond:
            return self._get(f"result:{key}")

    def wait_result(self, key: str, timeout_s: float) -> dict | None:
        end = time.monotonic() + max(0.0, timeout_s)
        with self._cond:
            while (found := self._get(f"result:{key}")) is None and time.monotonic() < end:
                self._cond.wait(end - time.monotonic())
            return found

    def claim(self, key: str, who: str, ttl_s: float) -> str:
        return self._set_nx(f"claim:{key}", who, max(60, ttl_s))

    def get_claim(self, key: str) -> str | None:
        with self._cond:
            return self._get(f"claim:{key}")

    def cache_get(self, key: str) -> dict | None:
        with self._cond:
            hit = self._cache.get(key)
            if hit and hit[1] < time.monotonic():
                self._cache.pop(key)
                hit = None
            self._stats["answer_cache_hits" if hit else "answer_cache_misses"] += 1
            if hit:
                self._cache.move_to_end(key)
            return hit[0] if hit else None

    def cache_set(self, key: str, payload: dict, ttl_s: float) -> None:
        if ttl_s <= 0:
            return
        with self._cond:
            self._cache[key] = (payload, time.monotonic() + ttl_s)
            while len(self._cache) > self._max_cache:
                self._cache.popitem(last=False)

    def incr(self, counter: str, n: int = 1) -> None:
        with self._cond:
            self._stats[counter] += n

    def stats(self) -> dict[str, int]:
        with self._cond:
            return dict(self._stats)

    def dead_letter(self, entry: dict) -> None:
        with self._cond:
            self._dead.append(entry)
            self._stats["dead_letters"] += 1

    def dead_letters(self) -> list[dict]:
        with self._cond:
            return list(self._dead)

    def record(self, series: str, value: float, keep: int = 2000) -> None:
        with self._cond:
            values = self._samples.setdefault(series, [])
            values.insert(0, value)
            del values[keep:]

    def samples(self, series: str) -> list[float]:
        with self._cond:
            return list(self._samples.get(series, []))
