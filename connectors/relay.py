"""What every platform connector shares: a platform message becomes one Rasa turn (exactly once,
however often the platform resends it), and its reply goes back within the platform's deadline or,
after it, through the platform's API.

* :meth:`Relay.first_delivery` remembers a platform's message id (Slack ``event_id``, WeChat
  ``MsgId``) in the job store: Redis when configured, so every replica sees it.
* :meth:`Relay.turn` sends the message to Rasa's REST channel with the metadata the action server
  needs: ``message_id`` (a resent message joins the same answer job), ``reply_to`` (where a late
  answer from a worker goes: see :mod:`connectors.outbox`) and the channel's ``answer_budget_s``.
* :class:`DeadlineReplies` is for platforms that take the reply in the HTTP response (WeChat): the
  turn runs in a thread; the request waits until the deadline; whoever comes first claims the reply,
  the request (a passive reply) or the thread (a push through the API), never both.
"""

from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Callable

from assistant.lang import detect_language as language
from assistant.tasks.store import LATE, JobStore, settle_owner
from connectors.rest import BotMessage, RasaRestClient, RasaUnavailable, bot_message

log = logging.getLogger(__name__)

UNAVAILABLE = {"zh": "抱歉，客服系统暂时无法回复，请稍后再试。",
               "en": "Sorry, the assistant cannot answer right now; please try again in a moment."}
EMPTY = {"zh": "请直接输入您的问题，例如：怎么申请退款？", "en": "Please type your question, e.g. how do I get a refund?"}
PUSH = "push"


class BadRequest(ValueError):
    """A request that is not what the platform sends (HTTP 400)."""


class Forbidden(PermissionError):
    """A request whose signature does not check out (HTTP 403); nothing of it is processed."""


@dataclass
class Inbound:
    platform: str                 # slack | wechat | wecom
    message_id: str               # the platform's id of this message (resent copies share it)
    sender: str                   # the Rasa conversation id
    text: str
    reply_to: dict = field(default_factory=dict)   # the outbox address of late answers
    answer_budget_s: float | None = None           # how long a knowledge turn may wait for its answer


class Relay:
    def __init__(self, rasa: RasaRestClient, store: JobStore, dedup_ttl_s: float = 86400, max_chars: int = 2000):
        self.rasa = rasa
        self.store = store
        self.dedup_ttl_s = dedup_ttl_s
        self.max_chars = max_chars

    def first_delivery(self, platform: str, message_id: str) -> bool:
        """True the first time this platform message id is seen (within the TTL)."""
        marker = uuid.uuid4().hex
        first = self.store.reserve(f"{platform}:{message_id}", marker, self.dedup_ttl_s) == marker
        if not first:
            self.store.incr(f"{platform}_duplicates")
        return first

    def turn(self, m: Inbound) -> list[BotMessage]:
        """Rasa's reply to one message; a clear apology instead when Rasa cannot be reached."""
        text = (m.text or "").strip()
        if not text:
            return [BotMessage(EMPTY[language(text)])]
        if len(text) > self.max_chars:
            log.info("%s message %s cut from %d to %d characters", m.platform, m.message_id, len(text), self.max_chars)
            text = text[: self.max_chars]
        metadata = {"message_id": f"{m.platform}:{m.message_id}", "channel": m.platform, "reply_to": m.reply_to}
        if m.answer_budget_s:
            metadata["answer_budget_s"] = m.answer_budget_s
        try:
            return self.rasa.send(m.sender, text, metadata)
        except RasaUnavailable as exc:
            log.error("%s message %s not answered: %s", m.platform, m.message_id, exc)
            return [BotMessage(UNAVAILABLE[language(text)])]


class DeadlineReplies:
    """One reply per platform message: in the HTTP response when it is ready by the deadline,
    otherwise through ``push(reply_to, messages)`` once it is."""

    retry_pauses_s = (1.0, 2.0, 4.0)

    def __init__(self, relay: Relay, push: Callable[[dict, list[dict]], None], grace_s: float = 0.3,
                 workers: int = 32, ttl_s: float = 3600):
        self.relay = relay
        self.store = relay.store
        self.push = push
        self.grace_s = grace_s
        self.ttl_s = ttl_s
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deadline-reply")

    def answer(self, m: Inbound, deadline: float) -> list[BotMessage] | None:
        """The messages to reply with now, or None: the reply is (or will be) pushed, or another
        request for the same message already replied."""
        fresh = uuid.uuid4().hex
        key = self.store.reserve(f"{m.platform}-reply:{m.message_id}", fresh, self.ttl_s)
        if key == fresh:
            self._pool.submit(self._work, key, m, deadline)
        else:
            self.store.incr(f"{m.platform}_duplicates")
        payload = self.store.wait_result(key, deadline - time.time())
        me = f"passive:{fresh}"
        if payload is not None and self.store.claim(key, me, self.ttl_s) == me:
            return [bot_message(d) for d in payload["messages"]]
        if payload is None:
            self.store.claim(key, LATE, self.ttl_s)
        return None

    def push_later(self, m: Inbound, messages: list[dict]) -> None:
        """Send ``messages`` through the platform's API from the pool, never on a request's path."""
        self._pool.submit(self._push_logged, m, messages)

    def _work(self, key: str, m: Inbound, deadline: float) -> None:
        try:
            messages = [asdict(x) for x in self.relay.turn(m)]
            self.store.put_result(key, {"messages": messages}, self.ttl_s)
            who = settle_owner(self.store, key, PUSH, deadline + self.grace_s, self.ttl_s)
        except Exception:  # noqa: BLE001 - a thread of its own: the log is where this goes
            log.exception("%s message %s: no reply was worked out", m.platform, m.message_id)
            return
        if not who.startswith("passive"):
            self._push_logged(m, messages)

    def _push_logged(self, m: Inbound, messages: list[dict]) -> None:
        try:
            self._push_with_retries(m, messages)
        except Exception:  # noqa: BLE001 - a thread of its own: the log is where this goes
            log.exception("%s message %s: the reply could not be sent", m.platform, m.message_id)

    def _push_with_retries(self, m: Inbound, messages: list[dict]) -> None:
        """The platform's API may refuse for a moment: try again after 1, 2, 4 s, then give up loudly."""
        for attempt, pause in enumerate(self.retry_pauses_s + (None,)):
            try:
                self.push(m.reply_to, messages)
                self.store.incr(f"{m.platform}_pushed")
                return
            except Exception as exc:  # noqa: BLE001 - any API error
                if pause is None:
                    raise
                log.warning("%s message %s: push failed (%s: %s); retry %d in %.0f s", m.platform, m.message_id,
                            type(exc).__name__, exc, attempt + 1, pause)
                time.sleep(pause)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
