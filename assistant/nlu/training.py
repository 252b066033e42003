"""Train the intent classifier on all of ``nlu_data/`` and save it (the ``assistant train-nlu`` command).
Held-out evaluation is ``assistant nlu-eval`` (:mod:`assistant.nlu.report`)."""

from __future__ import annotations

import json
from dataclasses import asdict

from assistant.models.registry import resolve_encoder
from assistant.nlu.classifier import IntentClassifier
from assistant.nlu.data import load_nlu_data
from assistant.nlu.oos import META_FILE as OOS_META
from assistant.nlu.oos import STATS_FILE as OOS_STATS
from assistant.nlu.oos import OosError, calibrate, holdout
from assistant.settings import Settings


def train_nlu(settings: Settings, progress: bool = True, extra_meta: dict | None = None) -> dict:
    import torch

    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    data = load_nlu_data(settings.nlu_data_dir)
    texts, intents = [e.text for e in data.examples], [e.intent for e in data.examples]
    method = settings.nlu_oos_method
    # the out-of-scope threshold is chosen on examples the classifier did not train on
    fit_idx, held_idx = (holdout(intents, settings.nlu_calibration_share, settings.nlu_seed) if method != "none"
                         else (list(range(len(texts))), []))
    if method == "knn_margin" and settings.nlu_oos_negative_intent not in intents:
        raise OosError(f"ASSISTANT_NLU_OOS_METHOD=knn_margin contrasts with the examples of the intent "
                       f"{settings.nlu_oos_negative_intent!r}, and {settings.nlu_data_dir} has none: add some, name "
                       "another intent in ASSISTANT_NLU_OOS_NEGATIVE_INTENT, or set ASSISTANT_NLU_OOS_METHOD=knn")
    if method != "none" and not held_idx:
        raise OosError(f"no intent in {settings.nlu_data_dir} has the 3 examples it takes to hold one out for the "
                       "out-of-scope threshold: add examples, or set ASSISTANT_NLU_OOS_METHOD=none")
    clf, report = IntentClassifier.train(
        [texts[i] for i in fit_idx], [intents[i] for i in fit_idx], resolve_encoder(settings),
        settings.encoder_model, epochs=settings.nlu_epochs, batch_size=settings.nlu_batch_size,
        learning_rate=settings.nlu_learning_rate, max_length=settings.nlu_max_tokens, seed=settings.nlu_seed,
        progress=progress, oos_vectors=settings.nlu_oos_vectors,
    )
    summary = {"train": asdict(report)}
    clf.save(settings.nlu_model_dir, {"trained_on": report.examples, "summary": summary["train"], **(extra_meta or {})})
    for stale in (OOS_META, OOS_STATS):
        (settings.nlu_model_dir / stale).unlink(missing_ok=True)
    if method != "none":
        detector, summary["oos"] = calibrate(method, clf, texts, intents, fit_idx, held_idx, settings.nlu_oos_max_loss,
                                                negative=settings.nlu_oos_negative_intent)
        detector.save(settings.nlu_model_dir)
    if settings.nlu_runtime != "torch":     # so the service starts without exporting
        from assistant.nlu.onnx_runtime import export_onnx

        summary["onnx"] = export_onnx(clf, settings.nlu_model_dir)
    (settings.nlu_model_dir / "training.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2))
    return summary
