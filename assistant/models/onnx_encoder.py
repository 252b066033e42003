"""The sentence encoder exported to ONNX and run with ONNX Runtime.

``export_encoder`` traces the Hugging Face encoder (``last_hidden_state``) once into a cache folder,
keyed by the model's files; :class:`OnnxSentenceEncoder` tokenises with the model's fast tokenizer,
runs the graph, and mean-pools and normalises in NumPy: the same vectors as
:class:`~assistant.models.encoder.SentenceEncoder` (to float precision). On this project's 2-core
CPU it embeds a short query in a fraction of PyTorch's time (per-call overhead dominates there);
long passages in batches are compute-bound and about as fast in both (README, 'Knowledge answers').
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from assistant.models.encoder import embed_in_batches, unit_rows

log = logging.getLogger(__name__)
OPSET = 17
# How the graph is traced; part of the cache key, so a changed recipe exports again. "eager": the
# attention written out as matmuls and a softmax. The default SDPA attention traces into a graph
# that embeds batches of passages about 1.3x slower on ONNX Runtime (same vectors to 1e-7).
ATTENTION = "eager"


def model_digest(path: Path) -> str:
    """Digest of the model folder's config and weight files (name, size, modification time)."""
    h = hashlib.sha256()
    for f in sorted(Path(path).iterdir()):
        if f.is_file() and f.suffix in (".json", ".bin", ".safetensors", ".model", ".txt"):
            st = f.stat()
            h.update(f"{f.name}|{st.st_size}|{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


def export_encoder(model_path: str, out_dir: Path) -> Path:
    """The encoder as ONNX in ``out_dir`` (written once per model; a temporary file until complete)."""
    target = out_dir / f"encoder-{model_digest(Path(model_path))}-{ATTENTION}.onnx"
    if target.is_file():
        return target
    import torch

    from assistant.models.encoder import load_backbone

    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tokenizer, model = load_backbone(model_path, attn_implementation=ATTENTION)
    model.eval()

    class Hidden(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    sample = tokenizer(["passage: 退款多久到账", "query: how long until my refund arrives"], padding=True,
                       return_tensors="pt")
    tmp = target.with_suffix(".tmp.onnx")
    with torch.inference_mode():
        torch.onnx.export(Hidden(), (sample["input_ids"], sample["attention_mask"]), str(tmp),
                          input_names=["input_ids", "attention_mask"], output_names=["hidden"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                                        "hidden": {0: "batch", 1: "seq"}},
                          opset_version=OPSET, dynamo=False)
    tmp.replace(target)
    for stale in out_dir.glob(f"encoder-{model_digest(Path(model_path))}*.onnx"):
        if stale != target:   # the same model exported by an earlier recipe
            stale.unlink(missing_ok=True)
    log.info("exported the encoder to %s in %.1f s", target, time.perf_counter() - started)
    return target


class OnnxSentenceEncoder:
    """``embed(texts, prefix)`` like :class:`SentenceEncoder`, on ONNX Runtime (fp32)."""

    def __init__(self, model_path: str, cache_dir: Path, max_length: int = 256, batch_size: int = 32,
                 threads: int = 0):
        import onnxruntime as ort
        from transformers import AutoConfig, AutoTokenizer

        onnx_file = export_encoder(model_path, cache_dir)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self._dim = int(AutoConfig.from_pretrained(model_path).hidden_size)
        self.max_length = max_length
        self.batch_size = batch_size

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str], prefix: str = "") -> np.ndarray:
        def batch(part: list[str]) -> np.ndarray:
            enc = self.tokenizer([prefix + t for t in part], padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="np")
            mask = enc["attention_mask"].astype(np.int64)
            (hidden,) = self.session.run(None, {"input_ids": enc["input_ids"].astype(np.int64), "attention_mask": mask})
            m = mask[..., None].astype(np.float32)
            pooled = (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
            return unit_rows(pooled)

        return embed_in_batches(texts, self.batch_size, batch, self.dim)
