"""Any OpenAI-compatible chat-completions endpoint (vLLM, Ollama, TGI, hosted APIs): streaming,
timeouts, retries with exponential backoff, and a clear error when the endpoint is down."""

from __future__ import annotations

import json
import time
from typing import Callable, Iterator, Sequence

import httpx

from assistant.generation.prompt import chat_messages, parse_reply
from assistant.knowledge.generate import Draft, GeneratorUnavailable, Source

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAICompatibleGenerator:
    name = "openai"

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout_s: float = 30.0,
                 max_tokens: int = 400, temperature: float = 0.0, retries: int = 2, stream: bool = True,
                 backoff_s: float = 0.5, client: httpx.Client | None = None, sleep: Callable[[float], None] = time.sleep):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.retries = retries
        self.stream = stream
        self.backoff_s = backoff_s
        self._sleep = sleep
        self._client = client or httpx.Client(timeout=httpx.Timeout(timeout_s, connect=min(5.0, timeout_s)))

    def generate(self, question: str, lang: str, sources: Sequence[Source]) -> Draft:
        started = time.perf_counter()
        pieces = list(self.stream_text(question, lang, sources))
        return parse_reply("".join(pieces), sources, self.name, tokens=len(pieces),
                           seconds=time.perf_counter() - started)

    def stream_text(self, question: str, lang: str, sources: Sequence[Source]) -> Iterator[str]:
        """The answer's text pieces as the endpoint produces them (one piece when it does not stream)."""
        body = {"model": self.model, "messages": chat_messages(question, lang, sources),
                "max_tokens": self.max_tokens, "temperature": self.temperature, "stream": self.stream}
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(self.backoff_s * 2 ** (attempt - 1))
            received = False
            try:
                with self._client.stream("POST", self.url, json=body, headers=self.headers) as r:
                    if r.status_code in RETRYABLE_STATUS:
                        r.read()
                        last = httpx.HTTPStatusError(f"{r.status_code} {r.text[:200]}", request=r.request, response=r)
                        continue
                    r.raise_for_status()
                    for piece in self._pieces(r):
                        received = True
                        yield piece
                    return
            except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                if received:  # never retry a half-streamed answer: the caller already has part of it
                    raise GeneratorUnavailable(f"LLM endpoint {self.url} broke off mid-answer: {exc}") from exc
                last = exc
                if isinstance(exc, httpx.HTTPStatusError):
                    break  # 4xx other than the retryable ones: a request the endpoint will never accept
            except (KeyError, IndexError, ValueError) as exc:
                raise GeneratorUnavailable(f"LLM endpoint {self.url} failed: unexpected reply ({exc})") from exc
        hint = ("is it running? check ASSISTANT_LLM_BASE_URL, or set ASSISTANT_KB_GENERATOR=extractive"
                if isinstance(last, httpx.TransportError) else "check ASSISTANT_LLM_MODEL and ASSISTANT_LLM_API_KEY")
        raise GeneratorUnavailable(f"LLM endpoint {self.url} failed after {self.retries + 1} attempt(s): "
                                   f"{type(last).__name__}: {last}; {hint}")

    @staticmethod
    def _pieces(r: httpx.Response) -> Iterator[str]:
        if "text/event-stream" not in r.headers.get("content-type", ""):
            r.read()
            yield r.json()["choices"][0]["message"]["content"] or ""
            return
        for line in r.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            delta = json.loads(data)["choices"][0].get("delta", {}).get("content")
            if delta:
                yield delta
