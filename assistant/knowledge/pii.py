"""Mask personal data before it enters the knowledge base: e-mail addresses, phone numbers (CN mobile
and landline, international), Chinese ID card numbers (checksum verified) and bank card numbers
(Luhn verified). Allow-listed e-mail domains (the company's own addresses) are kept."""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable

_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})")
_ID_CARD = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![0-9A-Za-z])")
_BANK = re.compile(r"(?<![\d-])(?:\d{4}[ -]?){3}\d{4}(?:[ -]?\d{1,3})?(?![\d-])")
_PHONE = re.compile(
    r"(?<![\d+])(?:\+86[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4}(?!\d)"      # CN mobile
    r"|(?<![\d+])0\d{2,3}-\d{7,8}(?!\d)"                               # CN landline
    r"|(?<![\d+])\+\d{1,3}[ -]?\(?\d{1,4}\)?(?:[ -]?\d{2,4}){2,4}(?!\d)"  # international
)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def valid_id_card(s: str) -> bool:
    total = sum(int(c) * w for c, w in zip(s[:17], _ID_WEIGHTS))
    return _ID_CHECK[total % 11] == s[17].upper()


def luhn(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, c in enumerate(digits):
        d = int(c)
        if i % 2 == parity:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


class PiiMasker:
    def __init__(self, allow_domains: Iterable[str] = ()):
        self.allow = {d.lower().lstrip("@") for d in allow_domains}

    def _allowed(self, domain: str) -> bool:
        domain = domain.lower()
        return any(domain == a or domain.endswith("." + a) for a in self.allow)

    def mask(self, text: str) -> tuple[str, Counter]:
        counts: Counter = Counter()

        def email(m: re.Match) -> str:
            if self._allowed(m.group(1)):
                return m.group(0)
            counts["email"] += 1
            return "[EMAIL]"

        def id_card(m: re.Match) -> str:
            if not valid_id_card(m.group(0)):
                return m.group(0)
            counts["id_card"] += 1
            return "[ID_CARD]"

        def bank(m: re.Match) -> str:
            digits = re.sub(r"\D", "", m.group(0))
            if not 16 <= len(digits) <= 19 or not luhn(digits):
                return m.group(0)
            counts["bank_card"] += 1
            return "[BANK_CARD]"

        def phone(m: re.Match) -> str:
            counts["phone"] += 1
            return "[PHONE]"

        text = _EMAIL.sub(email, text)
        text = _ID_CARD.sub(id_card, text)
        text = _BANK.sub(bank, text)
        text = _PHONE.sub(phone, text)
        return text, counts
