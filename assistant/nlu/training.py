"""Train the intent classifier on ``nlu_data/`` and save it (the ``assistant train-nlu`` command)."""

from __future__ import annotations

import json
import logging
import random
from collections import defaultdict
from dataclasses import asdict

from assistant.models.registry import resolve_encoder
from assistant.nlu.classifier import IntentClassifier
from assistant.nlu.data import Example, load_nlu_data
from assistant.settings import Settings

log = logging.getLogger(__name__)


def stratified_split(examples: list[Example], holdout: float, seed: int) -> tuple[list[Example], list[Example]]:
    by_intent: dict[str, list[Example]] = defaultdict(list)
    for e in examples:
        by_intent[e.intent].append(e)
    rng = random.Random(seed)
    train, test = [], []
    for intent in sorted(by_intent):
        items = by_intent[intent][:]
        rng.shuffle(items)
        k = int(round(len(items) * holdout))
        test += items[:k]
        train += items[k:]
    return train, test


def train_nlu(settings: Settings, holdout: float = 0.0, progress: bool = True) -> dict:
    """Fine-tune on all of ``nlu_data/`` (or all but a stratified ``holdout`` share, then score it)."""
    import torch

    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    data = load_nlu_data(settings.nlu_data_dir)
    train, test = stratified_split(data.examples, holdout, settings.nlu_seed) if holdout else (data.examples, [])
    encoder_path = resolve_encoder(settings)
    clf, report = IntentClassifier.train(
        [e.text for e in train], [e.intent for e in train], encoder_path, settings.encoder_model,
        epochs=settings.nlu_epochs, batch_size=settings.nlu_batch_size,
        learning_rate=settings.nlu_learning_rate, max_length=settings.nlu_max_tokens,
        seed=settings.nlu_seed, progress=progress,
    )
    summary = {"train": asdict(report)}
    if test:
        probs = clf.predict_proba([e.text for e in test])
        predicted = [clf.labels[i] for i in probs.argmax(1)]
        correct = [p == e.intent for p, e in zip(predicted, test)]
        summary["holdout"] = {
            "examples": len(test),
            "accuracy": sum(correct) / len(test),
            "errors": [
                {"text": e.text, "expected": e.intent, "predicted": p}
                for p, e, ok in zip(predicted, test, correct) if not ok
            ],
        }
    clf.save(settings.nlu_model_dir, {"trained_on": len(train), "summary": summary["train"]})
    (settings.nlu_model_dir / "training.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2))
    return summary
