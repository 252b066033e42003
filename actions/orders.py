"""Order status: the form's validation and the answer."""

from __future__ import annotations

import logging
import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.messages import CYCLE_ZH, STATUS_ZH, language_of, say
from actions.services import get_services, run_blocking

log = logging.getLogger(__name__)
ORDER_NUMBER = re.compile(r"^CM\d{6}$")
_LOOSE = re.compile(r"(?i)(?<![a-z0-9])cm-?\d{6}(?!\d)")


def normalise_order_number(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    m = _LOOSE.search(value)
    return m.group(0).upper().replace("-", "") if m else None


async def check_order_number(value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> dict:
    """Shared by both forms: a well-formed number of an existing order, else re-ask."""
    lang = language_of(tracker)
    number = normalise_order_number(value)
    if number is None:
        dispatcher.utter_message(text=say("order_bad_format", lang, value=str(value)[:40]))
        return {"order_number": None}
    try:
        order = await run_blocking(get_services().repository.get_order, number)
    except Exception:
        log.exception("order lookup failed for %s", number)
        dispatcher.utter_message(text=say("service_error", lang))
        return {"order_number": None}
    if order is None:
        dispatcher.utter_message(text=say("order_not_found", lang, number=number))
        return {"order_number": None}
    return {"order_number": number}


def _looks_like_an_answer(tracker: Tracker) -> bool:
    """Free text is taken as the requested value only when the user seems to be answering."""
    intent = (tracker.latest_message.get("intent") or {}).get("name")
    text = tracker.latest_message.get("text") or ""
    return intent == "inform" or bool(re.search(r"\d", text))


class OrderNumberSlot:
    """Form-validation mixin: extracts and checks the ``order_number`` slot."""

    async def extract_order_number(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                   domain: DomainDict) -> dict:
        if tracker.get_slot("requested_slot") != "order_number":
            return {}
        if next(tracker.get_latest_entity_values("order_number"), None):
            return {}  # the slot mapping already takes the entity
        if _looks_like_an_answer(tracker):
            return {"order_number": (tracker.latest_message.get("text") or "").strip()}
        return {}

    async def validate_order_number(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                    domain: DomainDict) -> dict:
        return await check_order_number(value, dispatcher, tracker)


class ValidateOrderStatusForm(OrderNumberSlot, FormValidationAction):
    def name(self) -> str:
        return "validate_order_status_form"


class ActionOrderStatus(Action):
    def name(self) -> str:
        return "action_order_status"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list:
        lang = language_of(tracker)
        number = tracker.get_slot("order_number")
        try:
            order = await run_blocking(get_services().repository.get_order, number) if number else None
        except Exception:
            log.exception("order lookup failed for %s", number)
            dispatcher.utter_message(text=say("service_error", lang))
            return []
        if order is None:
            dispatcher.utter_message(text=say("order_not_found", lang, number=number or "?"))
            return []
        dispatcher.utter_message(text=say(
            "order_status", lang, number=order.number, plan=order.plan, plan_zh=order.plan_zh,
            cycle=order.billing_cycle, cycle_zh=CYCLE_ZH.get(order.billing_cycle, order.billing_cycle),
            amount=order.amount, currency=order.currency, created=order.created,
            status=order.status, status_zh=STATUS_ZH.get(order.status, order.status),
        ))
        return []
