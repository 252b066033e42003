"""A small client for Rasa's REST channel (``POST /webhooks/rest/webhook``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx


class RasaUnavailable(RuntimeError):
    pass


@dataclass
class BotMessage:
    text: str = ""
    buttons: list = field(default_factory=list)
    custom: dict | None = None


class RasaRestClient:
    def __init__(self, base_url: str, timeout_s: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(timeout=timeout_s)

    def send(self, sender: str, message: str) -> list[BotMessage]:
        try:
            r = self._client.post(f"{self.base_url}/webhooks/rest/webhook", json={"sender": sender, "message": message})
        except httpx.HTTPError as exc:
            raise RasaUnavailable(f"Rasa server at {self.base_url} unreachable ({exc}); is `assistant up` running?") from exc
        if r.status_code != 200:
            raise RasaUnavailable(f"Rasa answered HTTP {r.status_code}: {r.text[:200]}")
        return [BotMessage(m.get("text") or "", m.get("buttons") or [], m.get("custom")) for m in r.json()]

    def tracker(self, sender: str) -> dict:
        r = self._client.get(f"{self.base_url}/conversations/{sender}/tracker")
        r.raise_for_status()
        return r.json()

    def close(self) -> None:
        self._client.close()
