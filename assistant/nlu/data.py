"""Read Rasa 3 NLU training data (YAML) into plain Python objects.

Only what the NLU service needs: intent examples (annotations stripped, entity spans kept),
regex patterns, lookup tables and synonyms. Errors name the file and the item that is wrong.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

_ANNOTATION = re.compile(r"\[(?P<text>[^\]]+)\](?:\((?P<short>[^)]+)\)|(?P<json>\{[^}]*\}))")


class NluDataError(ValueError):
    """Training data that cannot be used; the message says where and what to fix."""


@dataclass(frozen=True)
class EntitySpan:
    entity: str
    value: str
    start: int
    end: int


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    entities: tuple[EntitySpan, ...] = ()
    source: str = ""


@dataclass
class NluData:
    examples: list[Example] = field(default_factory=list)
    regexes: dict[str, list[str]] = field(default_factory=dict)
    lookups: dict[str, list[str]] = field(default_factory=dict)
    synonyms: dict[str, str] = field(default_factory=dict)  # lower-cased surface form -> value

    @property
    def intents(self) -> list[str]:
        return sorted({e.intent for e in self.examples})


EXTERNAL_PREFIX = "EXTERNAL_"


def parse_annotated(text: str, where: str = "") -> tuple[str, tuple[EntitySpan, ...]]:
    """``"order [CM100001](order_number)"`` -> plain text and entity spans."""
    plain, spans, pos = [], [], 0
    offset = 0
    for m in _ANNOTATION.finditer(text):
        plain.append(text[pos : m.start()])
        offset += m.start() - pos
        surface = m.group("text")
        if m.group("json"):
            try:
                meta = json.loads(m.group("json"))
            except json.JSONDecodeError as exc:
                raise NluDataError(f"{where}: entity annotation {m.group(0)!r} is not valid JSON ({exc})") from exc
            if not isinstance(meta, dict) or "entity" not in meta:
                raise NluDataError(f"{where}: entity annotation {m.group(0)!r} needs an \"entity\" key")
            entity, value = str(meta["entity"]), str(meta.get("value", surface))
        else:
            entity, _, value = m.group("short").partition(":")
            value = value or surface
        spans.append(EntitySpan(entity.strip(), value, offset, offset + len(surface)))
        plain.append(surface)
        offset += len(surface)
        pos = m.end()
    plain.append(text[pos:])
    return "".join(plain), tuple(spans)


def _example_lines(block: object, where: str) -> list[str]:
    if not isinstance(block, str):
        raise NluDataError(f"{where}: 'examples' must be a block string of '- ' lines (use 'examples: |')")
    lines = []
    for raw in block.splitlines():
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("- "):
            raise NluDataError(f"{where}: example line {line!r} must start with '- '")
        lines.append(line[2:].strip())
    return lines


def load_file(path: Path, data: NluData | None = None) -> NluData:
    data = data or NluData()
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise NluDataError(f"{path}: malformed YAML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise NluDataError(f"{path}: not UTF-8 text ({exc}); save the file as UTF-8") from exc
    if doc is None:
        return data
    if not isinstance(doc, dict):
        raise NluDataError(f"{path}: expected a mapping with an 'nlu:' key, found {type(doc).__name__}")
    items = doc.get("nlu") or []
    if not isinstance(items, list):
        raise NluDataError(f"{path}: 'nlu:' must be a list of intent/regex/lookup/synonym items")
    for i, item in enumerate(items):
        where = f"{path}, nlu item {i + 1}"
        if not isinstance(item, dict):
            raise NluDataError(f"{where}: expected a mapping, found {item!r}")
        if "intent" in item:
            intent = str(item["intent"]).strip()
            if not intent:
                raise NluDataError(f"{where}: empty intent name")
            if intent.startswith(EXTERNAL_PREFIX):
                continue  # triggered by the system (trigger_intent), never predicted from a message
            for line in _example_lines(item.get("examples"), f"{where} (intent {intent})"):
                text, spans = parse_annotated(line, f"{where} (intent {intent})")
                data.examples.append(Example(text, intent, spans, str(path)))
                for span in spans:
                    if span.value != text[span.start : span.end]:
                        data.synonyms.setdefault(text[span.start : span.end].lower(), span.value)
        elif "regex" in item:
            patterns = _example_lines(item.get("examples"), f"{where} (regex {item['regex']})")
            for p in patterns:
                try:
                    re.compile(p)
                except re.error as exc:
                    raise NluDataError(f"{where}: regex {p!r} does not compile: {exc}") from exc
            data.regexes.setdefault(str(item["regex"]), []).extend(patterns)
        elif "lookup" in item:
            data.lookups.setdefault(str(item["lookup"]), []).extend(
                _example_lines(item.get("examples"), f"{where} (lookup {item['lookup']})")
            )
        elif "synonym" in item:
            for surface in _example_lines(item.get("examples"), f"{where} (synonym {item['synonym']})"):
                data.synonyms[surface.lower()] = str(item["synonym"])
        else:
            raise NluDataError(f"{where}: unknown item with keys {sorted(item)}; use intent, regex, lookup or synonym")
    return data


def load_nlu_data(directory: Path) -> NluData:
    files = sorted(p for p in Path(directory).rglob("*.yml")) + sorted(Path(directory).rglob("*.yaml"))
    if not files:
        raise NluDataError(f"no NLU files (*.yml) found in {directory}")
    data = NluData()
    for path in files:
        load_file(path, data)
    if not data.examples:
        raise NluDataError(f"{directory}: no intent examples found")
    return data
