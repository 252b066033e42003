"""A small client for Rasa's REST channel (``POST /webhooks/rest/webhook``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

import httpx


class RasaUnavailable(RuntimeError):
    pass


@dataclass
class BotMessage:
    text: str = ""
    buttons: list = field(default_factory=list)
    custom: dict | None = None


def bot_message(d: dict) -> BotMessage:
    """One message of Rasa's REST reply (or of a trigger_intent response)."""
    return BotMessage(d.get("text") or "", d.get("buttons") or [], d.get("custom"))


class RasaRestClient:
    def __init__(self, base_url: str, timeout_s: float = 30.0, token: str | None = None):
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(timeout=timeout_s, params={"token": token} if token else None)

    def send(self, sender: str, message: str, metadata: dict | None = None) -> list[BotMessage]:
        """One user turn; ``metadata.message_id`` (a platform's message id) makes a resent message
        one job for the answer workers."""
        body = {"sender": sender, "message": message, **({"metadata": metadata} if metadata else {})}
        try:
            r = self._client.post(f"{self.base_url}/webhooks/rest/webhook", json=body)
        except httpx.HTTPError as exc:
            raise RasaUnavailable(f"Rasa server at {self.base_url} unreachable ({exc}); is `assistant up` running?") from exc
        if r.status_code != 200:
            raise RasaUnavailable(f"Rasa answered HTTP {r.status_code}: {r.text[:200]}")
        return [bot_message(m) for m in r.json()]

    def tracker(self, sender: str) -> dict:
        r = self._client.get(f"{self.base_url}/conversations/{quote(sender, safe='')}/tracker")
        r.raise_for_status()
        return r.json()

    def bot_messages_since(self, sender: str, since: float) -> list[tuple[float, BotMessage]]:
        """Bot messages recorded after ``since`` (epoch seconds): how a REST client sees late answers."""
        out = []
        for e in self.tracker(sender).get("events", []):
            if e.get("event") == "bot" and e.get("timestamp", 0) > since:
                data = e.get("data") or {}
                out.append((e["timestamp"], BotMessage(e.get("text") or "", data.get("buttons") or [],
                                                       data.get("custom"))))
        return out

    def close(self) -> None:
        self._client.close()
