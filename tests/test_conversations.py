"""Multi-turn conversations in Chinese and English through Rasa's REST channel, against the real
stack (NLU service -> Rasa 3.6 -> action server -> database / Chroma), run on both backends."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

pytestmark = pytest.mark.stack


@dataclass
class Turn:
    user: str
    expect: tuple[str, ...]  # regexes that must all match the bot's combined reply


def T(user: str, *expect: str) -> Turn:
    return Turn(user, expect)


CONVERSATIONS: dict[str, list[Turn]] = {
    # ------------------------------------------------------------------ Chinese
    "zh_order_status_wrong_number_reasked": [
        T("你好", r"CloudMax 智能客服"),
        T("我想查一下订单状态", r"请提供您的订单号"),
        T("CM999999", r"没有找到订单 CM999999", r"请提供您的订单号"),
        T("CM100003", r"订单 CM100003", r"基础版", r"已支付"),
    ],
    "zh_order_status_number_in_first_message": [
        T("帮我查下订单CM100005到哪一步了", r"订单 CM100005", r"商业版", r"待支付"),
        T("谢谢", r"不客气"),
    ],
    "zh_invoice_form_with_bad_email": [
        T("我要开发票", r"订单号"),
        T("订单号是CM100002", r"邮箱"),
        T("邮箱是 li.wei@", r"不是有效的邮箱|邮箱"),
        T("li.wei@example.com", r"已为订单 CM100002 申请发票", r"li\.wei@example\.com"),
    ],
    "zh_invoice_for_unpaid_order": [
        T("订单CM100004能开发票吗", r"邮箱"),
        T("zhang.san@qq.com", r"支付失败", r"无法开具发票"),
    ],
    "zh_password_reset_with_email": [
        T("我忘记密码了，登录邮箱是wangfang@163.com", r"忘记密码", r"30 分钟", r"已向 wangfang@163\.com 发送了重置链接"),
    ],
    "zh_plan_prices": [
        T("专业版多少钱一个月", r"专业版", r"¥45"),
        T("你们都有哪些套餐，价格多少", r"基础版", r"¥15", r"企业版", r"定制报价"),
    ],
    "zh_knowledge_answers_with_source": [
        T("怎么申请退款", r"14 ?天", r"来源："),
        T("你们的数据是怎么加密的", r"AES-256", r"来源："),
    ],
    "zh_out_of_scope_then_bot_challenge": [
        T("今天北京天气怎么样", r"超出了我的服务范围"),
        T("你是机器人吗", r"智能客服机器人"),
    ],
    "zh_handoff_records_ticket": [
        T("我的文件同步不了，试了好几次了", r"."),
        T("转人工", r"工单号 #\d+"),
    ],
    "zh_form_cancelled": [
        T("查订单", r"请提供您的订单号"),
        T("不用了", r"已取消"),
        T("再见", r"再见"),
    ],
    "zh_bare_order_number_then_status": [
        T("你好", r"CloudMax"),
        T("CM100003", r"查询订单状态或申请发票"),
        T("查下这个订单的状态", r"订单 CM100003", r"已支付"),
    ],
    # ------------------------------------------------------------------ English
    "en_order_status_wrong_number_reasked": [
        T("hi", r"CloudMax assistant"),
        T("can you check my order status", r"order number"),
        T("CM123456", r"couldn't find an order CM123456", r"order number"),
        T("it's CM100007", r"Order CM100007", r"Pro plan", r"paid"),
    ],
    "en_order_status_number_in_first_message": [
        T("whats the status of order cm100009", r"Order CM100009", r"cancelled"),
        T("thanks!", r"welcome"),
    ],
    "en_invoice_form": [
        T("I need an invoice please", r"order number"),
        T("CM100008", r"e-mail"),
        T("send it to emma.jones@example.com", r"invoice for order CM100008", r"emma\.jones@example\.com"),
    ],
    "en_invoice_bad_email_then_good": [
        T("invoice for CM100010", r"e-mail"),
        T("raj.patel at gmail", r"e-mail"),
        T("raj.patel@gmail.com", r"invoice for order CM100010"),
    ],
    "en_password_reset_steps": [
        T("I forgot my password", r"Forgot password", r"30 minutes"),
    ],
    "en_plan_prices": [
        T("how much is the business plan", r"Business", r"\$19\.99 per user"),
        T("what plans do you have and how much", r"Basic", r"\$2\.99", r"Enterprise", r"custom quote"),
    ],
    "en_knowledge_answers_with_source": [
        T("how do I export all my data", r"(?i)export", r"Sources:"),
        T("what happens if your service goes down", r"(?i)(99\.9|credit|status)", r"Sources:"),
    ],
    "en_out_of_scope": [
        T("tell me a joke about cats", r"outside what I can help with"),
    ],
    "en_handoff_records_ticket": [
        T("hello", r"CloudMax"),
        T("i want to talk to a real person", r"human agent \(ticket #\d+\)"),
    ],
    "en_bot_challenge_and_goodbye": [
        T("are you a bot?", r"virtual assistant"),
        T("ok bye", r"Goodbye"),
    ],
}


def run_conversation(stack, turns: list[Turn]) -> tuple[str, list[str]]:
    sender = stack.new_sender()
    replies = []
    for turn in turns:
        reply = "\n".join(m.text for m in stack.client.send(sender, turn.user) if m.text)
        replies.append(reply)
        for pattern in turn.expect:
            assert re.search(pattern, reply), f"user: {turn.user!r}\nbot: {reply!r}\nexpected /{pattern}/"
    return sender, replies


@pytest.mark.parametrize("name", sorted(CONVERSATIONS))
def test_conversation(stack, name):
    run_conversation(stack, CONVERSATIONS[name])


def test_languages_are_balanced():
    zh = [n for n in CONVERSATIONS if n.startswith("zh_")]
    en = [n for n in CONVERSATIONS if n.startswith("en_")]
    assert len(zh) >= 10 and len(en) >= 10


def test_invoice_request_is_stored_once(stack):
    turns = CONVERSATIONS["en_invoice_form"]
    run_conversation(stack, turns)
    sender, replies = run_conversation(stack, [
        T("I need an invoice for CM100008", r"e-mail"),
        T("emma.jones@example.com", r"already requested"),
    ])
    rows = stack.repository.invoice_requests_for("CM100008")
    assert [r["email"] for r in rows].count("emma.jones@example.com") == 1


def test_handoff_ticket_holds_the_conversation(stack):
    sender, _ = run_conversation(stack, CONVERSATIONS["zh_handoff_records_ticket"])
    tickets = stack.repository.tickets_for(sender)
    assert len(tickets) == 1
    texts = [t["text"] for t in tickets[0]["transcript"]]
    assert "我的文件同步不了，试了好几次了" in texts and "转人工" in texts
    assert any(t["role"] == "bot" for t in tickets[0]["transcript"])


def test_low_confidence_message_falls_back(stack):
    sender = stack.new_sender()
    reply = " ".join(m.text for m in stack.client.send(sender, "/nlu_fallback"))
    assert "rephrase" in reply
    tracker = stack.client.tracker(sender)
    assert tracker["latest_message"]["intent"]["name"] == "nlu_fallback"


def test_greetings_and_small_talk_never_reach_the_knowledge_base(stack):
    sender, _ = run_conversation(stack, [T("你好", r"CloudMax"), T("谢谢", r"不客气"), T("thanks!", r"welcome"),
                                         T("bye", r"Goodbye")])
    actions = [e.get("name") for e in stack.client.tracker(sender)["events"] if e.get("event") == "action"]
    assert "utter_greet" in actions and "action_answer_knowledge" not in actions


def test_tracker_store_keeps_slots_between_turns(stack):
    sender, _ = run_conversation(stack, CONVERSATIONS["zh_order_status_number_in_first_message"])
    tracker = stack.client.tracker(sender)
    assert tracker["slots"]["order_number"] == "CM100005"
    assert tracker["slots"]["language"] == "zh"
