"""The default fallback, overridden to tell a dead NLU service apart from a message not understood.

Rasa turns any failure of the external NLU endpoint into an empty intent, silently; here that
case is logged as an error, counted, and the user is told something is wrong.
"""

from __future__ import annotations

import logging
import threading

from rasa_sdk import Action, Tracker
from rasa_sdk.events import UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.messages import detect_language, say

log = logging.getLogger(__name__)


class FallbackCounters:
    def __init__(self):
        self.nlu_unavailable = 0
        self.not_understood = 0
        self._lock = threading.Lock()

    def count(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)


COUNTERS = FallbackCounters()


class ActionDefaultFallback(Action):
    def name(self) -> str:
        return "action_default_fallback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list:
        # when NLU fails, Rasa's parse data has an empty text; the user event keeps the message
        user_events = [e for e in tracker.events if e.get("event") == "user"]
        text = tracker.latest_message.get("text") or (user_events[-1].get("text") if user_events else "") or ""
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        # without NLU there is no language entity either: judge this message by itself
        lang = detect_language(text) if not intent else (tracker.get_slot("language") or detect_language(text))
        if not intent:
            COUNTERS.count("nlu_unavailable")
            log.error("NLU service unreachable or failing: Rasa got no intent for sender %s; check the NLU "
                      "service (assistant serve-nlu) and endpoints.yml nlu.url", tracker.sender_id)
            dispatcher.utter_message(text=say("nlu_unavailable", lang))
        else:
            COUNTERS.count("not_understood")
            dispatcher.utter_message(text=say("default", lang))
        return [UserUtteranceReverted()]
