"""Slack, with slack-bolt: the HTTP Events API (``POST /slack/events``, signed) and Socket Mode.

* Direct messages and mentions in channels become Rasa turns; a mention is answered in its thread
  (a direct message too when it was written in a thread).
* Bolt acknowledges an event before the listener runs (``process_before_response=False``), so Slack
  always gets its answer within its 3-second limit; Slack resends an event it did not see
  acknowledged, and the event id makes the resent copy a no-op.
* Rasa buttons become Block Kit buttons; a click is a turn with the button's payload.
* A late answer (from a worker) is posted into the same thread by :class:`SlackPoster`, through the
  outbox; a handoff posts the conversation summary to ``ASSISTANT_SLACK_AGENTS_CHANNEL``.
"""

# no `from __future__ import annotations`: FastAPI reads the routes' annotations (imported locally)
import json
import logging
import re
from urllib.parse import parse_qs

from connectors.relay import BadRequest, Forbidden, Inbound, Relay
from connectors.rest import BotMessage, bot_message

log = logging.getLogger(__name__)

_MENTION = re.compile(r"<@[A-Z0-9]+>")
SECTION_LIMIT = 3000    # characters of one Block Kit section
BUTTON_LIMIT = 75       # characters of a button's label


def blocks_for(message: BotMessage) -> list[dict]:
    """A Rasa message as Block Kit: its text in sections, its buttons as one actions block."""
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": message.text[i:i + SECTION_LIMIT]}}
              for i in range(0, len(message.text), SECTION_LIMIT)]
    if message.buttons:
        blocks.append({"type": "actions", "block_id": "rasa_buttons", "elements": [
            {"type": "button", "action_id": f"rasa_button_{i}", "value": str(b.get("payload") or b.get("title", ""))[:2000],
             "text": {"type": "plain_text", "text": str(b.get("title") or b.get("payload"))[:BUTTON_LIMIT]}}
            for i, b in enumerate(message.buttons[:25])]})
    return blocks


def handoff_text(handoff: dict, reply_to: dict) -> str:
    lines = [f":raising_hand: Handoff, ticket #{handoff.get('ticket_id')} (conversation `{handoff.get('sender_id', '')}`,"
             f" <#{reply_to.get('channel_id', '')}>)"]
    lines += [f"> *{t['role']}*: {t['text'][:300]}" for t in handoff.get("transcript", [])[-10:]]
    return "\n".join(lines)


class SlackPoster:
    """Posts Rasa's messages to a Slack channel/thread (``reply_to``) with ``chat.postMessage``."""

    def __init__(self, client, agents_channel: str | None = None):
        self.client = client               # a slack_sdk WebClient
        self.agents_channel = agents_channel

    def send(self, reply_to: dict, messages: list[dict | BotMessage]) -> None:
        for m in merge_paragraphs([m if isinstance(m, BotMessage) else bot_message(m) for m in messages]):
            handoff = (m.custom or {}).get("handoff")
            if handoff and self.agents_channel:
                self.client.chat_postMessage(channel=self.agents_channel, text=handoff_text(handoff, reply_to))
            if m.text:
                self.client.chat_postMessage(channel=reply_to["channel_id"], thread_ts=reply_to.get("thread_ts"),
                                             text=m.text, blocks=blocks_for(m))


def merge_paragraphs(messages: list[BotMessage]) -> list[BotMessage]:
    """Rasa's REST channel sends each paragraph as a message of its own: one Slack post per reply
    instead (a message with buttons ends a post; JSON-only messages stay apart)."""
    out: list[BotMessage] = []
    for m in messages:
        prev = out[-1] if out else None
        if m.text and prev is not None and prev.text and not prev.buttons and prev.custom is None:
            out[-1] = BotMessage(f"{prev.text}\n\n{m.text}", m.buttons, m.custom)
        else:
            out.append(m)
    return out


def web_client(settings, token: str | None = None):
    from slack_sdk import WebClient

    return WebClient(token=token or settings.slack_bot_token, base_url=settings.slack_api_url, timeout=10)


def create_bolt_app(settings, relay: Relay):
    """The bolt app with this assistant's listeners (HTTP and Socket Mode share it)."""
    from slack_bolt import App

    client = web_client(settings)
    app = App(client=client, signing_secret=settings.slack_signing_secret or None,
              request_verification_enabled=bool(settings.slack_signing_secret), process_before_response=False)
    poster = SlackPoster(client, settings.slack_agents_channel)

    def turn(message_id: str, team: str, user: str, text: str, reply_to: dict) -> None:
        if not relay.first_delivery("slack", message_id):
            log.info("Slack %s seen before: not answered again", message_id)
            return
        messages = relay.turn(Inbound("slack", message_id, f"slack-{team}-{user}", text, reply_to))
        poster.send(reply_to, messages)

    def on_event(body: dict, event: dict, in_thread: bool) -> None:
        if event.get("bot_id") or event.get("subtype") or not event.get("user"):
            return      # our own posts, edits, joins: not questions
        thread_ts = event.get("thread_ts") or (event.get("ts") if in_thread else None)
        reply_to = {"channel": "slack", "channel_id": event["channel"], "thread_ts": thread_ts}
        message_id = body.get("event_id") or f"{event['channel']}-{event.get('ts')}"
        turn(message_id, body.get("team_id") or event.get("team", ""), event["user"],
             _MENTION.sub("", event.get("text") or ""), reply_to)

    @app.event("app_mention")
    def on_mention(body, event):
        on_event(body, event, in_thread=True)

    @app.event("message")
    def on_message(body, event):
        if event.get("channel_type") == "im":     # mentions in channels come as app_mention
            on_event(body, event, in_thread=False)

    @app.action(re.compile(r"^rasa_button_\d+$"))
    def on_button(ack, body, action):
        ack()
        container = body.get("container") or {}
        message = body.get("message") or {}
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
        reply_to = {"channel": "slack", "channel_id": channel,
                    "thread_ts": container.get("thread_ts") or message.get("thread_ts")}
        turn(body.get("trigger_id") or f"{channel}-{action.get('action_ts')}", (body.get("team") or {}).get("id", ""),
             (body.get("user") or {}).get("id", ""), action.get("value", ""), reply_to)

    return app


def parse_body(body: bytes, content_type: str) -> dict:
    """Slack sends events as JSON and interactions as a form with a JSON ``payload``."""
    try:
        if "application/json" in content_type:
            data = json.loads(body)
        else:
            form = parse_qs(body.decode("utf-8"), strict_parsing=True)
            data = json.loads(form["payload"][0]) if "payload" in form else {k: v[0] for k, v in form.items()}
    except (ValueError, KeyError, UnicodeDecodeError) as exc:
        raise BadRequest(f"Slack request body is not valid JSON or form data ({exc})") from exc
    if not isinstance(data, dict):
        raise BadRequest("Slack request body must be a JSON object")
    return data


def http_router(settings, relay: Relay):
    """``POST /slack/events``: signature and replay window checked here (403), the body's shape too
    (400), then bolt acknowledges and runs the listener in its thread pool."""
    from fastapi import APIRouter, Request
    from fastapi.concurrency import run_in_threadpool
    from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
    from slack_sdk.signature import SignatureVerifier

    if not settings.slack_signing_secret:
        raise ValueError("the Slack HTTP endpoint needs ASSISTANT_SLACK_SIGNING_SECRET (Basic Information page of the "
                         "Slack app); without a public URL use Socket Mode (`assistant serve-slack-socket`)")
    app = create_bolt_app(settings, relay)
    verifier = SignatureVerifier(settings.slack_signing_secret)
    router = APIRouter()

    @router.post("/slack/events")
    async def slack_events(request: Request):
        body = await request.body()
        if not verifier.is_valid_request(body, dict(request.headers)):
            raise Forbidden("Slack signature check failed: the X-Slack-Signature does not match "
                            "ASSISTANT_SLACK_SIGNING_SECRET, or X-Slack-Request-Timestamp is more than 5 minutes old")
        parse_body(body, request.headers.get("content-type", ""))
        response = await run_in_threadpool(app.dispatch, to_bolt_request(request, body))
        return to_starlette_response(response)

    return router, app


def serve_socket_mode(settings) -> None:
    """Socket Mode: the app connects out to Slack over a WebSocket (no public URL needed)."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from connectors.app import make_relay

    if not (settings.slack_app_token and settings.slack_bot_token):
        raise SystemExit("Socket Mode needs ASSISTANT_SLACK_APP_TOKEN (xapp-…, with connections:write) and "
                         "ASSISTANT_SLACK_BOT_TOKEN (xoxb-…); see README, 'Channels'")
    app = create_bolt_app(settings, make_relay(settings))
    SocketModeHandler(app, settings.slack_app_token, web_client=web_client(settings, settings.slack_app_token)).start()
