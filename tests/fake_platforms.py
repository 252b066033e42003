"""Local stand-ins for the platforms' servers, at the HTTP boundary: Slack's Web API
(``auth.test``, ``chat.postMessage``), WeChat's customer-service API and WeCom's ``message/send``
(with their access-token endpoints). They record every request so tests can check what the
assistant sent; anything else is a 404 (a request the connector should not make)."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

ACCESS_TOKEN = {"wechat": "oa-token-1", "wecom": "wecom-token-1"}
BOT_TOKEN = "xoxb-test-bot"
APP_TOKEN = "xapp-1-test-app"


@dataclass
class Recorded:
    path: str
    query: dict
    headers: dict
    body: dict
    at: float = field(default_factory=time.time)
    failed: bool = False          # answered with an error (fail_next_posts)


class FakePlatforms:
    def __init__(self):
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self.fail_next_posts = 0          # make the next N message sends fail (platform outage)
        self.socket_url = ""              # what apps.connections.open hands out (a SocketModeServer)
        self.port = free_port()
        self.app = self._build()
        self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _build(self) -> FastAPI:
        app = FastAPI()

        async def record(request: Request) -> Recorded:
            raw = await request.body()
            if "form-urlencoded" in request.headers.get("content-type", ""):
                body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            else:     # JSON, whatever the header says (wechatpy sends none)
                body = json.loads(raw or b"{}")
            r = Recorded(request.url.path, dict(request.query_params), dict(request.headers), body)
            with self._lock:
                self.requests.append(r)
            return r

        def failing() -> bool:
            with self._lock:
                if self.fail_next_posts > 0:
                    self.fail_next_posts -= 1
                    return True
            return False

        @app.post("/slack/api/auth.test")
        async def auth_test(request: Request):
            r = await record(request)
            ok = r.headers.get("authorization") == f"Bearer {BOT_TOKEN}"
            return {"ok": ok, "user_id": "UBOT", "bot_id": "BBOT", "team_id": "T1", "team": "CloudMax",
                    "url": "https://cloudmax.slack.com/", **({} if ok else {"error": "invalid_auth"})}

        @app.post("/slack/api/apps.connections.open")
        async def connections_open(request: Request):
            r = await record(request)
            if r.headers.get("authorization") != f"Bearer {APP_TOKEN}":
                return {"ok": False, "error": "invalid_auth"}
            return {"ok": True, "url": self.socket_url}

        @app.post("/slack/api/chat.postMessage")
        async def post_message(request: Request):
            r = await record(request)
            if failing():
                r.failed = True
                return JSONResponse({"ok": False, "error": "service_unavailable"}, status_code=503)
            if r.headers.get("authorization") != f"Bearer {BOT_TOKEN}":
                return {"ok": False, "error": "invalid_auth"}
            return {"ok": True, "channel": r.body.get("channel"), "ts": f"{time.time():.6f}"}

        @app.get("/wechat/cgi-bin/token")
        async def oa_token(request: Request):
            await record(request)
            return {"access_token": ACCESS_TOKEN["wechat"], "expires_in": 7200}

        @app.get("/wecom/cgi-bin/gettoken")
        async def wecom_token(request: Request):
            await record(request)
            return {"errcode": 0, "access_token": ACCESS_TOKEN["wecom"], "expires_in": 7200}

        @app.post("/wechat/cgi-bin/message/custom/send")
        @app.post("/wecom/cgi-bin/message/send")
        async def send(request: Request):
            r = await record(request)
            if failing():
                r.failed = True
                return JSONResponse({"errcode": -1, "errmsg": "system error"}, status_code=500)
            platform = r.path.split("/")[1]
            if r.query.get("access_token") != ACCESS_TOKEN[platform]:
                return {"errcode": 40014, "errmsg": "invalid access_token"}
            return {"errcode": 0, "errmsg": "ok"}

        return app

    def start(self) -> "FakePlatforms":
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        threading.Thread(target=self._server.run, daemon=True).start()
        for _ in range(200):
            if self._server.started:
                return self
            time.sleep(0.02)
        raise RuntimeError("fake platform server did not start")

    def stop(self) -> None:
        if self._server:
            self._server.should_exit = True

    # --- what the assistant sent -------------------------------------------------------------
    def slack_posts(self, channel: str | None = None, failed: bool = False) -> list[dict]:
        """What was posted (``failed=True``: the posts the fake refused instead)."""
        with self._lock:
            posts = [r.body for r in self.requests if r.path.endswith("chat.postMessage") and r.failed == failed]
        return [p for p in posts if channel is None or p.get("channel") == channel]

    def wechat_sends(self, platform: str, user: str) -> list[str]:
        path = "/wechat/cgi-bin/message/custom/send" if platform == "wechat" else "/wecom/cgi-bin/message/send"
        with self._lock:
            bodies = [r.body for r in self.requests if r.path == path and not r.failed]
        return [b["text"]["content"] for b in bodies if b.get("touser") == user]

    def wait(self, found, timeout_s: float = 40.0, settle_s: float = 1.5):
        """``found()`` once it is truthy (and a moment more, so a duplicate would show up)."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if found():
                time.sleep(settle_s)
                return found()
            time.sleep(0.1)
        return found()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SocketModeServer:
    """Slack's Socket Mode end, over a local WebSocket: says hello to each connection, sends the
    envelopes it is given, and records the envelope ids the app acknowledges."""

    def __init__(self):
        self.port = free_port()
        self.acks: list[str] = []
        self.connections = 0
        self._outbox: list[dict] = []
        self._cond = threading.Condition()
        self._loop = None
        self._stop = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/link"

    def send(self, envelope: dict) -> None:
        with self._cond:
            self._outbox.append(envelope)

    async def _handler(self, ws) -> None:
        import asyncio

        self.connections += 1
        await ws.send(json.dumps({"type": "hello", "num_connections": 1,
                                  "connection_info": {"app_id": "A1"}, "debug_info": {"host": "fake"}}))

        async def pump():
            while True:
                with self._cond:
                    pending, self._outbox[:] = list(self._outbox), []
                for envelope in pending:
                    await ws.send(json.dumps(envelope))
                await asyncio.sleep(0.05)

        task = asyncio.ensure_future(pump())
        try:
            async for raw in ws:
                envelope_id = json.loads(raw).get("envelope_id")
                if envelope_id:
                    with self._cond:
                        self.acks.append(envelope_id)
        finally:
            task.cancel()

    def start(self) -> "SocketModeServer":
        import asyncio

        from websockets.asyncio.server import serve

        ready = threading.Event()

        async def main():
            self._stop = asyncio.Event()
            async with serve(self._handler, "127.0.0.1", self.port):
                ready.set()
                await self._stop.wait()

        def run():
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(main())

        threading.Thread(target=run, daemon=True).start()
        if not ready.wait(10):
            raise RuntimeError("socket mode server did not start")
        return self

    def stop(self) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
