"""Password reset: the steps, and a reset link when the user gave a known account e-mail."""

from __future__ import annotations

import logging

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.messages import language_of, say
from actions.services import get_services, run_blocking

log = logging.getLogger(__name__)


class ActionResetPassword(Action):
    def name(self) -> str:
        return "action_reset_password"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list:
        lang = language_of(tracker)
        lines = [say("password_steps", lang)]
        email = next(tracker.get_latest_entity_values("email"), None)
        if email:
            try:
                known = await run_blocking(get_services().repository.record_password_reset, email, tracker.sender_id)
                lines.append(say("password_sent" if known else "password_unknown_email", lang, email=email))
            except Exception:
                log.exception("password reset record failed")
                lines.append(say("service_error", lang))
        dispatcher.utter_message(text="\n".join(lines))
        return []
