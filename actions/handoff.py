"""Handoff to a human: a ticket with the conversation so far."""

from __future__ import annotations

import logging

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.messages import language_of, say
from actions.services import get_services, run_blocking

log = logging.getLogger(__name__)
MAX_TURNS = 50


def transcript(tracker: Tracker) -> list[dict]:
    turns = []
    for event in tracker.events:
        if event.get("event") == "user":
            turns.append({"role": "user", "text": event.get("text") or "",
                          "intent": ((event.get("parse_data") or {}).get("intent") or {}).get("name")})
        elif event.get("event") == "bot" and event.get("text"):
            turns.append({"role": "bot", "text": event["text"]})
    return turns[-MAX_TURNS:]


class ActionHandoff(Action):
    def name(self) -> str:
        return "action_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list:
        lang = language_of(tracker)
        channel = tracker.get_latest_input_channel() or ""
        reason = tracker.latest_message.get("text") or ""
        turns = transcript(tracker)
        try:
            ticket_id = await run_blocking(get_services().repository.create_ticket, tracker.sender_id, channel,
                                           lang, reason, turns)
        except Exception:
            log.exception("ticket creation failed")
            dispatcher.utter_message(text=say("service_error", lang))
            return []
        dispatcher.utter_message(text=say("handoff", lang, id=ticket_id))
        # for channels with an agents' room (Slack): who, which ticket, the last turns
        dispatcher.utter_message(json_message={"handoff": {"ticket_id": ticket_id, "sender_id": tracker.sender_id,
                                                           "lang": lang, "transcript": turns[-10:]}})
        return []
