"""Do Slack and WeChat get their answers in time, and once, when the generator takes 30 s?

On the real stack (NLU, actions, a Celery worker with a stand-in generator that takes 30 s per
answer, Rasa, the channels service; Redis on 127.0.0.1:6379 db 7) with a local fake of the
platforms' APIs (tests/fake_platforms.py) recording what is sent:

1. Slack: 100 signed events (a few knowledge questions, the rest quick intents), each delivered
   1-4 times (Slack's retries: same event id, ``X-Slack-Retry-Num``), 16 at a time. The ack time
   is the HTTP round trip of each delivery (target p100 ≤ 1 s).
2. WeChat (Official Account, safe mode): 100 AES-encrypted messages, each delivered 1-4 times with
   the same ``MsgId``. The passive reply time is the HTTP round trip (target p100 ≤ 4.5 s).
3. Exactly once: per message, Rasa turns (must be 1; a worker's delivery of a late answer is an
   ``EXTERNAL_`` turn and does not count) and replies on the platform (posts / passive
   replies + customer-service messages) against the replies of the same text sent once, after the
   late answers have arrived (target: 0 duplicated, 0 lost).

    .venv/bin/python -m benchmarks.channel_deadlines [--messages 100] [--delay 30]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import random
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import redis
from wechatpy.crypto import WeChatCrypto

from assistant.settings import Settings
from assistant.stack import Stack, preflight, service_specs
from benchmarks.common import print_table, summary_ms, write_json
from benchmarks.worker_delivery import BROKER, QUESTIONS
from connectors.rest import RasaRestClient
from tests.conftest import SLACK_SECRET, WECHAT, seed_database
from tests.fake_platforms import BOT_TOKEN, FakePlatforms

QUICK = ["帮我查下订单CM1000{:02d}", "status of order CM1000{:02d}", "你好", "how much is the Pro plan", "转人工"]


def make_settings(var: Path, fake: FakePlatforms, delay_s: float) -> Settings:
    return Settings(
        _env_file=None, var_dir=var, chroma_dir=Settings(_env_file=None).chroma_dir, nlu_port=25206,
        action_port=25255, rasa_port=25205, channels_port=25207, database_url=f"sqlite:///{var / 'db.sqlite'}",
        broker_url=BROKER, answer_cache_ttl_s=0, kb_generator="python:assistant.generation.fakes:slow",
        worker_concurrency=2, worker_time_limit_s=delay_s * 3, slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SLACK_SECRET, slack_api_url=f"{fake.url}/slack/api/", wechat_token=WECHAT["token"],
        wechat_app_id=WECHAT["app_id"], wechat_app_secret="s", wechat_aes_key=WECHAT["aes_key"],
        wechat_api_url=f"{fake.url}/wechat/cgi-bin/")


def texts(n: int, knowledge: int, rng: random.Random) -> list[tuple[str, str]]:
    out = [("knowledge", QUESTIONS[i % len(QUESTIONS)]) for i in range(knowledge)]
    for i in range(n - knowledge):
        template = QUICK[i % len(QUICK)]
        out.append((template, template.format(rng.randint(1, 12))))
    rng.shuffle(out)
    return out


class SlackSide:
    def __init__(self, s: Settings, fake: FakePlatforms):
        self.url, self.fake = f"{s.channels_url}/slack/events", fake

    def deliver(self, client: httpx.Client, body: str, retry: int) -> float:
        ts = str(int(time.time()))
        sig = "v0=" + hmac.new(SLACK_SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig}
        if retry:
            headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
        started = time.perf_counter()
        r = client.post(self.url, content=body, headers=headers)
        r.raise_for_status()
        return time.perf_counter() - started

    def message(self, text: str) -> tuple[str, str, str]:
        """(body, sender, address)"""
        tag = uuid.uuid4().hex[:8].upper()
        ts = f"{time.time():.6f}"
        body = {"team_id": "T1", "type": "event_callback", "event_id": f"Ev{tag}", "event": {
            "type": "message", "channel_type": "im", "channel": f"D{tag}", "user": f"U{tag}", "text": text, "ts": ts}}
        return json.dumps(body), f"slack-T1-U{tag}", f"D{tag}"

    def replies(self, address: str) -> int:
        return len(self.fake.slack_posts(address))


class WeChatSide:
    crypto = WeChatCrypto(WECHAT["token"], WECHAT["aes_key"], WECHAT["app_id"])

    def __init__(self, s: Settings, fake: FakePlatforms):
        self.url, self.fake = f"{s.channels_url}/wechat", fake
        self.passive: dict[str, int] = {}

    def deliver(self, client: httpx.Client, body: str, retry: int) -> float:
        ts, nonce = str(int(time.time())), uuid.uuid4().hex[:10]
        encrypted = self.crypto.encrypt_message(body, nonce, ts)
        msg_sig = encrypted.split("<MsgSignature><![CDATA[")[1].split("]]>")[0]
        q = {"signature": hashlib.sha1("".join(sorted([WECHAT["token"], ts, nonce])).encode()).hexdigest(),
             "timestamp": ts, "nonce": nonce, "encrypt_type": "aes", "msg_signature": msg_sig}
        started = time.perf_counter()
        r = client.post(self.url, params=q, content=encrypted.encode())
        took = time.perf_counter() - started
        r.raise_for_status()
        if r.text != "success":
            user = body.split("<FromUserName><![CDATA[")[1].split("]]>")[0]
            self.passive[user] = self.passive.get(user, 0) + 1
        return took

    def message(self, text: str) -> tuple[str, str, str]:
        user = f"o{uuid.uuid4().hex[:16]}"
        body = (f"<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
                f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
                f"<Content><![CDATA[{text}]]></Content><MsgId>{random.getrandbits(60)}</MsgId></xml>")
        return body, f"wechat-{user}", user

    def replies(self, address: str) -> int:
        return self.passive.get(address, 0) + len(self.fake.wechat_sends("wechat", address))


def send_all(side, messages: list[tuple[str, str]], rng: random.Random) -> dict:
    """A control (each kind of message once, to a user of its own), then every message delivered
    1-4 times, 16 deliveries at a time. Returns what :func:`count` needs."""
    with httpx.Client(timeout=30) as client:
        control = {}
        for kind, text in {k: t for k, t in messages}.items():
            body, _, address = side.message(text)
            side.deliver(client, body, 0)
            control[kind] = address
        sent, deliveries = [], []
        for kind, text in messages:
            body, sender, address = side.message(text)
            sent.append((kind, sender, address))
            deliveries += [(body, retry) for retry in range(rng.randint(1, 4))]
        rng.shuffle(deliveries)
        with ThreadPoolExecutor(16) as pool:
            times = list(pool.map(lambda d: side.deliver(client, *d), deliveries))
    return {"side": side, "control": control, "sent": sent, "deliveries": len(deliveries), "times": times}


def count(run: dict, rasa: RasaRestClient) -> dict:
    """Per message: Rasa turns (must be 1) and replies on the platform against the control's."""
    side = run["side"]
    expected = {kind: side.replies(address) for kind, address in run["control"].items()}
    dup = lost = wrong_turns = 0
    for kind, sender, address in run["sent"]:
        got = side.replies(address)
        dup += max(0, got - expected[kind])
        lost += max(0, expected[kind] - got)
        turns = [e for e in rasa.tracker(sender).get("events") or [] if e.get("event") == "user"
                 and not ((e.get("parse_data") or {}).get("intent") or {}).get("name", "").startswith("EXTERNAL_")]
        wrong_turns += abs(len(turns) - 1)
    return {"messages": len(run["sent"]), "deliveries": run["deliveries"], "http": summary_ms(run["times"]),
            "duplicated": dup, "lost": lost, "rasa_turns_not_1": wrong_turns, "expected_replies": expected}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=100)
    ap.add_argument("--knowledge", type=int, default=3, help="of them, knowledge questions (30-s generation each)")
    ap.add_argument("--delay", type=float, default=30.0, help="the generator's seconds per answer")
    args = ap.parse_args()
    problems = preflight(Settings(_env_file=None))
    if problems:
        raise SystemExit("the project is not set up: " + "; ".join(problems))
    redis.Redis.from_url(BROKER).flushdb()
    rng = random.Random(7)
    fake = FakePlatforms().start()
    var = Path(tempfile.mkdtemp(prefix="bench-channels-"))
    s = make_settings(var, fake, args.delay)
    seed_database(s.effective_database_url)
    os.environ["ASSISTANT_TEST_GENERATOR_DELAY_S"] = str(args.delay)
    stack = Stack(s, service_specs(s))
    stack.start(echo=print)
    rasa = RasaRestClient(s.rasa_url)
    jobs = 2 * (args.knowledge + 1)   # per platform: its knowledge messages and one control
    try:
        runs = {name: send_all(side, texts(args.messages, args.knowledge, rng), rng)
                for name, side in (("slack", SlackSide(s, fake)), ("wechat", WeChatSide(s, fake)))}
        print(f"waiting for the late answers ({jobs} generations of {args.delay:.0f} s on 2 worker processes) ...")
        time.sleep(args.delay * jobs / 2 + 15)
        slack, wechat = count(runs["slack"], rasa), count(runs["wechat"], rasa)
    finally:
        rasa.close()
        stack.stop()
        fake.stop()
    rows = [{"platform": name, "messages": r["messages"], "deliveries": r["deliveries"],
             "p50_ms": r["http"]["p50_ms"], "p95_ms": r["http"]["p95_ms"], "p100_ms": r["http"]["max_ms"],
             "target_p100_ms": target, "duplicated": r["duplicated"], "lost": r["lost"],
             "rasa_turns_not_1": r["rasa_turns_not_1"]}
            for name, r, target in (("slack ack", slack, 1000), ("wechat passive reply", wechat, 4500))]
    print_table(f"Channel deadlines with a {args.delay:.0f}-s generator (HTTP round trip of every delivery)", rows)
    write_json("channel_deadlines", {"generator_delay_s": args.delay, "rows": rows, "slack": slack, "wechat": wechat})


if __name__ == "__main__":
    main()
