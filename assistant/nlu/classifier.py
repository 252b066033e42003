"""A BERT-family intent classifier: encoder + mean pooling + a linear head, fine-tuned end to end
except for the word-embedding matrix (most of multilingual-e5-small's parameters), which stays frozen.

Saved models hold only what training changed (``trainable.safetensors``) plus ``meta.json``
naming the base encoder; loading rebuilds the base from the packaged weights and overlays them.
"""

from __future__ import annotations

import json
import logging
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from assistant.models.encoder import load_backbone, mean_pool

log = logging.getLogger(__name__)
META_FILE = "meta.json"
# What the out-of-scope detector compares (``oos_vectors`` in meta.json): "layers", the mean over the
# encoder's transformer layers (not the embeddings' output) of each layer's unit-length mean-pooled
# states (after Chen et al. 2022, "Holistic sentence embeddings for better OOD detection"), or "last",
# the head's input. A model saved without the key (an earlier version) reads "last", as its detector
# was fitted on.
OOS_VECTORS = ("layers", "last")
WEIGHTS_FILE = "trainable.safetensors"
FORMAT_VERSION = 1


class ModelNotTrained(RuntimeError):
    pass


def require_trained(directory: Path) -> None:
    if not (directory / META_FILE).is_file() or not (directory / WEIGHTS_FILE).is_file():
        raise ModelNotTrained(
            f"NLU model not trained: {directory} has no {META_FILE}/{WEIGHTS_FILE}. "
            "Run `scripts/setup.sh` or `.venv/bin/assistant train-nlu`."
        )


def top_intents(labels: list[str], probs: np.ndarray, top: int) -> list[tuple[str, float]]:
    order = np.argsort(-probs)[:top]
    return [(labels[i], float(probs[i])) for i in order]


def length_grouped_batches(lengths: Sequence[int], batch_size: int, group: int,
                           rng: random.Random | None = None) -> list[list[int]]:
    """One epoch of batches: the examples shuffled, cut into pools of ``group`` batches, each pool
    sorted by length and cut into batches, the batches shuffled. A batch is padded to its longest
    message, so on short chat messages random batches run about twice the tokens they hold
    (1.97x on ``nlu_data``); pools of 8 batches bring that to 1.2x while batches stay random."""
    rng = rng or random
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * max(1, group)
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start:start + pool], key=lambda i: lengths[i])
        batches += [chunk[b:b + batch_size] for b in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def _build_module(encoder, n_labels: int, dropout: float = 0.1, oos_vectors: str = "last"):
    import torch
    from torch import nn

    if oos_vectors not in OOS_VECTORS:
        raise ModelNotTrained(f"unknown out-of-scope vectors {oos_vectors!r} ('oos_vectors' in the model's "
                              f"{META_FILE}): choose one of {', '.join(OOS_VECTORS)}, or retrain with `assistant train-nlu`")

    class IntentModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = encoder
            self.dropout = nn.Dropout(dropout)
            self.head = nn.Linear(encoder.config.hidden_size, n_labels)

        def pooled(self, input_ids, attention_mask):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return mean_pool(hidden, attention_mask)

        def forward(self, input_ids, attention_mask):
            return self.head(self.dropout(self.pooled(input_ids, attention_mask)))

        def logits_and_vectors(self, input_ids, attention_mask):
            """The head's logits and the vectors the out-of-scope detector reads, from one pass."""
            out = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                               output_hidden_states=oos_vectors == "layers")
            pooled = mean_pool(out.last_hidden_state, attention_mask)
            vectors = pooled if oos_vectors == "last" else torch.stack(
                [nn.functional.normalize(mean_pool(h, attention_mask), dim=-1) for h in out.hidden_states[1:]]).mean(0)
            return self.head(pooled), vectors

    module = IntentModel()
    module.oos_vectors = oos_vectors
    module.encoder.get_input_embeddings().weight.requires_grad_(False)
    return module


@dataclass
class TrainReport:
    examples: int
    intents: int
    epochs: int
    seconds: float
    final_loss: float


class IntentClassifier:
    def __init__(self, tokenizer, module, labels: list[str], max_length: int, encoder_spec: str):
        self.tokenizer = tokenizer
        self.module = module
        self.labels = labels
        self.max_length = max_length
        self.encoder_spec = encoder_spec
        import torch

        self._torch = torch

    # ---------------------------------------------------------------- inference
    @property
    def oos_vectors(self) -> str:
        return self.module.oos_vectors

    def features_and_proba(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The vectors the out-of-scope detector reads (:data:`OOS_VECTORS`) and the intent probabilities,
        in one pass."""
        torch = self._torch
        self.module.eval()
        enc = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        with torch.inference_mode():
            logits, vectors = self.module.logits_and_vectors(enc["input_ids"], enc["attention_mask"])
            probs = torch.softmax(logits, dim=-1)
        return vectors.numpy(), probs.numpy()

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.features_and_proba(texts)[1]

    # ---------------------------------------------------------------- persistence
    def save(self, directory: Path, extra_meta: dict | None = None) -> None:
        from safetensors.torch import save_file

        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in self.module.named_parameters() if v.requires_grad}
        save_file(state, str(directory / WEIGHTS_FILE))
        meta = {
            "format_version": FORMAT_VERSION,
            "labels": self.labels,
            "max_length": self.max_length,
            "encoder": self.encoder_spec,
            "oos_vectors": self.oos_vectors,
            **(extra_meta or {}),
        }
        (directory / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2))

    @classmethod
    def load(cls, directory: Path, encoder_path_for) -> "IntentClassifier":
        """``encoder_path_for(spec)`` resolves the base encoder recorded at training time."""
        from safetensors.torch import load_file

        require_trained(directory)
        meta = json.loads((directory / META_FILE).read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise ModelNotTrained(f"{directory} was written by another version; retrain with `assistant train-nlu`")
        tokenizer, encoder = load_backbone(encoder_path_for(meta["encoder"]))
        module = _build_module(encoder, len(meta["labels"]), oos_vectors=meta.get("oos_vectors", "last"))
        missing, unexpected = module.load_state_dict(load_file(str(directory / WEIGHTS_FILE)), strict=False)
        frozen = {"encoder.embeddings.word_embeddings.weight"}
        if unexpected or set(missing) - frozen:
            raise ModelNotTrained(
                f"{directory} does not fit the base encoder {meta['encoder']!r} "
                f"(missing {sorted(set(missing) - frozen)[:3]}, unexpected {unexpected[:3]}); retrain"
            )
        module.eval()
        return cls(tokenizer, module, meta["labels"], meta["max_length"], meta["encoder"])

    # ---------------------------------------------------------------- training
    @classmethod
    def train(
        cls,
        texts: Sequence[str],
        intents: Sequence[str],
        encoder_path: str,
        encoder_spec: str,
        *,
        epochs: int = 8,
        batch_size: int = 16,
        learning_rate: float = 1e-4,
        max_length: int = 64,
        seed: int = 13,
        progress: bool = True,
        group: int = 8,
        oos_vectors: str = "layers",
    ) -> tuple["IntentClassifier", TrainReport]:
        """Fine-tune on ``texts``/``intents``. Batches are drawn by :func:`length_grouped_batches`
        (``group`` = 1: plain random batches)."""
        from tqdm import tqdm

        if len(texts) != len(intents) or not texts:
            raise ValueError("training needs the same, non-zero number of texts and intents")
        labels = sorted(set(intents))
        if len(labels) < 2:
            raise ValueError("training needs at least two intents")
        import torch

        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)          # before the head is built: its initial weights come from this seed too
        tokenizer, encoder = load_backbone(encoder_path)
        module = _build_module(encoder, len(labels), oos_vectors=oos_vectors)
        y = [labels.index(i) for i in intents]
        enc = tokenizer(list(texts), truncation=True, max_length=max_length)
        ids = enc["input_ids"]

        head_params = list(module.head.parameters())
        body_params = [p for n, p in module.named_parameters() if p.requires_grad and not n.startswith("head.")]
        optimizer = torch.optim.AdamW(
            [{"params": body_params, "lr": learning_rate}, {"params": head_params, "lr": learning_rate * 20}],
            weight_decay=0.01,
        )
        steps_per_epoch = math.ceil(len(ids) / batch_size)
        total = steps_per_epoch * epochs
        warmup = max(1, total // 10)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (total - s) / max(1, total - warmup))
        )
        loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.05)
        pad = tokenizer.pad_token_id
        started = time.perf_counter()
        module.train()
        last_loss = float("nan")
        bar = tqdm(total=total, desc="fine-tuning intent classifier", unit="step", disable=not progress,
                   mininterval=0.2 if sys.stderr.isatty() else 30.0)
        lengths = [len(x) for x in ids]
        for _ in range(epochs):
            for idx in length_grouped_batches(lengths, batch_size, group):
                width = max(len(ids[i]) for i in idx)
                input_ids = torch.full((len(idx), width), pad, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for row, i in enumerate(idx):
                    input_ids[row, : len(ids[i])] = torch.tensor(ids[i])
                    mask[row, : len(ids[i])] = 1
                logits = module(input_ids, mask)
                loss = loss_fn(logits, torch.tensor([y[i] for i in idx]))
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                last_loss = loss.item()
                bar.set_postfix(loss=f"{last_loss:.3f}")
                bar.update()
        bar.close()
        module.eval()
        report = TrainReport(len(ids), len(labels), epochs, time.perf_counter() - started, last_loss)
        return cls(tokenizer, module, labels, max_length, encoder_spec), report
