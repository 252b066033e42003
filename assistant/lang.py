"""The one language test of the project: a text with Han characters is Chinese, else English."""

from __future__ import annotations

import re

HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def detect_language(text: str | None) -> str:
    return "zh" if HAN.search(text or "") else "en"
