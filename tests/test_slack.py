"""Slack through slack-bolt, against the real stack: requests signed the way Slack signs them go to
the channels service over HTTP; what the assistant posts back is recorded by a local fake of
Slack's Web API (tests/fake_platforms.py)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from urllib.parse import urlencode

import httpx
import pytest

from tests.conftest import SLACK_SECRET

pytestmark = pytest.mark.stack

SLOW_EN = "which compliance certifications do you have"
REFUSED_EN = "Are you HIPAA compliant? We're a clinic."


def signed(body: str, ts: int | None = None, secret: str = SLACK_SECRET) -> dict:
    ts = int(time.time()) if ts is None else ts
    sig = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": sig}


def post(cs, body: str, content_type: str = "application/json", retry: int | None = None, **sign) -> httpx.Response:
    headers = {"Content-Type": content_type, **signed(body, **sign)}
    if retry:
        headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
    return httpx.post(f"{cs.settings.channels_url}/slack/events", content=body.encode(), headers=headers, timeout=10)


def event(text: str, channel: str, user: str, kind: str = "message", thread_ts: str | None = None,
          event_id: str | None = None) -> tuple[str, dict]:
    ts = f"{time.time():.6f}"
    ev = {"type": kind, "channel": channel, "user": user, "text": text, "ts": ts, "event_ts": ts, "team": "T1"}
    if kind == "message":
        ev["channel_type"] = "im"
    if thread_ts:
        ev["thread_ts"] = thread_ts
    body = {"token": "legacy", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
            "event_id": event_id or f"Ev{uuid.uuid4().hex[:10]}", "event_time": int(time.time()), "event": ev}
    return json.dumps(body), ev


def new_ids() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8].upper()
    return f"C{tag}", f"U{tag}"


def test_url_verification_and_health(channel_stack):
    body = json.dumps({"token": "legacy", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                       "type": "url_verification"})
    r = post(channel_stack, body)
    assert r.status_code == 200 and "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" in r.text
    health = httpx.get(f"{channel_stack.settings.channels_url}/health").json()
    assert set(health["channels"]) == {"slack", "wechat", "wecom"}


def test_direct_message_is_answered_after_the_ack(channel_stack):
    channel, user = new_ids()
    body, ev = event("帮我查下订单CM100003", channel, user)
    r = post(channel_stack, body)
    # the ack is the HTTP answer itself: it came back before anything was posted
    assert r.status_code == 200
    assert channel_stack.platforms.slack_posts(channel) == []
    posts = channel_stack.platforms.wait(lambda: channel_stack.platforms.slack_posts(channel))
    assert len(posts) == 1, posts
    assert "CM100003" in posts[0]["text"]
    assert posts[0].get("thread_ts") is None       # a DM written outside a thread is answered in the DM
    assert posts[0]["blocks"][0]["text"]["text"] == posts[0]["text"]


def test_mention_is_answered_in_its_thread(channel_stack):
    channel, user = new_ids()
    body, ev = event("<@UBOT> how do I get a refund?", channel, user, kind="app_mention")
    assert post(channel_stack, body).status_code == 200
    posts = channel_stack.platforms.wait(lambda: channel_stack.platforms.slack_posts(channel))
    assert len(posts) == 1 and posts[0]["thread_ts"] == ev["ts"], [p["text"] for p in posts]
    assert "refund" in posts[0]["text"].lower() and "[1]" in posts[0]["text"]
    tracker = channel_stack.client.tracker(f"slack-T1-{user}")
    said = [e["text"] for e in tracker["events"] if e.get("event") == "user"]
    assert said == ["how do I get a refund?"]       # the mention itself is not part of the question


def test_resent_event_is_answered_once(channel_stack):
    channel, user = new_ids()
    body, _ = event("查询订单CM100007的状态", channel, user)
    assert post(channel_stack, body).status_code == 200
    for n in (1, 2, 3):                             # Slack's retries carry the same event id
        assert post(channel_stack, body, retry=n).status_code == 200
    posts = channel_stack.platforms.wait(lambda: channel_stack.platforms.slack_posts(channel), settle_s=3)
    assert len(posts) == 1, posts
    users = [e for e in channel_stack.client.tracker(f"slack-T1-{user}")["events"] if e.get("event") == "user"]
    assert len(users) == 1


def test_slow_answer_is_posted_later_into_the_same_thread_once(channel_stack):
    channel, user = new_ids()
    body, ev = event(f"<@UBOT> {SLOW_EN}", channel, user, kind="app_mention")
    assert post(channel_stack, body).status_code == 200
    fake = channel_stack.platforms
    answers = fake.wait(lambda: [p for p in fake.slack_posts(channel) if "Sources:" in p["text"]], settle_s=3)
    posts = fake.slack_posts(channel)
    assert len(answers) == 1 and len(posts) == 2, posts
    assert "look that up" in posts[0]["text"] and "[1]" in posts[1]["text"]
    assert {p["thread_ts"] for p in posts} == {ev["ts"]}


def test_buttons_and_handoff_to_the_agents_channel(channel_stack):
    channel, user = new_ids()
    body, ev = event(f"<@UBOT> {REFUSED_EN}", channel, user, kind="app_mention")
    assert post(channel_stack, body).status_code == 200
    fake = channel_stack.platforms
    posts = fake.wait(lambda: fake.slack_posts(channel))
    actions = [b for b in posts[0]["blocks"] if b["type"] == "actions"]
    assert actions, posts[0]
    button = actions[0]["elements"][0]
    assert button["text"]["text"] == "Talk to a human" and button["value"] == "/request_human"
    payload = {"type": "block_actions", "team": {"id": "T1"}, "user": {"id": user}, "api_app_id": "A1",
               "trigger_id": f"tr-{uuid.uuid4().hex}", "channel": {"id": channel},
               "container": {"type": "message", "channel_id": channel, "message_ts": "1.0", "thread_ts": ev["ts"]},
               "message": {"ts": "1.0", "thread_ts": ev["ts"], "text": posts[0]["text"]},
               "actions": [{**button, "block_id": "rasa_buttons", "type": "button", "action_ts": f"{time.time()}"}]}
    r = post(channel_stack, urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")
    assert r.status_code == 200
    replies = fake.wait(lambda: [p for p in fake.slack_posts(channel) if "ticket" in p["text"].lower()])
    assert len(replies) == 1 and replies[0]["thread_ts"] == ev["ts"]
    summaries = [p for p in fake.slack_posts("CAGENTS") if f"slack-T1-{user}" in p["text"]]
    assert len(summaries) == 1
    assert "HIPAA" in summaries[0]["text"] and f"<#{channel}>" in summaries[0]["text"]


@pytest.mark.parametrize("case", ["wrong secret", "stale timestamp", "no signature"])
def test_bad_signature_is_403_and_nothing_is_processed(channel_stack, case):
    channel, user = new_ids()
    body, _ = event("帮我查下订单CM100003", channel, user)
    headers = {"Content-Type": "application/json"}
    if case == "wrong secret":
        headers |= signed(body, secret="not-the-secret")
    elif case == "stale timestamp":                 # a replayed request, correctly signed 6 minutes ago
        headers |= signed(body, ts=int(time.time()) - 360)
    r = httpx.post(f"{channel_stack.settings.channels_url}/slack/events", content=body, headers=headers)
    assert r.status_code == 403 and "signature" in r.json()["error"].lower()
    time.sleep(1.5)
    assert channel_stack.platforms.slack_posts(channel) == []
    events = channel_stack.client.tracker(f"slack-T1-{user}").get("events") or []
    assert [e for e in events if e.get("event") == "user"] == []


@pytest.mark.parametrize("body,ctype", [("{not json", "application/json"), ("[1, 2]", "application/json"),
                                        ("payload=%7Bbroken", "application/x-www-form-urlencoded")])
def test_malformed_body_is_400(channel_stack, body, ctype):
    r = post(channel_stack, body, ctype)
    assert r.status_code == 400 and "Slack request body" in r.json()["error"]


def test_socket_mode(channel_stack):
    """`assistant serve-slack-socket` opens a connection (apps.connections.open with the app token),
    acknowledges each envelope and answers the event, once, also when Slack resends it."""
    from assistant.stack import Stack, service_specs
    from tests.fake_platforms import APP_TOKEN, SocketModeServer

    server = SocketModeServer().start()
    channel_stack.platforms.socket_url = server.url
    s = channel_stack.settings.model_copy(update={"slack_app_token": APP_TOKEN})
    s.__pydantic_fields_set__.add("slack_app_token")      # passed on to the child process
    specs = [spec for spec in service_specs(s) if spec.name == "slack"]
    assert specs and specs[0].argv[-1] == "serve-slack-socket"
    socket_mode = Stack(s, specs)
    socket_mode.start(echo=print)
    try:
        fake = channel_stack.platforms
        assert fake.wait(lambda: server.connections, settle_s=0)
        channel, user = new_ids()
        body, ev = event("帮我查下订单CM100003", channel, user)
        for attempt in (0, 1):                             # a resent envelope: same event id
            server.send({"envelope_id": f"env-{attempt}-{user}", "type": "events_api", "payload": json.loads(body),
                         "accepts_response_payload": False, "retry_attempt": attempt, "retry_reason": ""})
        acked = fake.wait(lambda: len([a for a in server.acks if a.endswith(user)]) == 2, settle_s=0)
        assert acked, server.acks
        posts = fake.wait(lambda: fake.slack_posts(channel), settle_s=2)
        assert len(posts) == 1 and "CM100003" in posts[0]["text"], posts
    finally:
        socket_mode.stop()
        server.stop()


def test_late_answer_survives_a_slack_outage(channel_stack):
    """Slack refuses the worker's post of a late answer once: the task is retried and the answer
    is posted then (the conversation already holds it, so it comes from the job's outbox), once."""
    channel, user = new_ids()
    body, ev = event("<@UBOT> tell me about your compliance certifications", channel, user, kind="app_mention")
    fake = channel_stack.platforms
    assert post(channel_stack, body).status_code == 200
    assert fake.wait(lambda: fake.slack_posts(channel), settle_s=0)     # "looking that up" went out
    fake.fail_next_posts = 1
    answers = fake.wait(lambda: [p for p in fake.slack_posts(channel) if "Sources:" in p["text"]], settle_s=3)
    refused = fake.slack_posts(channel, failed=True)
    assert len(refused) == 1 and "Sources:" in refused[0]["text"], refused
    assert len(answers) == 1 and answers[0]["text"] == refused[0]["text"] and answers[0]["thread_ts"] == ev["ts"]
