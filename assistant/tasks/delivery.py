"""Delivery of a late answer into its Rasa conversation through Rasa's HTTP API.

``POST /conversations/{id}/trigger_intent`` with the external intent ``EXTERNAL_knowledge_answer``
and the answer as entities: Rasa records the turn in the tracker and runs
``action_deliver_knowledge_answer``, which utters the answer unless the tracker already holds an
answer with the same key (so a redelivered task never answers twice).
"""

from __future__ import annotations

from urllib.parse import quote

import httpx

from assistant.tasks.jobs import ANSWER_ENTITY, EXTERNAL_INTENT, KEY_ENTITY, AnswerJob


class DeliveryError(RuntimeError):
    pass


class RasaDelivery:
    def __init__(self, rasa_url: str, token: str | None = None, timeout_s: float = 10.0,
                 client: httpx.Client | None = None):
        self.rasa_url = rasa_url.rstrip("/")
        self.params = {"token": token} if token else {}
        self._client = client or httpx.Client(timeout=timeout_s)

    def __call__(self, job: AnswerJob, payload: dict) -> list[dict]:
        """Deliver; returns the messages Rasa produced (empty when it was already delivered)."""
        url = f"{self.rasa_url}/conversations/{quote(job.sender_id, safe='')}/trigger_intent"
        body = {"name": EXTERNAL_INTENT, "entities": {KEY_ENTITY: job.key, ANSWER_ENTITY: payload}}
        try:
            r = self._client.post(url, json=body, params=self.params)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"Rasa at {self.rasa_url} is not reachable ({type(exc).__name__}: {exc}); "
                                "the task will be retried") from exc
        if r.status_code != 200:
            raise DeliveryError(f"Rasa refused the answer for conversation {job.sender_id!r}: "
                                f"HTTP {r.status_code} {r.text[:300]}")
        return r.json().get("messages", [])

    def close(self) -> None:
        self._client.close()


class ForwardingDelivery:
    """Delivery into Rasa, then Rasa's messages on to the platform the question came from
    (``job.reply_to``; see ``connectors.outbox``). The messages are kept in the job store until the
    platform has taken them, so a retried task sends them if the platform was down the first time,
    and not again once it has them."""

    def __init__(self, rasa: RasaDelivery, outbox, store, ttl_s: float = 3600):
        self.rasa = rasa
        self.outbox = outbox
        self.store = store
        self.ttl_s = ttl_s

    def __call__(self, job: AnswerJob, payload: dict) -> list[dict]:
        messages = self.rasa(job, payload)
        if not job.reply_to:
            return messages
        box = f"{job.key}:outbox"
        if messages:
            self.store.put_result(box, {"messages": messages}, self.ttl_s)
        else:     # already in the conversation: forwarded, or still to forward after a failure
            messages = (self.store.get_result(box) or {}).get("messages", [])
        if messages and self.store.get_claim(box) is None:
            try:
                self.outbox.send(job.reply_to, messages)
            except Exception as exc:  # noqa: BLE001 - any platform error: the task is retried
                raise DeliveryError(f"{job.reply_to.get('channel')} did not take the answer for "
                                    f"{job.sender_id!r} ({type(exc).__name__}: {exc}); the task will be retried") from exc
            self.store.claim(box, "sent", self.ttl_s)
        return messages
