"""Exported ONNX graphs and their ONNX Runtime sessions, made once and reused: building a tracker must not
cost an export (~1 s) each time.

Graphs are keyed by what they are made of (the weights' digest, the family's model config, the loop config
fields that shape the graph, the siamtrack, torch, onnxruntime versions and the opset), so any family that
exports through :mod:`tracker.export` is cached alike. Three levels: sessions shared in-process (the same key,
thread count and providers: ONNX Runtime's ``run`` is thread-safe), graph bytes in-process, and graph files in
the user's cache folder (``$SIAMTRACK_CACHE``, else ``$XDG_CACHE_HOME/siamtrack`` or ``~/.cache/siamtrack``).
Files are written to a temporary name and renamed, so no process reads half a file, and carry a sha256 of
their content: a file that fails it (or fails to load) is rebuilt, never trusted.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import warnings
import weakref
from pathlib import Path
from typing import Any, Callable

import onnxruntime as ort
import torch

from .config import LoopConfig
from .export import GRAPH_FIELDS, OPSET, onnx_frame_model, onnx_models
from .models import Network
from .models.checkpoints import weights_digest

CACHE_ENV = "SIAMTRACK_CACHE"
MAGIC = b"siamtrack-graphs 1\n"
Graphs = tuple[bytes, ...]

# kind -> the export that makes its graphs: dynamic backbone + head, static pair for one crop size, fused frame
BUILDERS: dict[str, Callable[[Network, LoopConfig, int], Graphs]] = {
    "dynamic": lambda net, config, size: onnx_models(net, config),
    "static": lambda net, config, size: onnx_models(net, config, size),
    "frame": lambda net, config, size: (onnx_frame_model(net, config, size),),
}

_lock = threading.RLock()  # guards the two in-process caches; exports are serialised in tracker.export
_graphs: dict[str, Graphs] = {}
_sessions: dict[tuple[str, int, str], tuple[ort.InferenceSession, ...]] = {}
_digests: weakref.WeakKeyDictionary[Network, str] = weakref.WeakKeyDictionary()


def cache_dir() -> Path:
    """Where graph files live: ``$SIAMTRACK_CACHE/onnx``, else the user's cache folder's ``siamtrack/onnx``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]) / "onnx"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "siamtrack" / "onnx"


def _digest(net: Network) -> str:
    """The weights' digest, once per network object (trackers of one model share their net)."""
    with _lock:
        digest = _digests.get(net)
        if digest is None:
            digest = _digests[net] = weights_digest(net.state_dict())
        return digest


def graph_key(net: Network, config: LoopConfig, kind: str, size: int = 0) -> str:
    """sha256 naming the graphs of ``kind`` (and crop ``size``) exported from ``net`` under ``config``."""
    from . import __version__
    parts = {"kind": kind, "size": size, "weights": _digest(net), "model": net.config.to_dict(),
             "loop": {f: getattr(config, f) for f in GRAPH_FIELDS}, "siamtrack": __version__,
             "torch": torch.__version__, "onnxruntime": ort.__version__, "opset": OPSET}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _pack(graphs: Graphs) -> bytes:
    header = {"sha256": [hashlib.sha256(g).hexdigest() for g in graphs], "sizes": [len(g) for g in graphs]}
    return MAGIC + json.dumps(header).encode() + b"\n" + b"".join(graphs)


def _unpack(data: bytes) -> Graphs | None:
    """The graphs of a cache file, or None when it is not one or any graph fails its sha256."""
    if not data.startswith(MAGIC):
        return None
    try:
        line, body = data[len(MAGIC):].split(b"\n", 1)
        header = json.loads(line)
        graphs, at = [], 0
        for size, digest in zip(header["sizes"], header["sha256"]):
            graphs.append(body[at:at + size])
            at += size
    except (ValueError, KeyError, TypeError):
        return None
    if at != len(body) or any(hashlib.sha256(g).hexdigest() != d for g, d in zip(graphs, header["sha256"])):
        return None
    return tuple(graphs)


def _read(path: Path) -> Graphs | None:
    try:
        return _unpack(path.read_bytes())
    except OSError:
        return None


def _write(path: Path, graphs: Graphs) -> None:
    """Temp file + rename; a cache that cannot be written is a warning, never a failed tracker."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_pack(graphs))
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        warnings.warn(f"cannot write the ONNX graph cache {path.parent} ({exc.strerror or exc}); graphs are "
                      f"exported again in each new process; set ${CACHE_ENV} to a writable folder", stacklevel=3)


def graphs(net: Network, config: LoopConfig, kind: str, size: int = 0, rebuild: bool = False) -> Graphs:
    """The serialized graphs of ``kind``: from memory, else the cache file, else exported (and stored)."""
    key = graph_key(net, config, kind, size)
    with _lock:
        found = None if rebuild else _graphs.get(key)
        if found is None:
            path = cache_dir() / f"{key}.onnx"
            found = None if rebuild else _read(path)
            if found is None:
                found = BUILDERS[kind](net, config, size)
                _write(path, found)
            _graphs[key] = found
        return found


def session_options(threads: int) -> ort.SessionOptions:
    """All graph optimisations on; the session's own intra-op pool of ``threads`` (no global setting)."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return opts


def sessions(net: Network, config: LoopConfig, kind: str, size: int, threads: int,
             providers: list[Any]) -> tuple[ort.InferenceSession, ...]:
    """Sessions for the graphs of ``kind``, shared by every engine asking with the same threads and providers.
    Graphs that fail to load are exported again once (a cache file damaged in a way its sha256 cannot tell)."""
    key = (graph_key(net, config, kind, size), threads, repr(providers))
    with _lock:
        found = _sessions.get(key)
        if found is None:
            try:
                found = _make(graphs(net, config, kind, size), threads, providers)
            except Exception:  # noqa: BLE001 - onnxruntime raises its own types for a bad graph
                found = _make(graphs(net, config, kind, size, rebuild=True), threads, providers)
            _sessions[key] = found
        return found


def _make(serialized: Graphs, threads: int, providers: list[Any]) -> tuple[ort.InferenceSession, ...]:
    return tuple(ort.InferenceSession(g, session_options(threads), providers=providers) for g in serialized)
