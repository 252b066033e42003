"""Precision and recall of the entity extractor on the annotated examples of ``nlu_data/``: an
entity counts when its type and its span are both right (the ``assistant nlu-entities`` command).
Examples without an annotation count too: whatever is extracted from them is a false positive."""

from __future__ import annotations

from collections import defaultdict

from assistant.lang import detect_language
from assistant.nlu.data import NluData
from assistant.nlu.entities import EntityExtractor


def _prf(c: dict) -> dict:
    p = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 1.0
    r = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 1.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {**c, "precision": round(p, 4), "recall": round(r, 4), "f1": round(f1, 4)}


def evaluate_entities(data: NluData, extractor: EntityExtractor | None = None) -> dict:
    extractor = extractor or EntityExtractor(data)
    counts: dict[tuple[str, str], dict] = defaultdict(lambda: {"tp": 0, "fp": 0, "fn": 0})
    errors = []
    for ex in data.examples:
        gold = {(e.entity, e.start, e.end) for e in ex.entities}
        pred = {(e["entity"], e["start"], e["end"]) for e in extractor.extract(ex.text)}
        lang = detect_language(ex.text)
        for entity, start, end in gold | pred:
            kind = "tp" if (entity, start, end) in gold and (entity, start, end) in pred else (
                "fn" if (entity, start, end) in gold else "fp")
            for key in ((entity, "all"), (entity, lang)):
                counts[key][kind] += 1
            if kind != "tp":
                errors.append({"text": ex.text, "entity": entity, "span": ex.text[start:end], "error": kind})
    entities = sorted({e for e, _ in counts})
    return {"examples": len(data.examples),
            "entities": {e: {slice_: _prf(counts[(e, slice_)]) for slice_ in ("all", "zh", "en") if (e, slice_) in counts}
                         for e in entities},
            "errors": errors}


def markdown(result: dict) -> str:
    lines = [f"# Entities on nlu_data ({result['examples']} examples)", "",
             "| entity | slice | support | precision | recall | F1 |", "|---|---|---|---|---|---|"]
    for entity, slices in result["entities"].items():
        for slice_, m in slices.items():
            lines.append(f"| {entity} | {slice_} | {m['tp'] + m['fn']} | {m['precision']:.3f} | {m['recall']:.3f} | "
                         f"{m['f1']:.3f} |")
    if result["errors"]:
        lines += ["", "## Errors", "", "| error | entity | span | text |", "|---|---|---|---|"]
        lines += [f"| {e['error']} | {e['entity']} | {e['span']} | {e['text']} |" for e in result["errors"][:50]]
    return "\n".join(lines) + "\n"
