"""Plan prices from the database, in the customer's language and currency (CNY for zh, USD for en)."""

from __future__ import annotations

import logging

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.messages import language_of, say
from actions.services import get_services, run_blocking

log = logging.getLogger(__name__)


def format_price(plan, lang: str) -> str:
    amount = plan.price_cny if lang == "zh" else plan.price_usd
    if amount is None:
        return say("custom_price", lang)
    price = f"¥{amount}" if lang == "zh" else f"${amount}"
    return price + (say("per_user", lang) if plan.per_user else "")


class ActionPlanPrices(Action):
    def name(self) -> str:
        return "action_plan_prices"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list:
        lang = language_of(tracker)
        try:
            plans = await run_blocking(get_services().repository.plans)
        except Exception:
            log.exception("plan lookup failed")
            dispatcher.utter_message(text=say("service_error", lang))
            return []
        asked = {v for v in tracker.get_latest_entity_values("plan")}
        chosen = [p for p in plans if p.code in asked] or plans
        lines = [say("plans_header", lang)]
        lines += [say("plan_line", lang, code=p.code, name_zh=p.name_zh, price=format_price(p, lang), storage=p.storage)
                  for p in chosen]
        lines.append(say("plans_footer", lang))
        dispatcher.utter_message(text="\n".join(lines))
        return []
