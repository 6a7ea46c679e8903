"""Shipped models: names -> files in ``weights/`` with their sha256, resolved and verified on load."""
from __future__ import annotations

import json
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .errors import WeightsError
from .models import Network, load_checkpoint
from .models.checkpoints import file_sha256

REGISTRY = "registry.json"


def weights_dirs() -> list[Path]:
    """Where shipped weights may live: $SIAMTRACK_WEIGHTS, the source tree, the install prefix."""
    dirs = []
    if os.environ.get("SIAMTRACK_WEIGHTS"):
        dirs.append(Path(os.environ["SIAMTRACK_WEIGHTS"]))
    dirs.append(Path(__file__).resolve().parent.parent / "weights")
    dirs.append(Path(sys.prefix) / "share" / "siamtrack" / "weights")
    return dirs


@dataclass(frozen=True)
class ShippedModel:
    name: str
    path: Path
    sha256: str
    description: str


def shipped_models() -> dict[str, ShippedModel]:
    """All models named in the first registry found, plus which one is the default (key '')."""
    for d in weights_dirs():
        reg = d / REGISTRY
        if reg.is_file():
            data = json.loads(reg.read_text())
            models = {name: ShippedModel(name, d / m["file"], m["sha256"], m.get("description", ""))
                      for name, m in data["models"].items()}
            if data.get("default") in models:
                models[""] = models[data["default"]]
            return models
    return {}


def default_model_name() -> str:
    models = shipped_models()
    if "" not in models:
        raise WeightsError("no shipped default model found (weights/registry.json missing); pass weights=PATH to a checkpoint")
    return models[""].name


def resolve(weights: str | os.PathLike | Sequence[str | os.PathLike] | None) -> tuple[Network, dict[str, Any], dict[str, Any]]:
    """Load a shipped model by name (sha256-verified), or a checkpoint path; None = the default.

    Paths may also name third-party weights, detected by content: a siamfc-pytorch or NanoTrack state
    dict, or a NanoTrack ONNX pair as its folder, two paths, or one string ``BACKBONE.onnx,HEAD.onnx``.
    """
    if isinstance(weights, (list, tuple)):
        return _load_path(list(weights))
    models = shipped_models()
    key = "" if weights is None else str(weights)
    if key in models:
        m = models[key]
        if not m.path.is_file():
            raise WeightsError(f"shipped model {m.name!r} is missing its file {m.path}; reinstall siamtrack")
        digest = file_sha256(m.path)
        if digest != m.sha256:
            raise WeightsError(f"shipped model {m.name!r} ({m.path}) fails its sha256 check (got {digest[:12]}..., expected {m.sha256[:12]}...); reinstall siamtrack")
        net, overrides, meta = load_checkpoint(m.path)
        return net, overrides, {**meta, "name": m.name}
    if weights is None:
        raise WeightsError("no shipped default model found (weights/registry.json missing); pass weights=PATH to a checkpoint")
    path = Path(weights)
    if "," in key and not path.exists():
        return _load_path(key.split(","))
    if not path.exists() and os.sep not in key and not key.endswith((".pth", ".pt", ".onnx")):
        names = ", ".join(sorted(k for k in models if k)) or "none installed"
        raise WeightsError(f"unknown model {key!r}: not a shipped model name ({names}) nor an existing file")
    return _load_path(path)


def _load_path(source: Path | list[str | os.PathLike]) -> tuple[Network, dict[str, Any], dict[str, Any]]:
    net, overrides, meta = load_checkpoint(source)
    default = source.stem if isinstance(source, Path) else Path(source[0]).parent.name or "onnx"
    return net, overrides, {**meta, "name": meta.get("name", default)}


_loaded: dict[tuple, tuple[Network, dict[str, Any], dict[str, Any]]] = {}
_loaded_lock = threading.Lock()


def _files(weights: str | os.PathLike | Sequence[str | os.PathLike] | None) -> list[Path]:
    """The files :func:`resolve` reads for ``weights`` (unchecked: resolve explains what is wrong)."""
    if isinstance(weights, (list, tuple)):
        return [Path(w) for w in weights]
    models = shipped_models()
    key = "" if weights is None else str(weights)
    if key in models:
        return [models[key].path]
    path = Path(key)
    if "," in key and not path.exists():
        return [Path(p) for p in key.split(",")]
    return sorted(path.glob("*.onnx")) if path.is_dir() else [path]


def _identity(weights: str | os.PathLike | Sequence[str | os.PathLike] | None) -> tuple | None:
    """``weights`` as given (it names the model in the metadata) with its files' paths, sizes and modification
    times: a changed file is loaded again; None if a file is missing."""
    try:
        stats = [(str(p.resolve()), p.stat()) for p in _files(weights)]
    except OSError:
        return None
    files = tuple((name, st.st_size, st.st_mtime_ns) for name, st in stats)
    return (repr(weights), files) if files else None


def load_shared(weights: str | os.PathLike | Sequence[str | os.PathLike] | None
                ) -> tuple[Network, dict[str, Any], dict[str, Any]]:
    """:func:`resolve`, once per process and file version. Trackers never modify their network, so the trackers
    of one model share it: a pipeline starting a tracker per detection does not load the weights each time.
    Callers that train or edit a network use :func:`resolve` (their own copy)."""
    identity = _identity(weights)
    with _loaded_lock:
        found = _loaded.get(identity) if identity else None
    if found is None:
        found = resolve(weights)
        if identity:
            with _loaded_lock:
                _loaded[identity] = found
    net, overrides, metadata = found
    return net, dict(overrides), dict(metadata)
