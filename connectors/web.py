"""The web demo: a Gradio chat page in front of Rasa's REST channel.

Each browser session is one Rasa conversation. The page shows the bot's answers with their
citations as links (to the cited file, served by this app under ``/kb/``), renders Rasa buttons as
clickable options, records 👍/👎 on an answer (conversation id + answer id, in the database), has
a zh/en switch, and picks up late answers (delivered by a worker into the conversation) by polling
the conversation's tracker once a second.
"""

# No `from __future__ import annotations` here: Gradio injects event data (gr.SelectData,
# gr.LikeData) by looking at the handlers' annotations, which must be real classes.
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from connectors.rest import BotMessage, RasaRestClient, RasaUnavailable

log = logging.getLogger(__name__)

UI = {
    "zh": {"title": "CloudMax 智能客服", "placeholder": "输入您的问题，例如：怎么申请退款？", "send": "发送",
           "intro": "您好！我可以查订单、开发票、重置密码，或回答产品问题。",
           "examples": ["怎么申请退款", "专业版多少钱一个月", "帮我查下订单CM100003", "转人工"],
           "thanks": "感谢反馈！", "error": "暂时连不上客服系统，请稍后再试。"},
    "en": {"title": "CloudMax assistant", "placeholder": "Ask a question, e.g. how do I get a refund?", "send": "Send",
           "intro": "Hi! I can check an order, send an invoice, reset a password or answer product questions.",
           "examples": ["How do I get a refund?", "How much is the Pro plan?", "Status of order CM100007", "human"],
           "thanks": "Thanks for the feedback!", "error": "The assistant is not reachable right now; please try again."},
}
_SOURCES_HEAD = re.compile(r"^(Sources:|来源：)\s*$")
_SOURCE_LINE = re.compile(r"^\[(\d+)\] (.+) \(([^()]+)\)$")


@dataclass
class Session:
    """One browser tab: its Rasa conversation, and the chat as the server knows it. Every event
    returns a copy of ``history`` taken at its end, under the lock, so a late poll can never put an
    older chat back on the page."""

    sender: str = field(default_factory=lambda: f"web-{uuid.uuid4().hex[:12]}")
    seen: float = 0.0                 # tracker timestamp of the last bot event on the page
    history: list[dict] = field(default_factory=list)
    answers: dict[int, str] = field(default_factory=dict)   # chat index -> answer id
    pending: dict[str, int] = field(default_factory=dict)   # answer id -> index of its "looking that up"

    def __post_init__(self) -> None:
        self.lock = threading.Lock()   # not a field: Gradio's config code runs dataclasses.asdict on State values

    def snapshot(self) -> list[dict]:
        return [dict(m) for m in self.history]

    def __deepcopy__(self, memo) -> "Session":
        """Gradio deep-copies a State's default value once per browser tab (a lock cannot be copied):
        each copy is a new conversation of its own."""
        return Session()


def source_link(source: str) -> str:
    """A link to a cited file (FAQ ids keep their anchor)."""
    path, _, anchor = source.partition("#")
    return f"/kb/{quote(path)}" + (f"#{quote(anchor)}" if anchor else "")


def render(message: BotMessage) -> str:
    """The bot's text with its 'Sources:' lines turned into Markdown links."""
    out, in_sources = [], False
    for line in message.text.splitlines():
        if _SOURCES_HEAD.match(line.strip()):
            in_sources = True
            out.append(f"**{line.strip()}**")
            continue
        m = _SOURCE_LINE.match(line.strip()) if in_sources else None
        if m:
            n, title, source = m.groups()
            out.append(f"- [{n}] [{title}]({source_link(source)})")
        else:
            out.append(line)
    return "\n".join(out)


def to_chat(messages: list[BotMessage]) -> list[tuple[dict, str | None]]:
    """Rasa's messages as chat entries: a text message and the JSON that follows it become one entry
    (the JSON carries the answer id, or the id of an answer still on its way as ``pending:<id>``);
    buttons become options."""
    entries: list[tuple[dict, str | None]] = []
    for m in messages:
        if not m.text and m.custom is not None and entries:
            prev, _ = entries[-1]
            key = m.custom.get("answer_key") or (f"pending:{m.custom['pending_answer']}"
                                                 if m.custom.get("pending_answer") else None)
            entries[-1] = (prev, key)
            continue
        if not m.text:
            continue
        entry = {"role": "assistant", "content": render(m)}
        if m.buttons:
            entry["options"] = [{"label": b.get("title", ""), "value": b.get("payload", b.get("title", ""))}
                                for b in m.buttons]
        entries.append((entry, (m.custom or {}).get("answer_key")))
    return entries


def message_text(message: dict) -> str:
    """A chat message's text, whether its content is a string or a list of parts (as Gradio returns it)."""
    content = message.get("content", "")
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def option_label(history: list[dict], value: str) -> str:
    for message in reversed(history):
        for option in message.get("options") or []:
            if option.get("value") == value:
                return option.get("label") or value
    return value


class WebChat:
    """The page's behaviour, independent of Gradio (so it can be driven directly too)."""

    def __init__(self, client: RasaRestClient, repository=None):
        self.client = client
        self.repository = repository

    def send(self, session: Session, text: str, lang: str, shown: str | None = None) -> list[dict]:
        """One turn; ``shown`` is what the page shows as the user's message (a button's label)."""
        text = (text or "").strip()
        if not text:
            return session.snapshot()
        with session.lock:
            session.history.append({"role": "user", "content": shown or text})
        try:
            replies = self.client.send(session.sender, text, {"channel": "web", "ui_language": lang})
            seen = self._last_bot_timestamp(session)
        except RasaUnavailable as exc:
            log.error("web chat: %s", exc)
            with session.lock:
                session.history.append({"role": "assistant", "content": UI[lang]["error"]})
                return session.snapshot()
        with session.lock:
            session.seen = max(session.seen, seen)
            for entry, answer_id in to_chat(replies):
                session.history.append(entry)
                index = len(session.history) - 1
                if answer_id and answer_id.startswith("pending:"):
                    session.pending[answer_id.removeprefix("pending:")] = index
                session.answers[index] = answer_id or f"turn-{index}"
            return session.snapshot()

    def poll(self, session: Session) -> list[dict] | None:
        """The chat with late answers that arrived since the page last looked; ``None`` when nothing did."""
        if not session.pending:
            return None
        try:
            late = self.client.bot_messages_since(session.sender, session.seen)
        except Exception as exc:  # noqa: BLE001 - a missed poll is retried a second later
            log.warning("web chat poll failed: %s", exc)
            return None
        with session.lock:
            late = [(ts, m) for ts, m in late if ts > session.seen]
            if not late:
                return None
            session.seen = max(ts for ts, _ in late)
            for entry, answer_id in to_chat([m for _, m in late]):
                index = session.pending.pop(answer_id, None) if answer_id else None
                if index is not None and index < len(session.history):
                    session.history[index] = entry   # the answer takes the place of its "looking that up"
                else:
                    session.history.append(entry)
                    index = len(session.history) - 1
                session.answers[index] = answer_id or f"late-{index}"
            return session.snapshot()

    def feedback(self, session: Session, index: int, liked: bool) -> None:
        with session.lock:
            if self.repository is None or not (0 <= index < len(session.history)):
                return
            answer_id = session.answers.get(index, f"turn-{index}")
            text = message_text(session.history[index])
        self.repository.record_feedback(session.sender, answer_id, 1 if liked else -1, text, channel="web")

    def _last_bot_timestamp(self, session: Session) -> float:
        events = self.client.tracker(session.sender).get("events", [])
        stamps = [e.get("timestamp", 0.0) for e in events if e.get("event") == "bot"]
        return max(stamps, default=time.time())


def create_demo(chat: WebChat, poll_s: float = 1.0):
    import gradio as gr

    with gr.Blocks(title="CloudMax assistant") as demo:
        # one Rasa conversation per browser tab: a value, not a factory (a factory's state is set by a
        # page-load event, and an event that comes first, such as the poll timer's, raced it)
        session = gr.State(Session())
        lang = gr.Radio([("中文", "zh"), ("English", "en")], value="zh", label="Language / 语言",
                        elem_id="language")
        title = gr.Markdown(f"## {UI['zh']['title']}\n{UI['zh']['intro']}", elem_id="title")
        chatbot = gr.Chatbot(elem_id="chat", height=520, feedback_options=("Like", "Dislike"))
        with gr.Row():
            box = gr.Textbox(placeholder=UI["zh"]["placeholder"], show_label=False, scale=8, elem_id="message")
            send = gr.Button(UI["zh"]["send"], variant="primary", scale=1, elem_id="send")
        examples = gr.Dataset(components=[box], samples=[[e] for e in UI["zh"]["examples"]], label="",
                              elem_id="examples")
        thanks = gr.Markdown("", elem_id="feedback-status")

        def on_send(s, text, lg):
            return chat.send(s, text, lg), ""

        def on_option(s, lg, evt: gr.SelectData):
            value = str(evt.value)
            return chat.send(s, value, lg, shown=option_label(s.snapshot(), value))

        def on_like(s, lg, data: gr.LikeData):
            index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
            chat.feedback(s, int(index), bool(data.liked))
            return UI[lg]["thanks"]

        def on_tick(s):
            fresh = chat.poll(s)
            return gr.skip() if fresh is None else fresh

        def on_lang(lg):
            ui = UI[lg]
            return (f"## {ui['title']}\n{ui['intro']}", gr.update(placeholder=ui["placeholder"]),
                    gr.update(value=ui["send"]), gr.update(samples=[[e] for e in ui["examples"]]))

        send.click(on_send, [session, box, lang], [chatbot, box])
        box.submit(on_send, [session, box, lang], [chatbot, box])
        examples.click(lambda sample: sample[0], [examples], [box])
        chatbot.option_select(on_option, [session, lang], [chatbot])
        chatbot.like(on_like, [session, lang], [thanks])
        lang.change(on_lang, [lang], [title, box, send, examples])
        gr.Timer(poll_s).tick(on_tick, [session], [chatbot])
    return demo


def create_web_app(settings, chat: WebChat | None = None):
    """FastAPI app: the Gradio page at ``/`` and the knowledge base's files under ``/kb/``."""
    import gradio as gr
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import PlainTextResponse

    if chat is None:
        from assistant.db.repository import Repository

        repo = Repository.from_url(settings.effective_database_url, settings.db_timeout_s)
        repo.create_schema()
        chat = WebChat(RasaRestClient(settings.rasa_url, token=settings.rasa_api_token), repo)
    app = FastAPI(title="CloudMax assistant web demo")
    kb_root = Path(settings.kb_dir).resolve()

    @app.get("/kb/{path:path}", response_class=PlainTextResponse)
    def kb_file(path: str) -> str:
        target = (kb_root / path).resolve()
        if not target.is_relative_to(kb_root) or not target.is_file():
            raise HTTPException(404, f"no knowledge-base file {path!r}")
        return target.read_text(encoding="utf-8", errors="replace")

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    return gr.mount_gradio_app(app, create_demo(chat), path="/")
