"""Invoice requests: a form for order number + e-mail, then a queued invoice in the database."""

from __future__ import annotations

import logging
import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.messages import STATUS_ZH, language_of, say
from actions.orders import OrderNumberSlot
from actions.services import get_services, run_blocking

log = logging.getLogger(__name__)
EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")


class ValidateInvoiceForm(OrderNumberSlot, FormValidationAction):
    def name(self) -> str:
        return "validate_invoice_form"

    async def extract_email(self, dispatcher, tracker: Tracker, domain: DomainDict) -> dict:
        if tracker.get_slot("requested_slot") != "email":
            return {}
        if next(tracker.get_latest_entity_values("email"), None):
            return {}
        text = (tracker.latest_message.get("text") or "").strip()
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if intent == "inform" or "@" in text:
            return {"email": text}
        return {}

    async def validate_email(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                             domain: DomainDict) -> dict:
        email = str(value or "").strip().strip(".").lower()
        if not EMAIL.match(email) or len(email) > 254:
            dispatcher.utter_message(text=say("email_invalid", language_of(tracker), value=str(value)[:60]))
            return {"email": None}
        return {"email": email}


class ActionRequestInvoice(Action):
    def name(self) -> str:
        return "action_request_invoice"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list:
        lang = language_of(tracker)
        number, email = tracker.get_slot("order_number"), tracker.get_slot("email")
        repo = get_services().repository
        try:
            order = await run_blocking(repo.get_order, number)
            if order is not None and order.status != "paid":
                dispatcher.utter_message(text=say("invoice_not_paid", lang, number=number, status=order.status,
                                                  status_zh=STATUS_ZH.get(order.status, order.status)))
                return [SlotSet("order_number", None)]
            request_id, created = await run_blocking(repo.request_invoice, number, email)
        except Exception:
            log.exception("invoice request failed for %s", number)
            dispatcher.utter_message(text=say("service_error", lang))
            return []
        key = "invoice_queued" if created else "invoice_exists"
        dispatcher.utter_message(text=say(key, lang, number=number, email=email, id=request_id))
        return []
