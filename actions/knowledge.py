"""Knowledge answers: the help center's answer with its sources, now or, when generation is slow,
a moment later through a worker (``action_deliver_knowledge_answer``)."""

from __future__ import annotations

import logging

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.messages import human_button, language_of, say
from actions.services import get_services, run_blocking
from assistant.tasks.jobs import ANSWER_ENTITY, KEY_ENTITY, AnswerPayload

log = logging.getLogger(__name__)


class ActionAnswerKnowledge(Action):
    def name(self) -> str:
        return "action_answer_knowledge"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list:
        lang = language_of(tracker)
        question = tracker.latest_message.get("text") or ""
        services = get_services()
        metadata = tracker.latest_message.get("metadata") or {}
        budget = channel_budget(metadata, services.settings.answer_budget_s)
        reply_to = metadata.get("reply_to") if isinstance(metadata.get("reply_to"), dict) else None
        try:
            turns = services.knowledge
            result = await run_blocking(turns.answer, tracker.sender_id, question, lang, metadata.get("message_id"),
                                        _received_at(tracker), budget, reply_to, timeout=budget + 5)
        except Exception as exc:  # noqa: BLE001 - every failure gets a clear reply, never a crash
            unavailable = services.is_outage(exc)
            log.error("knowledge turn failed (%s): %s", "broker down" if unavailable else "error", exc)
            dispatcher.utter_message(text=say("kb_unavailable" if unavailable else "service_error", lang))
            return []
        if result.status == "pending":
            dispatcher.utter_message(text=say("kb_pending", lang), json_message={"pending_answer": result.key})
            return []
        utter_answer(dispatcher, result.answer, lang, result.key)
        return []


class ActionDeliverKnowledgeAnswer(Action):
    """Runs when a worker triggers ``EXTERNAL_knowledge_answer``; the tracker is the record of what
    was said, so an answer whose key is already in it is not said again."""

    def name(self) -> str:
        return "action_deliver_knowledge_answer"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list:
        key = next(tracker.get_latest_entity_values(KEY_ENTITY), None)
        raw = next(tracker.get_latest_entity_values(ANSWER_ENTITY), None)
        if not key or not isinstance(raw, dict):
            log.warning("external answer without %s/%s entities in %s", KEY_ENTITY, ANSWER_ENTITY, tracker.sender_id)
            return []
        if any(_answer_key(e) == key for e in tracker.events):
            log.info("answer %s already in conversation %s: not repeated", key, tracker.sender_id)
            return []
        payload = AnswerPayload.from_dict(raw)
        utter_answer(dispatcher, payload.answer, payload.lang, key)
        return []


MAX_CHANNEL_BUDGET_S = 4.5   # WeChat's 5-second limit, less the way back


def channel_budget(metadata: dict, default: float) -> float:
    """A channel may ask for a longer (or shorter) wait for the answer: WeChat prefers a passive reply."""
    try:
        asked = float(metadata.get("answer_budget_s") or 0)
    except (TypeError, ValueError):
        return default
    return min(asked, MAX_CHANNEL_BUDGET_S) if asked > 0 else default


def _received_at(tracker: Tracker) -> float | None:
    """When Rasa received the message this turn answers: the budget counts from there."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return event.get("timestamp")
    return None


def _answer_key(event: dict) -> str | None:
    if event.get("event") != "bot":
        return None
    return ((event.get("data") or {}).get("custom") or {}).get("answer_key")


def utter_answer(dispatcher: CollectingDispatcher, answer, lang: str, key: str | None) -> None:
    meta = {"answer_key": key} if key else {}
    if answer.refused:
        template = "kb_failed" if answer.reason == "generation failed" else "kb_no_answer"
        dispatcher.utter_message(text=say(template, lang), buttons=[human_button(lang)],
                                 json_message={**meta, "answer_kind": "refused"})
        return
    dispatcher.utter_message(
        text=format_answer(answer, lang),
        json_message={**meta, "answer_kind": answer.kind, "generator": answer.generator,
                      "citations": [{"n": c.n, "title": c.title, "heading": c.heading, "source": c.source}
                                    for c in answer.citations]},
    )


def format_answer(answer, lang: str) -> str:
    """The answer, then one line per cited source: [n] title › heading (source)."""
    lines = [answer.text, "", say("kb_sources", lang)]
    for c in answer.citations:
        heading = f" › {c.heading}" if c.heading else ""
        lines.append(f"[{c.n}] {c.title}{heading} ({c.source})")
    return "\n".join(lines)
