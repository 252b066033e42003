"""Turn a user message into Rasa's parse result: intent, ranking, entities, fallback.

Pure logic (no HTTP): the service and the tests call :meth:`NluParser.parse` directly.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, Sequence

import numpy as np

from assistant.nlu.classifier import top_intents

if TYPE_CHECKING:
    from assistant.nlu.oos import OosDetector

log = logging.getLogger(__name__)

# Rasa's message shortcut: "/intent", "/intent{"entity": "value"}", "/intent@0.9{...}"
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_SHORTCUT = re.compile(r"^/(?P<intent>[^{@\s]+)(?:@(?P<confidence>[0-9.]+))?(?P<entities>\{.*)?\s*$", re.S)
RASA_DEFAULT_INTENTS = frozenset({"restart", "back", "session_start", "out_of_scope", "nlu_fallback"})


class Classifier(Protocol):
    labels: list[str]

    def features_and_proba(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]: ...


class Extractor(Protocol):
    def extract(self, text: str) -> list[dict]: ...


@dataclass
class ParserConfig:
    fallback_threshold: float = 0.5
    fallback_intent: str = "nlu_fallback"
    max_chars: int = 2000
    ranking_size: int = 10


_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def language_entity(text: str, entities: Sequence[dict] = ()) -> dict | None:
    """The message language as an entity Rasa maps to the ``language`` slot: zh if any Han character
    is left once entity values (order numbers, e-mails) are cut out, en if Latin words are left,
    none for a bare value such as "CM100003" (the conversation keeps its language)."""
    rest = text
    for e in sorted(entities, key=lambda e: -e.get("start", 0)):
        if e.get("end", 0) > e.get("start", 0):
            rest = rest[: e["start"]] + " " + rest[e["end"] :]
    if _HAN.search(rest):
        lang = "zh"
    elif _LATIN_WORD.search(rest):
        lang = "en"
    else:
        return None
    return {"entity": "language", "value": lang, "start": 0, "end": 0, "extractor": "language"}


def clean_text(text: str) -> str:
    """Drop control and format characters (keep newlines/tabs as spaces); trim."""
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in "\n\r\t":
            out.append(" ")
        elif cat in ("Cc", "Cs", "Co") or (cat == "Cf" and ch not in "\u200d"):
            continue
        else:
            out.append(ch)
    return "".join(out).strip()


class NluParser:
    def __init__(self, classifier: Classifier, extractor: Extractor, config: ParserConfig,
                 extra_intents: Sequence[str] = (), detector: "OosDetector | None" = None):
        self.classifier = classifier
        self.extractor = extractor
        self.config = config
        self.detector = detector
        self.known_intents = set(classifier.labels) | RASA_DEFAULT_INTENTS | set(extra_intents)

    def _result(self, text: str, intent: str, confidence: float, ranking: list[dict], entities: list[dict],
                **extra) -> dict:
        return {
            "text": text,
            "intent": {"name": intent, "confidence": round(float(confidence), 6)},
            "entities": entities,
            "intent_ranking": ranking,
            **extra,
        }

    def _fallback(self, text: str, confidence: float, ranking: list[dict], entities: list[dict], **extra) -> dict:
        fb = {"name": self.config.fallback_intent, "confidence": round(float(confidence), 6)}
        return self._result(text, fb["name"], fb["confidence"], [fb, *ranking], entities, **extra)

    def parse_shortcut(self, text: str) -> dict | None:
        m = _SHORTCUT.match(text.strip())
        if not m:
            return None
        intent = m.group("intent")
        entities: list[dict] = []
        if m.group("entities"):
            try:
                raw = json.loads(m.group("entities"))
            except json.JSONDecodeError as exc:
                msg = f"entities in the shortcut {text[:80]!r} are not valid JSON ({exc.msg}); write /intent{{\"entity\": \"value\"}}"
                log.warning("nlu.shortcut.bad_json: %s", msg)
                return self._fallback(text, 0.0, [], [], error=msg)
            if not isinstance(raw, dict):
                msg = "shortcut entities must be a JSON object, e.g. /inform{\"email\": \"a@b.com\"}"
                return self._fallback(text, 0.0, [], [], error=msg)
            for name, value in raw.items():
                for v in value if isinstance(value, list) else [value]:
                    entities.append({"entity": name, "value": v, "start": 0, "end": 0, "extractor": "shortcut"})
        if intent not in self.known_intents:
            msg = f"unknown intent {intent!r} in shortcut; known intents: {', '.join(sorted(self.known_intents))}"
            log.warning("nlu.shortcut.unknown_intent: %s", msg)
            return self._fallback(text, 0.0, [], entities, error=msg)
        confidence = float(m.group("confidence")) if m.group("confidence") else 1.0
        return self._result(text, intent, confidence, [{"name": intent, "confidence": confidence}], entities)

    def parse(self, text: str) -> dict:
        shortcut = self.parse_shortcut(text) if text.lstrip().startswith("/") else None
        if shortcut is not None:
            return shortcut
        cleaned = clean_text(text)
        extra = {}
        if len(cleaned) > self.config.max_chars:
            cleaned = cleaned[: self.config.max_chars]
            extra["truncated_to"] = self.config.max_chars
        if not cleaned:
            return self._fallback(text, 0.0, [], [], error="empty message")
        features, probs = self.classifier.features_and_proba([cleaned])
        ranked = top_intents(self.classifier.labels, probs[0], self.config.ranking_size)
        ranking = [{"name": n, "confidence": round(c, 6)} for n, c in ranked]
        found = self.extractor.extract(cleaned)
        lang = language_entity(cleaned, found)
        entities = found if cleaned == text else self._map_offsets(text, cleaned, found)
        if lang:
            entities.append(lang)
        top_name, top_conf = ranked[0]
        if top_conf < self.config.fallback_threshold:
            return self._fallback(text, top_conf, ranking, entities, **extra)
        # confident, but unlike anything the classifier was trained on? (the out-of-scope intent that
        # knn_margin contrasts with is already the answer for a message like its examples)
        if self.detector is not None and top_name != self.detector.info.get("negative"):
            score = float(self.detector.scores(features, probs)[0])
            if score < self.detector.threshold:
                extra["out_of_scope"] = {"method": self.detector.method, "score": round(score, 4),
                                         "threshold": round(self.detector.threshold, 4)}
                return self._fallback(text, top_conf, ranking, entities, **extra)
        return self._result(text, top_name, top_conf, ranking, entities, **extra)

    @staticmethod
    def _map_offsets(original: str, cleaned: str, entities: list[dict]) -> list[dict]:
        """Entities found in the cleaned text, with offsets into the original where they can be found."""
        out = []
        for e in entities:
            surface = cleaned[e["start"] : e["end"]]
            pos = original.find(surface)
            out.append({**e, "start": pos, "end": pos + len(surface)} if pos >= 0 else e)
        return out
