"""The fine-tuned intent classifier exported to ONNX and served with ONNX Runtime.

``export_onnx`` writes ``model.onnx`` (fp32) and ``model.int8.onnx`` (dynamic int8 quantisation of
the weights) next to the trained model, in ``onnx/``, with the digest of the weights they came
from; :func:`load_onnx_classifier` re-exports when that digest no longer matches (the model was
retrained). :class:`OnnxIntentClassifier` has the PyTorch classifier's interface (``labels``,
``features_and_proba``, ``predict_proba``) and keeps its fast tokenizer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from assistant.models.onnx_encoder import ATTENTION, OPSET
from assistant.nlu.classifier import META_FILE, WEIGHTS_FILE, IntentClassifier, require_trained

log = logging.getLogger(__name__)
ONNX_DIR = "onnx"
OUTPUTS = ("logits", "features")     # the head's logits and the out-of-scope detector's vectors
# The opset and the attention recipe are the knowledge encoder's (``ATTENTION``: written out as matmuls
# and a softmax). For the classifier, SDPA's traced graph gave the same probabilities (to 1e-6) and was
# a little slower on ONNX Runtime: 85-86 against 88-97 messages/s in batches of 32 (README, "Models").


def weights_digest(model_dir: Path) -> str:
    h = hashlib.sha256()
    for name in (WEIGHTS_FILE, META_FILE):
        h.update((model_dir / name).read_bytes())
    return h.hexdigest()[:16]


def onnx_path(model_dir: Path, int8: bool) -> Path:
    return model_dir / ONNX_DIR / ("model.int8.onnx" if int8 else "model.onnx")


def export_onnx(classifier: IntentClassifier, model_dir: Path) -> dict:
    """Export fp32 and int8 models; returns what was written and how long it took."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = model_dir / ONNX_DIR
    out.mkdir(parents=True, exist_ok=True)
    module = classifier.module.eval()

    class LogitsAndFeatures(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = module

        def forward(self, input_ids, attention_mask):
            return self.inner.logits_and_vectors(input_ids, attention_mask)

    started = time.perf_counter()
    sample = classifier.tokenizer(["查询订单 CM100003 的状态", "hi"], padding=True, return_tensors="pt")
    fp32, int8 = onnx_path(model_dir, False), onnx_path(model_dir, True)
    tmp = fp32.with_suffix(".tmp.onnx")
    encoder = module.encoder
    before = encoder.config._attn_implementation
    encoder.set_attn_implementation(ATTENTION)
    try:
        with torch.inference_mode():
            torch.onnx.export(LogitsAndFeatures(), (sample["input_ids"], sample["attention_mask"]), str(tmp),
                              input_names=["input_ids", "attention_mask"], output_names=list(OUTPUTS),
                              dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                                            **{name: {0: "batch"} for name in OUTPUTS}},
                              opset_version=OPSET, dynamo=False)
    finally:   # the PyTorch classifier keeps the attention it was trained and evaluated with
        encoder.set_attn_implementation(before)
    tmp.replace(fp32)
    tmp8 = int8.with_suffix(".tmp.onnx")
    quantize_dynamic(str(fp32), str(tmp8), weight_type=QuantType.QInt8)
    tmp8.replace(int8)
    info = {"digest": weights_digest(model_dir), "labels": classifier.labels, "max_length": classifier.max_length,
            "encoder": classifier.encoder_spec, "opset": OPSET, "outputs": list(OUTPUTS),
            "attention": ATTENTION, "oos_vectors": classifier.oos_vectors, "seconds": round(time.perf_counter() - started, 1),
            "mb": {"fp32": round(fp32.stat().st_size / 2**20, 1), "int8": round(int8.stat().st_size / 2**20, 1)}}
    (out / "export.json").write_text(json.dumps(info, ensure_ascii=False, indent=2))
    return info


class OnnxIntentClassifier:
    def __init__(self, tokenizer, session, labels: list[str], max_length: int, encoder_spec: str, runtime: str):
        self.tokenizer = tokenizer
        self.session = session
        self.labels = labels
        self.max_length = max_length
        self.encoder_spec = encoder_spec
        self.runtime = runtime

    def features_and_proba(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        enc = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="np")
        logits, features = self.session.run(list(OUTPUTS), {"input_ids": enc["input_ids"].astype(np.int64),
                                                             "attention_mask": enc["attention_mask"].astype(np.int64)})
        z = logits - logits.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return features, e / e.sum(axis=-1, keepdims=True)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.features_and_proba(texts)[1]


def load_onnx_classifier(model_dir: Path, encoder_path_for, int8: bool = True, threads: int = 0):
    """ONNX Runtime on the exported model, exporting first when it is missing or stale."""
    import onnxruntime as ort
    from transformers import AutoTokenizer

    require_trained(model_dir)
    info_path = model_dir / ONNX_DIR / "export.json"
    try:
        info = json.loads(info_path.read_text())
    except (OSError, ValueError):
        info = {}
    stale = (info.get("digest") != weights_digest(model_dir) or info.get("outputs") != list(OUTPUTS)
             or info.get("attention") != ATTENTION)   # an export by an earlier recipe is redone
    if stale or not onnx_path(model_dir, int8).is_file():
        log.info("exporting the intent classifier to ONNX (%s)", model_dir / ONNX_DIR)
        info = export_onnx(IntentClassifier.load(model_dir, encoder_path_for), model_dir)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(onnx_path(model_dir, int8)), options, providers=["CPUExecutionProvider"])
    tokenizer = AutoTokenizer.from_pretrained(encoder_path_for(info["encoder"]))
    return OnnxIntentClassifier(tokenizer, session, info["labels"], info["max_length"], info["encoder"],
                                "onnx-int8" if int8 else "onnx")
