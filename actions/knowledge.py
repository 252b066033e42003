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
        if answer is None:
            dispatcher.utter_message(text=say("kb_no_answer", lang))
            return []
        heading = f" › {answer.heading}" if answer.heading else ""
        dispatcher.utter_message(
            text=say("kb_answer", lang, text=answer.text, title=answer.title, heading=heading, source=answer.source),
            json_message={"citations": [{"title": answer.title, "heading": answer.heading,
                                         "source": answer.source, "score": round(answer.score, 4)}]},
        )
        return []
