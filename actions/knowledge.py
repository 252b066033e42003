"""Knowledge answers: the best passage of the help center, with its source."""

from __future__ import annotations

import logging

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.messages import language_of, say
from actions.services import get_services, run_blocking

log = logging.getLogger(__name__)


class ActionAnswerKnowledge(Action):
    def name(self) -> str:
        return "action_answer_knowledge"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list:
        lang = language_of(tracker)
        question = tracker.latest_message.get("text") or ""
        try:
            answer = await run_blocking(get_services().answerer.answer, question, lang)
        except Exception:
            log.exception("knowledge retrieval failed")
            dispatcher.utter_message(text=say("service_error", lang))
            return []
        if answer.refused:
            dispatcher.utter_message(text=say("kb_no_answer", lang))
            return []
        dispatcher.utter_message(
            text=format_answer(answer, lang),
            json_message={"answer_kind": answer.kind,
                          "citations": [{"n": c.n, "title": c.title, "heading": c.heading, "source": c.source}
                                        for c in answer.citations]},
        )
        return []


def format_answer(answer, lang: str) -> str:
    """The answer, then one line per cited source: [n] title › heading (source)."""
    lines = [answer.text, "", say("kb_sources", lang)]
    for c in answer.citations:
        heading = f" › {c.heading}" if c.heading else ""
        lines.append(f"[{c.n}] {c.title}{heading} ({c.source})")
    return "\n".join(lines)
