"""Prompt-injection patterns, in questions and in documents.

A question that tries to instruct the system is refused like an unanswerable one; a chunk that
carries instructions aimed at a model is kept out of the sources (flagged at ingestion).
"""

from __future__ import annotations

import re

_PATTERNS = [
    r"ignore\s+(?:all\s+|any\s+)?(?:the\s+)?(?:previous|prior|above|earlier|preceding|your)\s+(?:instructions|prompts?|rules|directions)",
    r"disregard\s+(?:all\s+|any\s+)?(?:the\s+)?(?:previous|prior|above|your)\s+(?:instructions|rules)",
    r"(?:reveal|show|print|repeat|leak)\s+(?:me\s+)?(?:your|the)\s+(?:system\s+)?(?:prompt|instructions)",
    r"you\s+are\s+now\s+(?:a|an|in)\b",
    r"\b(?:jailbreak|DAN mode|developer mode)\b",
    r"(?:admin|root|database)\s+password",
    r"forget\s+(?:all\s+)?(?:your|the|previous|prior)\s+(?:rules|instructions|guidelines)",
    r"\b(?:i\s*am|i'm)\s+(?:one\s+of\s+)?your\s+(?:[\w-]+\s+){0,2}(?:admin|administrator|developer|engineer|staff)\b",
    r"\b(?:don't|do\s+not)\s+log\s+(?:it|this|that)\b",
    r"(?:(?:e-?mail|ip)\s+addresses|phone\s+numbers|passwords)\s+of\s+(?:all|every)\b",
    r"忽略(?:掉)?(?:之前|以上|上面|前面|先前|所有|你)(?:的)?(?:所有)?(?:指令|指示|规则|提示|设定|要求)",
    r"无视(?:之前|以上|上面|所有)(?:的)?(?:指令|指示|规则)",
    r"(?:系统提示词|系统提示|system prompt)",
    r"你现在是(?:一个|一名)?",
    r"(?:忘掉|忘记|抛开)(?:你的|之前的|所有的?)*(?:规则|指令|设定|限制)",
    r"我是(?:你们|贵司|贵公司)的?(?:管理员|开发者|开发人员|运维|员工)",
    r"(?:密码|口令|验证码)(?:发给我|告诉我|给我)",
    r"(?:管理员|后台|数据库)密码",
    r"所有用户的(?:邮箱|密码|手机号|数据)",
]
_INJECTION = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE)


def looks_like_injection(text: str) -> bool:
    return bool(_INJECTION.search(text or ""))
