"""Rule-based entities: the regexes and lookup tables of ``nlu_data/`` plus value normalisation.

Returns entities in Rasa's format (``entity``, ``value``, ``start``, ``end``, ``extractor``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from assistant.nlu.data import NluData

EXTRACTOR = "CloudMaxRuleExtractor"


def _order_number(s: str) -> str:
    return s.upper().replace("-", "")


def _email(s: str) -> str:
    return s.strip(".").lower()


def _phone(s: str) -> str:
    return re.sub(r"[\s-]", "", s)


_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d{1,2})?")
_CURRENCIES = ((re.compile(r"US\$|\$|美元|dollar|usd", re.I), "USD"),
               (re.compile(r"¥|￥|元|块|人民币|rmb|cny|yuan", re.I), "CNY"))
_YMD = re.compile(r"((?:19|20)\d{2})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})")


def _amount(s: str) -> str:
    """'¥1,188' -> '1188 CNY', '49.99 USD' -> '49.99 USD'."""
    number = _NUMBER.search(s)
    currency = next((code for pattern, code in _CURRENCIES if pattern.search(s)), "")
    return f"{number.group().replace(',', '') if number else s} {currency}".strip()


def _date(s: str) -> str:
    """Dates with a year become ISO (2024/7/1, 2024年7月1日 -> 2024-07-01); others stay as written."""
    m = _YMD.search(s)
    return f"{m.group(1)}-{int(m.group(2)):02d}-{int(m.group(3)):02d}" if m else s


NORMALISERS: dict[str, Callable[[str], str]] = {
    "order_number": _order_number,
    "email": _email,
    "phone": _phone,
    "amount": _amount,
    "date": _date,
}


def _lookup_pattern(term: str) -> str:
    escaped = re.escape(term)
    if term.isascii():  # Latin words need boundaries; CJK text has no spaces to mark them
        return rf"(?<![A-Za-z0-9]){escaped}(?![A-Za-z0-9])"
    return escaped


@dataclass
class _Rule:
    entity: str
    pattern: re.Pattern


class EntityExtractor:
    def __init__(self, data: NluData):
        self._rules: list[_Rule] = []
        for entity, patterns in data.regexes.items():
            for p in patterns:
                self._rules.append(_Rule(entity, re.compile(p)))
        for entity, terms in data.lookups.items():
            alternatives = sorted({t for t in terms if t}, key=len, reverse=True)
            if alternatives:
                joined = "|".join(_lookup_pattern(t) for t in alternatives)
                self._rules.append(_Rule(entity, re.compile(f"(?:{joined})", re.IGNORECASE)))
        self._synonyms = dict(data.synonyms)

    @property
    def entity_names(self) -> list[str]:
        return sorted({r.entity for r in self._rules})

    def extract(self, text: str) -> list[dict]:
        candidates = []
        for rule in self._rules:
            for m in rule.pattern.finditer(text):
                if m.end() > m.start():
                    candidates.append((m.start(), m.end(), rule.entity))
        # longest match first, then earliest; drop overlaps
        candidates.sort(key=lambda c: (-(c[1] - c[0]), c[0]))
        taken: list[tuple[int, int, str]] = []
        for start, end, entity in candidates:
            if all(end <= s or start >= e for s, e, _ in taken):
                taken.append((start, end, entity))
        entities = []
        for start, end, entity in sorted(taken):
            surface = text[start:end]
            value = self._synonyms.get(surface.lower(), surface)
            value = NORMALISERS.get(entity, lambda v: v)(value)
            entities.append(
                {"entity": entity, "value": value, "start": start, "end": end,
                 "confidence_entity": 1.0, "extractor": EXTRACTOR}
            )
        return entities
