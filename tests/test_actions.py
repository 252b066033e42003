"""Action-level checks that the conversations cannot reach: the fallback telling a dead NLU service
apart from a message not understood, and the helpers the forms rely on."""

from __future__ import annotations

import asyncio

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.fallback import COUNTERS, ActionDefaultFallback
from actions.messages import detect_language
from actions.orders import normalise_order_number


def tracker(text: str, intent: str | None, slots: dict | None = None) -> Tracker:
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.0} if intent is not None else {},
              "entities": []}
    return Tracker("s1", slots or {}, latest, [], False, None, {}, "action_listen")


def run(action, t: Tracker) -> tuple[list, list]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, t, {}))
    return dispatcher.messages, events


def test_fallback_reports_an_unreachable_nlu_service(caplog):
    before = COUNTERS.nlu_unavailable
    messages, events = run(ActionDefaultFallback(), tracker("你好", ""))
    assert "系统暂时无法理解" in messages[0]["text"]
    assert COUNTERS.nlu_unavailable == before + 1
    assert "NLU service unreachable" in caplog.text
    assert events[0]["event"] == "rewind"


def test_fallback_for_a_message_not_understood():
    before = COUNTERS.not_understood
    messages, _ = run(ActionDefaultFallback(), tracker("blorp", "greet", {"language": "en"}))
    assert "rephrase" in messages[0]["text"]
    assert COUNTERS.not_understood == before + 1


@pytest.mark.parametrize("value,expected", [
    ("CM100001", "CM100001"), ("cm-100002", "CM100002"), ("订单号是CM100003呀", "CM100003"),
    ("CM1000011", None), ("100001", None), (None, None), (42, None),
])
def test_order_number_normalisation(value, expected):
    assert normalise_order_number(value) == expected


def test_language_detection():
    assert detect_language("我的pro plan多少钱") == "zh"
    assert detect_language("how much") == "en"
