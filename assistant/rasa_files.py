"""Rasa's endpoints file, generated from the settings (so one settings object drives every process)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import yaml

from assistant.settings import Settings


def endpoints(settings: Settings) -> dict:
    config: dict = {
        "nlu": {"url": settings.nlu_url},
        "action_endpoint": {"url": settings.action_url},
    }
    if settings.redis_url:
        u = urlparse(settings.redis_url)
        if u.scheme not in ("redis", "rediss") or not u.hostname:
            raise ValueError(f"ASSISTANT_REDIS_URL={settings.redis_url!r} is not a redis://host:port/db URL")
        db = int(u.path.strip("/") or 0)
        common = {"url": u.hostname, "port": u.port or 6379, "db": db}
        if u.password:
            common["password"] = u.password
        if u.scheme == "rediss":
            common["use_ssl"] = True
        config["tracker_store"] = {"type": "redis", **common, "key_prefix": "cloudmax", "record_exp": 604800}
        config["lock_store"] = {"type": "redis", **common, "key_prefix": "cloudmax"}
    else:
        config["tracker_store"] = {"type": "SQL", "dialect": "sqlite", "db": str(settings.var_dir / "rasa_trackers.db")}
    return config


def write_endpoints(settings: Settings) -> Path:
    path = settings.var_dir / "endpoints.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Generated from the assistant's settings by `assistant endpoints`; edit .env, not this file.\n"
    path.write_text(header + yaml.safe_dump(endpoints(settings), sort_keys=False))
    return path


def latest_rasa_model(settings: Settings) -> Path | None:
    models = sorted(settings.rasa_model_dir.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    return models[-1] if models else None
