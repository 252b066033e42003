"""Late answers to the platform the question came from.

A worker delivers a late answer into its Rasa conversation; Rasa's messages then go to the address
the connector put in the message's metadata (``reply_to``), by its ``channel``: ``slack`` (a
channel and thread), ``wechat`` or ``wecom`` (a user). Conversations from the web page or the REST
channel have no ``reply_to``: their clients read the tracker.
"""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger(__name__)


class Sender(Protocol):
    def send(self, reply_to: dict, messages: list[dict]) -> None: ...


class Outbox:
    def __init__(self, senders: dict[str, Sender]):
        self.senders = senders

    def send(self, reply_to: dict, messages: list[dict]) -> None:
        """Raises what the platform's API raised (the caller retries)."""
        sender = self.senders.get(reply_to.get("channel", ""))
        if sender is None:
            log.warning("no connector configured for channel %r: late answer not forwarded (configured: %s)",
                        reply_to.get("channel"), sorted(self.senders) or "none")
            return
        sender.send(reply_to, messages)


def token_session(settings):
    """Where wechatpy keeps access tokens: Redis when configured, so every process shares one token
    (each fetch of a new one invalidates the last after a while)."""
    url = settings.effective_broker_url
    if not url:
        return None
    import redis
    from wechatpy.session.redisstorage import RedisStorage

    return RedisStorage(redis.Redis.from_url(url, socket_timeout=3), prefix="assistant:wechatpy")


def make_outbox(settings, store) -> Outbox:
    """A sender per configured platform (``store``: the job store, for WeChat's numbered options)."""
    senders: dict[str, Sender] = {}
    channels = settings.enabled_channels()
    if "slack" in channels:
        from connectors.slack import SlackPoster, web_client

        senders["slack"] = SlackPoster(web_client(settings), settings.slack_agents_channel)
    if "wechat" in channels or "wecom" in channels:
        from connectors.wechat import WeChatSender

        session = token_session(settings)
        for name in ("wechat", "wecom"):
            if name in channels:
                senders[name] = WeChatSender(settings, name, store, session)
    return Outbox(senders)
