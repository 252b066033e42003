"""The channels service (``assistant serve-channels``): the webhooks of every configured platform
in one FastAPI app, with their errors mapped to HTTP codes here and nowhere else.

=========================  =====================================================================
route                      platform
=========================  =====================================================================
``POST /slack/events``     Slack Events API and interactivity (buttons)
``GET|POST /wechat``       WeChat Official Account server URL
``GET|POST /wecom``        WeCom application callback URL
``GET /health``            which platforms are configured
=========================  =====================================================================
"""

# no `from __future__ import annotations`: FastAPI reads the routes' annotations (imported locally)
import logging

from connectors.relay import BadRequest, DeadlineReplies, Forbidden, Relay

log = logging.getLogger(__name__)


def make_relay(settings) -> Relay:
    from assistant.tasks.wiring import job_store
    from connectors.rest import RasaRestClient

    return Relay(RasaRestClient(settings.rasa_url, timeout_s=30.0), job_store(settings),
                 settings.channel_dedup_ttl_s, settings.channel_max_chars)


def create_channels_app(settings, relay: Relay | None = None):
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    from connectors.outbox import make_outbox

    enabled = settings.enabled_channels()
    if not enabled:
        raise ValueError("no channel is configured: set the Slack, WeChat or WeCom settings (README, 'Channels')")
    relay = relay or make_relay(settings)
    outbox = make_outbox(settings, relay.store)
    app = FastAPI(title="CloudMax assistant channels")
    routes = []
    if "slack" in enabled and settings.slack_signing_secret:
        from connectors.slack import http_router

        router, _ = http_router(settings, relay)
        app.include_router(router)
        routes.append("/slack/events")
    wechat_platforms = [name for name in ("wechat", "wecom") if name in enabled]
    if wechat_platforms:
        from connectors import wechat

        replies = DeadlineReplies(relay, outbox.send)
        for name in wechat_platforms:
            platform = wechat.OfficialAccount(settings) if name == "wechat" else wechat.WeCom(settings)
            handler = wechat.WeChatHandler(platform, relay, replies, settings.wechat_reply_budget_s)
            app.include_router(wechat.router(f"/{name}", handler))
            routes.append(f"/{name}")

    @app.exception_handler(Forbidden)
    async def forbidden(_: Request, exc: Forbidden):
        log.warning("refused: %s", exc)
        return JSONResponse({"error": str(exc)}, status_code=403)

    @app.exception_handler(BadRequest)
    async def bad_request(_: Request, exc: BadRequest):
        log.warning("bad request: %s", exc)
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.get("/health")
    def health():
        return {"status": "ok", "channels": enabled, "routes": routes}

    return app


def serve_channels(settings) -> None:
    import uvicorn

    uvicorn.run(create_channels_app(settings), host=settings.channels_host, port=settings.channels_port,
                log_level="info")
