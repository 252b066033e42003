"""The NLU HTTP service Rasa calls through ``endpoints.yml`` (``nlu: url:``).

``POST /model/parse`` takes ``{"text", "message_id", "token"}`` and answers Rasa's parse format.
Errors are mapped to HTTP codes here, at the edge: bad requests get 400 with a message saying
what was wrong, never a 500 with a stack trace.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from assistant.nlu.parser import NluParser
from assistant.settings import Settings

log = logging.getLogger(__name__)


class ParseRequest(BaseModel):
    text: str = Field(..., description="The user's message")
    message_id: str | None = None
    token: str | None = None


@dataclass
class Metrics:
    requests: int = 0
    fallbacks: int = 0
    bad_requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def render(self) -> str:
        lines = [
            ("nlu_parse_requests_total", self.requests),
            ("nlu_parse_fallbacks_total", self.fallbacks),
            ("nlu_bad_requests_total", self.bad_requests),
            ("nlu_parse_errors_total", self.errors),
            ("nlu_parse_seconds_total", round(self.seconds, 6)),
        ]
        return "".join(f"{k} {v}\n" for k, v in lines)


def limit_blas_threads() -> None:
    """One BLAS thread for the serving process.

    Between two forward passes the parser does small numpy work (normalising the sentence vector,
    the out-of-scope detector's scan of the training vectors). With OpenBLAS's default of one thread
    per core, those threads spin after each call and take the cores ONNX Runtime's next forward pass
    needs: on CLINC150's test messages on 2 cores, p50 24 ms with them and 10 ms without
    (``benchmarks/nlu_latency.py`` measures both in one process).
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def load_parser(settings: Settings) -> NluParser:
    """Build the parser from the trained model and ``nlu_data/`` (heavy: loads the model)."""
    import torch

    from assistant.models.registry import resolve_encoder
    from assistant.nlu.classifier import IntentClassifier
    from assistant.nlu.data import load_nlu_data
    from assistant.nlu.entities import EntityExtractor
    from assistant.nlu.parser import ParserConfig

    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    encoder_path_for = lambda spec: resolve_encoder(settings, spec)  # noqa: E731
    if settings.nlu_runtime == "torch":
        classifier = IntentClassifier.load(settings.nlu_model_dir, encoder_path_for)
    else:
        from assistant.nlu.onnx_runtime import load_onnx_classifier

        classifier = load_onnx_classifier(settings.nlu_model_dir, encoder_path_for,
                                          int8=settings.nlu_runtime == "onnx-int8", threads=settings.torch_threads)
    extractor = EntityExtractor(load_nlu_data(settings.nlu_data_dir))
    config = ParserConfig(settings.nlu_fallback_threshold, settings.nlu_fallback_intent, settings.nlu_max_chars)
    detector = None
    if settings.nlu_oos_method != "none":
        from assistant.nlu.oos import OosDetector

        detector = OosDetector.load(settings.nlu_model_dir)
        if detector is None:
            log.warning("the NLU model in %s has no out-of-scope detector (trained by an older version): "
                        "only the fallback threshold applies; retrain with `assistant train-nlu`", settings.nlu_model_dir)
    limit_blas_threads()
    return NluParser(classifier, extractor, config, detector=detector)


def create_app(settings: Settings, parser: NluParser | None = None) -> FastAPI:
    """App factory. Pass ``parser`` to serve a ready one (tests); otherwise it loads at startup."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if app.state.parser is None:
            started = time.perf_counter()
            app.state.parser = load_parser(settings)
            log.info("NLU model loaded in %.1f s", time.perf_counter() - started)
        yield

    app = FastAPI(title="CloudMax NLU", version="0.1.0", lifespan=lifespan)
    app.state.parser = parser
    app.state.metrics = Metrics()

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError):
        with app.state.metrics.lock:
            app.state.metrics.bad_requests += 1
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return JSONResponse(
            status_code=400,
            content={"error": "bad_request", "message": f"expected JSON {{\"text\": \"...\"}}: {problems}"},
        )

    @app.get("/health")
    def health():
        p: NluParser = app.state.parser
        return {"status": "ok", "intents": sorted(p.classifier.labels), "encoder": p.classifier.encoder_spec,
                "runtime": getattr(p.classifier, "runtime", "torch")}

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics():
        return app.state.metrics.render()

    @app.post("/model/parse")
    def parse(req: ParseRequest):
        m: Metrics = app.state.metrics
        started = time.perf_counter()
        try:
            result = app.state.parser.parse(req.text)
        except Exception:
            with m.lock:
                m.errors += 1
            log.exception("nlu.parse.error message_id=%s", req.message_id)
            return JSONResponse(status_code=500, content={"error": "internal", "message": "the classifier failed; see the NLU service log"})
        with m.lock:
            m.requests += 1
            m.seconds += time.perf_counter() - started
            if result["intent"]["name"] == settings.nlu_fallback_intent:
                m.fallbacks += 1
        return result

    return app
