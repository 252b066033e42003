"""WeChat Official Account (公众号, ``/wechat``) and WeCom application callbacks (企业微信, ``/wecom``),
with wechatpy for the signatures, the AES crypto and the XML.

* ``GET``: the server URL check (``echostr``), signature checked (403 when it does not match).
* ``POST``: text messages and subscribe events, plaintext or safe mode (``encrypt_type=aes`` with
  the ``EncodingAESKey``; WeCom is always encrypted). A bad signature is a 403 and nothing is
  processed; a body that is not the platform's XML is a 400.
* WeChat drops a reply after 5 seconds and resends the message up to 3 times. The reply is passive
  (in the HTTP response) when Rasa's reply is ready within ``ASSISTANT_WECHAT_REPLY_BUDGET_S``;
  otherwise the response is ``success`` at once and the reply goes through the customer-service
  message API (客服消息 / WeCom ``message/send``) when it is ready (:class:`DeadlineReplies`). A
  resent ``MsgId`` gets no second answer.
* Buttons become numbered options; replying with the number (or the option's text) chooses it.
"""

# no `from __future__ import annotations`: FastAPI reads the routes' annotations (imported locally)
import logging
import time

from connectors.relay import BadRequest, DeadlineReplies, Forbidden, Inbound, Relay, language
from connectors.rest import BotMessage, bot_message

log = logging.getLogger(__name__)

TEXT_BYTES = 2000           # WeChat's limit on one text message is 2048 bytes
BUDGET_MARGIN_S = 1.0       # of the reply budget, what NLU, Rasa and the HTTP hops need besides the answer
NOT_TEXT = {"zh": "目前只能处理文字消息，请用文字描述您的问题。", "en": "I can only read text messages for now."}
OPTIONS_HINT = {"zh": "回复数字选择：", "en": "Reply with a number:"}
OPTIONS_TTL_S = 86400


def split_text(text: str, limit: int = TEXT_BYTES) -> list[str]:
    """Pieces of at most ``limit`` UTF-8 bytes, cut at line ends where possible."""
    pieces, current = [], ""
    for line in text.splitlines(keepends=True):
        while len(line.encode()) > limit:          # one very long line: cut by characters
            cut = len(line.encode()[:limit].decode("utf-8", "ignore"))
            pieces += [current] if current else []
            pieces.append(line[:cut])
            current, line = "", line[cut:]
        if len((current + line).encode()) > limit:
            pieces.append(current)
            current = ""
        current += line
    if current.strip():
        pieces.append(current)
    return [p.rstrip("\n") for p in pieces if p.strip()]


def as_text(messages: list[BotMessage]) -> tuple[str, dict[str, str]]:
    """Rasa's messages as one text, buttons as numbered options; also the options (number or
    label -> payload)."""
    lang = language(" ".join(m.text for m in messages))
    parts, options = [], {}
    for m in messages:
        lines = [m.text] if m.text else []
        if m.buttons:
            lines.append(OPTIONS_HINT[lang])
            for b in m.buttons:
                n = str(len(options) + 1)
                options[n] = str(b.get("payload") or b.get("title"))
                options[str(b.get("title", "")).strip().lower()] = options[n]
                lines.append(f"{n}. {b.get('title') or b.get('payload')}")
        if lines:
            parts.append("\n".join(lines))
    return "\n\n".join(parts), options


def remember_options(store, sender: str, options: dict[str, str]) -> None:
    """The options just offered to ``sender``: a reply with their number (or label) chooses one."""
    if options:
        store.put_result(f"options:{sender}", options, OPTIONS_TTL_S)


def chosen_option(store, sender: str, text: str) -> str:
    """The payload of the option ``text`` names, else ``text``."""
    options = store.get_result(f"options:{sender}") if text.strip() else None
    return (options or {}).get(text.strip().lower(), text)


class OfficialAccount:
    """The 公众号 callback: token signature, optional AES (safe / compatible mode)."""

    name = "wechat"

    def __init__(self, settings):
        from wechatpy.crypto import WeChatCrypto

        self.token = settings.wechat_token
        self.crypto = (WeChatCrypto(self.token, settings.wechat_aes_key, settings.wechat_app_id)
                       if settings.wechat_aes_key else None)

    def verify(self, q: dict) -> str:
        from wechatpy.exceptions import InvalidSignatureException
        from wechatpy.utils import check_signature

        try:
            check_signature(self.token, q.get("signature", ""), q.get("timestamp", ""), q.get("nonce", ""))
        except InvalidSignatureException as exc:
            raise Forbidden("WeChat signature check failed: the signature does not match ASSISTANT_WECHAT_TOKEN") from exc
        return q.get("echostr", "")

    def open(self, q: dict, body: bytes):
        from wechatpy import parse_message

        self.verify(q)                  # sent in every mode; safe mode adds msg_signature over the ciphertext
        if q.get("encrypt_type") == "aes":
            if self.crypto is None:
                raise BadRequest("encrypted WeChat message, but ASSISTANT_WECHAT_AES_KEY (EncodingAESKey) is not set")
            xml = _decrypt(self.crypto, body, q)
        else:
            xml = body
        return _parse(parse_message, xml)

    def seal(self, q: dict, reply_xml: str) -> str:
        if q.get("encrypt_type") == "aes":
            return self.crypto.encrypt_message(reply_xml, q.get("nonce", ""), q.get("timestamp"))
        return reply_xml

    def create_reply(self, text: str, message) -> str:
        from wechatpy.replies import TextReply

        return TextReply(content=text, message=message).render()


class WeCom:
    """A WeCom (企业微信) application's callback: always encrypted, ``msg_signature`` checked."""

    name = "wecom"

    def __init__(self, settings):
        from wechatpy.enterprise.crypto import WeChatCrypto

        self.crypto = WeChatCrypto(settings.wecom_token, settings.wecom_aes_key, settings.wecom_corp_id)

    def verify(self, q: dict) -> str:
        from wechatpy.enterprise.exceptions import InvalidCorpIdException
        from wechatpy.exceptions import InvalidSignatureException

        try:
            return self.crypto.check_signature(q.get("msg_signature", ""), q.get("timestamp", ""),
                                               q.get("nonce", ""), q.get("echostr", ""))
        except (InvalidSignatureException, InvalidCorpIdException) as exc:
            raise Forbidden("WeCom signature check failed: msg_signature does not match ASSISTANT_WECOM_TOKEN") from exc
        except Exception as exc:  # noqa: BLE001 - wechatpy raises base64/padding errors on a garbled echostr
            raise BadRequest(f"WeCom echostr could not be decrypted ({type(exc).__name__})") from exc

    def open(self, q: dict, body: bytes):
        from wechatpy.enterprise import parse_message

        return _parse(parse_message, _decrypt(self.crypto, body, q))

    def seal(self, q: dict, reply_xml: str) -> str:
        return self.crypto.encrypt_message(reply_xml, q.get("nonce", ""), q.get("timestamp"))

    def create_reply(self, text: str, message) -> str:
        from wechatpy.enterprise.replies import TextReply

        return TextReply(content=text, message=message).render()


def _decrypt(crypto, body: bytes, q: dict) -> str:
    from wechatpy.enterprise.exceptions import InvalidCorpIdException
    from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException

    try:
        return crypto.decrypt_message(body, q.get("msg_signature", ""), q.get("timestamp", ""), q.get("nonce", ""))
    except (InvalidSignatureException, InvalidAppIdException, InvalidCorpIdException) as exc:
        raise Forbidden(f"WeChat message signature or app id does not match the configured token/key "
                        f"({type(exc).__name__})") from exc
    except Exception as exc:  # noqa: BLE001 - xmltodict, base64 and padding errors all mean a garbled body
        raise BadRequest(f"WeChat message body is not a valid encrypted XML message ({type(exc).__name__}: {exc})") from exc


def _parse(parse, xml):
    try:
        message = parse(xml)
    except Exception as exc:  # noqa: BLE001 - xmltodict raises ExpatError, missing fields KeyError
        raise BadRequest(f"WeChat message body is not valid XML with MsgType ({type(exc).__name__}: {exc})") from exc
    if message is None:
        raise BadRequest("WeChat message body is empty")
    return message


class WeChatSender:
    """Sends text through the platform's API: the Official Account's customer-service messages, or
    WeCom's ``message/send``. ``reply_to`` = ``{"channel": "wechat"|"wecom", "user": openid/userid}``."""

    def __init__(self, settings, platform: str, store, session=None):
        self.platform = platform
        self.settings = settings
        self.store = store               # the job store: options offered
        self._session = session          # wechatpy session storage (Redis shares the access token)
        self._client = None

    def client(self):
        if self._client is None:
            self._client = _api_client(self.settings, self.platform, self._session)
        return self._client

    def send(self, reply_to: dict, messages: list[dict | BotMessage]) -> None:
        text, options = as_text([m if isinstance(m, BotMessage) else bot_message(m) for m in messages])
        remember_options(self.store, f"{self.platform}-{reply_to['user']}", options)
        for piece in split_text(text):
            if self.platform == "wecom":
                self.client().message.send_text(self.settings.wecom_agent_id, reply_to["user"], piece)
            else:
                self.client().message.send_text(reply_to["user"], piece)


def _api_client(settings, platform: str, session):
    """wechatpy's client, its base URL (and token URL) taken from the settings."""
    if platform == "wecom":
        from wechatpy.enterprise import WeChatClient as WeComClient

        class Client(WeComClient):
            API_BASE_URL = settings.wecom_api_url

            def fetch_access_token(self):
                return self._fetch_access_token(url=self.API_BASE_URL + "gettoken",
                                                params={"corpid": self.corp_id, "corpsecret": self.secret})

        return Client(settings.wecom_corp_id, settings.wecom_secret, session=session, timeout=10)
    from wechatpy import WeChatClient

    class OAClient(WeChatClient):
        API_BASE_URL = settings.wechat_api_url

        def fetch_access_token(self):
            return self._fetch_access_token(url=self.API_BASE_URL + "token", params={
                "grant_type": "client_credential", "appid": self.appid, "secret": self.secret})

    return OAClient(settings.wechat_app_id, settings.wechat_app_secret, session=session, timeout=10)


def inbound_of(platform: str, message, budget_s: float) -> Inbound | None:
    """The Rasa turn a WeChat message asks for: text as is, a subscribe event as a greeting."""
    sender = f"{platform}-{message.source}"
    reply_to = {"channel": platform, "user": message.source}
    budget = max(0.5, budget_s - BUDGET_MARGIN_S)
    if message.type == "text":
        return Inbound(platform, str(message.id), sender, message.content or "", reply_to, budget)
    if message.type == "event" and message.event in ("subscribe", "subscribe_scan", "enter_agent"):
        # events have no MsgId: WeChat's advice is FromUserName + CreateTime
        return Inbound(platform, f"{message.source}-{message.create_time}", sender, "/greet", reply_to, budget)
    return None


class WeChatHandler:
    """One platform's callback logic (``OfficialAccount`` or ``WeCom``), independent of the web framework."""

    def __init__(self, platform, relay: Relay, replies: DeadlineReplies, budget_s: float):
        self.platform = platform
        self.relay = relay
        self.replies = replies
        self.budget_s = budget_s

    def post(self, q: dict, body: bytes, received: float | None = None) -> str:
        """The HTTP response body: a (sealed) passive reply, or ``success``."""
        received = received or time.time()
        message = self.platform.open(q, body)
        inbound = inbound_of(self.platform.name, message, self.budget_s)
        if inbound is None:
            return self.platform.seal(q, self.platform.create_reply(NOT_TEXT["zh"], message))
        inbound.text = chosen_option(self.relay.store, inbound.sender, inbound.text)
        messages = self.replies.answer(inbound, received + self.budget_s)
        if messages is None:
            return "success"
        text, options = as_text(messages)
        if not text.strip():
            return "success"
        remember_options(self.relay.store, inbound.sender, options)
        pieces = split_text(text)
        if len(pieces) > 1:       # one passive reply per message: the rest goes through the API
            self.replies.push_later(inbound, [{"text": p} for p in pieces[1:]])
        return self.platform.seal(q, self.platform.create_reply(pieces[0], message))


def router(path: str, handler: WeChatHandler):
    """``GET path`` (URL check) and ``POST path`` (messages) of one platform."""
    from fastapi import APIRouter, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import PlainTextResponse, Response

    r = APIRouter()

    @r.get(path)
    def verify(request: Request):
        return PlainTextResponse(handler.platform.verify(dict(request.query_params)))

    @r.post(path)
    async def receive(request: Request):
        received = time.time()
        body = await request.body()
        reply = await run_in_threadpool(handler.post, dict(request.query_params), body, received)
        return Response(reply, media_type="text/plain" if reply == "success" else "application/xml")

    return r
