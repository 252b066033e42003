"""Train the intent classifier on all of ``nlu_data/`` and save it (the ``assistant train-nlu`` command).
Held-out evaluation is ``assistant nlu-eval`` (:mod:`assistant.nlu.report`)."""

from __future__ import annotations

import json
from dataclasses import asdict

from assistant.models.registry import resolve_encoder
from assistant.nlu.classifier import IntentClassifier
from assistant.nlu.data import load_nlu_data
from assistant.settings import Settings


def train_nlu(settings: Settings, progress: bool = True, extra_meta: dict | None = None) -> dict:
    import torch

    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    data = load_nlu_data(settings.nlu_data_dir)
    clf, report = IntentClassifier.train(
        [e.text for e in data.examples], [e.intent for e in data.examples], resolve_encoder(settings),
        settings.encoder_model, epochs=settings.nlu_epochs, batch_size=settings.nlu_batch_size,
        learning_rate=settings.nlu_learning_rate, max_length=settings.nlu_max_tokens, seed=settings.nlu_seed,
        progress=progress,
    )
    summary = {"train": asdict(report)}
    clf.save(settings.nlu_model_dir, {"trained_on": report.examples, "summary": summary["train"], **(extra_meta or {})})
    if settings.nlu_runtime != "torch":     # so the service starts without exporting
        from assistant.nlu.onnx_runtime import export_onnx

        summary["onnx"] = export_onnx(clf, settings.nlu_model_dir)
    (settings.nlu_model_dir / "training.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2))
    return summary
