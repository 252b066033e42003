"""Bilingual reply templates of the custom actions, and the conversation's language."""

from __future__ import annotations

from rasa_sdk import Tracker

from assistant.lang import detect_language

TEMPLATES: dict[str, dict[str, str]] = {
    "order_status": {
        "en": "Order {number}: {plan} plan ({cycle}), {amount} {currency}, placed on {created}. Status: {status}.",
        "zh": "订单 {number}：{plan_zh}（{cycle_zh}），金额 {amount} {currency}，下单日期 {created}。状态：{status_zh}。",
    },
    "order_not_found": {
        "en": "I couldn't find an order {number}. Please check the number (CM followed by 6 digits) and send it again.",
        "zh": "没有找到订单 {number}。请核对订单号（CM 加 6 位数字）后重新发送。",
    },
    "order_bad_format": {
        "en": "\"{value}\" doesn't look like an order number. It is CM followed by 6 digits, e.g. CM100001.",
        "zh": "“{value}”看起来不是订单号。订单号是 CM 加 6 位数字，例如 CM100001。",
    },
    "email_invalid": {
        "en": "\"{value}\" doesn't look like an e-mail address. Which address should the invoice go to?",
        "zh": "“{value}”不是有效的邮箱地址，请重新提供接收发票的邮箱。",
    },
    "invoice_queued": {
        "en": "Done: the invoice for order {number} will be e-mailed to {email} within 3 business days (request #{id}).",
        "zh": "已为订单 {number} 申请发票，将在 3 个工作日内发送到 {email}（申请编号 #{id}）。",
    },
    "invoice_exists": {
        "en": "An invoice for order {number} was already requested for {email} (request #{id}); it arrives within 3 business days.",
        "zh": "订单 {number} 的发票此前已申请发送到 {email}（申请编号 #{id}），3 个工作日内送达。",
    },
    "invoice_not_paid": {
        "en": "Order {number} is {status}, so there is no invoice for it yet. An invoice is issued once an order is paid.",
        "zh": "订单 {number} 当前状态为{status_zh}，暂时无法开具发票。订单支付后即可申请。",
    },
    "password_steps": {
        "en": "To reset your password: 1) open the CloudMax login page and click \"Forgot password\"; 2) enter your account e-mail; "
              "3) open the reset e-mail (it arrives within 5 minutes; check spam) and follow the link within 30 minutes; "
              "4) choose a new password. After 5 failed logins an account is locked for 15 minutes.",
        "zh": "重置密码步骤：1）打开 CloudMax 登录页，点击“忘记密码”；2）输入账户邮箱；3）5 分钟内会收到重置邮件（请同时查看垃圾邮件），"
              "30 分钟内点击邮件中的链接；4）设置新密码。连续 5 次登录失败会锁定账户 15 分钟。",
    },
    "password_sent": {
        "en": "I've also sent a reset link to {email}.",
        "zh": "我已向 {email} 发送了重置链接。",
    },
    "password_unknown_email": {
        "en": "No CloudMax account uses {email}; please use the e-mail you signed up with.",
        "zh": "没有使用 {email} 注册的 CloudMax 账户，请使用注册时的邮箱。",
    },
    "plans_header": {"en": "CloudMax plans (per month):", "zh": "CloudMax 套餐价格（按月）："},
    "plan_line": {
        "en": "- {code}: {price}, {storage}",
        "zh": "- {name_zh}（{code}）：{price}，{storage}",
    },
    "plans_footer": {
        "en": "Annual billing: pay for 10 months, get 12.",
        "zh": "按年付费：付 10 个月，用 12 个月。",
    },
    "custom_price": {"en": "custom quote", "zh": "定制报价"},
    "per_user": {"en": " per user", "zh": "/每用户"},
    "handoff": {
        "en": "I've passed our conversation to a human agent (ticket #{id}). English support is available 24 hours Monday to Friday; "
              "an agent will reply here or at support@cloudmax.example.",
        "zh": "已为您转接人工客服（工单号 #{id}）。人工客服服务时间为每天 9:00–21:00（北京时间），客服会尽快在这里回复您。",
    },
    "kb_sources": {"en": "Sources:", "zh": "来源："},
    "kb_no_answer": {
        "en": "I couldn't find an answer to that in the CloudMax help center. Would you like me to connect you to a human agent? Just say \"human\".",
        "zh": "抱歉，帮助中心里没有找到这个问题的答案。需要为您转接人工客服吗？回复“转人工”即可。",
    },
    "kb_pending": {
        "en": "Let me look that up for you. The answer will appear here in a moment.",
        "zh": "正在为您查询，答案稍后会发送到这里，请稍候。",
    },
    "kb_failed": {
        "en": "Sorry, I couldn't put that answer together. Would you like me to connect you to a human agent? Just say \"human\".",
        "zh": "抱歉，这个问题暂时没能生成答案。需要为您转接人工客服吗？回复“转人工”即可。",
    },
    "kb_unavailable": {
        "en": "Sorry, knowledge answers are unavailable right now (our answer service is down). Please try again in a few minutes, or say \"human\" to reach a person.",
        "zh": "抱歉，知识库问答服务暂时不可用，请几分钟后再试，或回复“转人工”联系人工客服。",
    },
    "nlu_unavailable": {
        "en": "Sorry, I'm having technical trouble understanding messages right now. Please try again in a minute, or write to support@cloudmax.example.",
        "zh": "抱歉，系统暂时无法理解消息，请稍后再试，或发邮件至 support@cloudmax.example。",
    },
    "default": {
        "en": "Sorry, I didn't get that. Could you rephrase? You can also say \"human\" to reach a person.",
        "zh": "抱歉，我没有理解，能换个说法吗？也可以回复“转人工”。",
    },
    "service_error": {
        "en": "Sorry, that service is not responding right now. Please try again shortly.",
        "zh": "抱歉，相关服务暂时无响应，请稍后再试。",
    },
}

STATUS_ZH = {"paid": "已支付", "pending": "待支付", "failed": "支付失败", "refunded": "已退款", "cancelled": "已取消"}
CYCLE_ZH = {"monthly": "按月", "annual": "按年"}


def language_of(tracker: Tracker) -> str:
    lang = tracker.get_slot("language")
    if lang in ("zh", "en"):
        return lang
    return detect_language(tracker.latest_message.get("text") or "")


def say(key: str, lang: str, **values) -> str:
    template = TEMPLATES[key]
    return template.get(lang, template["en"]).format(**values)


def human_button(lang: str) -> dict:
    """A button that hands the conversation to a person (channels render it as they can)."""
    return {"title": "转人工" if lang == "zh" else "Talk to a human", "payload": "/request_human"}
