"""Checkpoint I/O: our self-describing format (any family) and the importers for third-party weights
(siamfc-pytorch state dicts here; NanoTrack state dicts and ONNX pairs in :mod:`.nanotrack`; LightFC checkpoints
and graphs in :mod:`.lightfc`).

Checkpoints are untrusted input: they are read with ``weights_only=True`` (no code runs on load; objects
that loader refuses, as the settings pytracking-style trainers pickle, become inert stand-ins instead),
every tensor shape is checked against the architecture before use, and our format carries a
sha256 of its weights so silent corruption is caught.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import types
from pathlib import Path
from typing import Any, Sequence, Union

import torch

from ..config import ModelConfig
from ..errors import WeightsError
from ..families import model_loop_overrides, network_map_geometry
from . import lightfc, nanotrack
from .backbones import ALEXNET_CHANNELS, scaled_channels
from .network import Network, build_network, model_config

WeightsSource = Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]

FORMAT = "siamtrack-checkpoint"
VERSION = 1


def weights_digest(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 over names, dtypes, shapes and bytes of all tensors, in sorted key order."""
    h = hashlib.sha256()
    for key in sorted(state_dict):
        t = state_dict[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """torch.save to a temp file in the same folder, then rename: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(net: Network, path: str | os.PathLike, metadata: dict[str, Any] | None = None,
                    tracker_config: dict[str, Any] | None = None) -> str:
    """Write ``net`` in our format; returns the weights digest stored in the file."""
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    digest = weights_digest(state)
    atomic_save({
        "format": FORMAT,
        "version": VERSION,
        "family": net.config.family,
        "model_config": net.config.to_dict(),
        "tracker_config": dict(tracker_config or {}),
        "metadata": dict(metadata or {}),
        "state_dict": state,
        "sha256": digest,
    }, path)
    return digest


def _load_failure(exc: Exception) -> str:
    """The useful part of torch.load's error: its weights-only refusals are paragraphs of advice."""
    text = str(exc).strip()
    if "WeightsUnpickler error:" in text:
        detail = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()[0]
        return f"not plain tensors/data, refused by weights_only loading: {detail[:120]}"
    return text.splitlines()[0][:160] if text else type(exc).__name__


class _Inert:
    """What any class or function a checkpoint names becomes, unless it rebuilds tensors: built from
    anything, it runs nothing and keeps nothing (a training run's settings, meters, optimiser hooks)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


_TENSOR_GLOBALS = {("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"),
                   ("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_parameter_with_state"),
                   ("torch", "Size")}


class _TensorsOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _TENSOR_GLOBALS:
            return super().find_class(module, name)
        return _Inert


_TENSORS_ONLY = types.ModuleType("siamtrack_tensors_only")
_TENSORS_ONLY.Unpickler = _TensorsOnlyUnpickler  # type: ignore[attr-defined]
_TENSORS_ONLY.load = pickle.load  # type: ignore[attr-defined]  (torch's legacy format path; never reached for zip files)


def _tensors_only(path: Path) -> Any:
    """A checkpoint whose extras weights-only loading refuses (pytracking-style trainers, LightFC's among
    them, pickle their settings and meters beside the state dict): tensors and plain containers are read,
    every other object becomes an inert stand-in, so no code named in the file runs."""
    return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_TENSORS_ONLY)


def read_file(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"checkpoint not found: {path}; pass a shipped model name (see `siamtrack models`) or an existing .pth file")
    if path.is_dir():
        raise WeightsError(f"checkpoint path is a directory without a NanoTrack .onnx pair: {path}; pass the .pth file inside it")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated / foreign files
        reason = _load_failure(exc)
        if "refused by weights_only loading" in reason:
            try:
                return _tensors_only(path)
            except Exception:  # noqa: BLE001  a file that is broken beyond its extra objects: the first reason stands
                pass
        raise WeightsError(f"cannot read checkpoint {path}: corrupt, truncated or not a PyTorch weights file ({reason}); re-download or re-train it") from None


def _strip_prefix(state: dict[str, Any]) -> dict[str, Any]:
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def is_siamfc_pytorch(obj: Any) -> bool:
    """siamfc-pytorch checkpoints are bare state dicts keyed ``backbone.conv1.0.weight``..."""
    if not isinstance(obj, dict) or obj.get("format") == FORMAT:
        return False
    state = _strip_prefix(obj)
    return "backbone.conv1.0.weight" in state and "backbone.conv5.0.weight" in state


def _width_for(channels: tuple[int, ...], path: Path) -> float:
    for k in range(1, 401):
        if scaled_channels(k / 100) == channels:
            return k / 100
    raise WeightsError(f"{path}: AlexNet channel counts {channels} match no width multiplier (expected multiples of {ALEXNET_CHANNELS})")


def import_siamfc_pytorch(obj: dict[str, Any], path: Path) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """Map a siamfc-pytorch AlexNetV1 state dict (any width) onto our SiameseNet."""
    state = _strip_prefix(obj)
    try:
        channels = tuple(int(state[f"backbone.conv{i}.0.weight"].shape[0]) for i in range(1, 6))
    except KeyError as exc:
        raise WeightsError(f"{path}: siamfc-pytorch checkpoint lacks {exc.args[0]}; expected keys backbone.conv1.0.weight .. backbone.conv5.0.weight") from None
    config = ModelConfig(backbone="alexnet", width=_width_for(channels, path), head="xcorr", out_scale=1e-3, input_order="rgb")
    state = {k: v for k, v in state.items() if k.startswith("backbone.")}
    state["head.bias"] = torch.zeros(1)
    return config, state


def _describe(net: Network) -> str:
    c = net.config
    if c.family == "siamfc":
        return f"{c.backbone} (width {c.width})"
    kind = "box-regression" if c.family == "box" else "centre-head"
    return f"{kind} ({len(c.blocks)} blocks, {c.channels} channels)"


def check_and_load(net: Network, state: dict[str, Any], path: Path) -> None:
    """Load ``state`` into ``net`` after checking every key and shape; errors list expected vs found."""
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k}: expected {tuple(expected[k].shape)}, found {tuple(getattr(state[k], 'shape', ()))}"
             for k in expected
             if k in state and (not isinstance(state[k], torch.Tensor) or state[k].shape != expected[k].shape)]
    problems = []
    if wrong:
        problems.append("shape mismatch " + "; ".join(wrong[:4]) + (" ..." if len(wrong) > 4 else ""))
    if missing:
        problems.append("missing " + ", ".join(missing[:4]) + (" ..." if len(missing) > 4 else ""))
    if unexpected:
        problems.append("unexpected " + ", ".join(unexpected[:4]) + (" ..." if len(unexpected) > 4 else ""))
    if problems:
        raise WeightsError(f"{path} does not fit the {_describe(net)} architecture: " + " | ".join(problems))
    net.load_state_dict(state)


def check_finite(net: Network, source: WeightsSource) -> None:
    """Refuse weights holding NaN or infinity (a diverged training run, a corrupt export): such a net tracks
    nothing yet raises nothing, every box stays the first one."""
    bad = [k for k, v in net.state_dict().items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        where = ", ".join(map(str, source)) if isinstance(source, (list, tuple)) else source
        raise WeightsError(f"{where}: {len(bad)} weight tensor(s) hold NaN or infinite values ({', '.join(bad[:3])}"
                           f"{' ...' if len(bad) > 3 else ''}); the weights are unusable, use another checkpoint")


def _is_onnx_pair(source: WeightsSource) -> bool:
    if isinstance(source, (list, tuple)):
        return True
    path = Path(source)
    return path.suffix == ".onnx" or (path.is_dir() and any(path.glob("*.onnx")))


def load_checkpoint(source: WeightsSource) -> tuple[Network, dict[str, Any], dict[str, Any]]:
    """Load our checkpoint (any family), a siamfc-pytorch or NanoTrack state dict, or a NanoTrack ONNX
    pair (two files, or their folder), LightFC's checkpoint or graph folder; returns (net in eval mode,
    tracker config overrides, metadata). Whatever the importer, weights that are not all finite are a WeightsError."""
    net, overrides, metadata = _import(source)
    check_finite(net, source)
    return net, overrides, metadata


def _import(source: WeightsSource) -> tuple[Network, dict[str, Any], dict[str, Any]]:
    """The importer ``source`` is for, by content; (net in eval mode, tracker config overrides, metadata)."""
    folder = lightfc.onnx_folder(source) if isinstance(source, (str, os.PathLike)) else None
    if folder is not None:
        net, overrides, metadata = lightfc.import_onnx(folder)
        return net.eval(), overrides, metadata
    if _is_onnx_pair(source):
        net, overrides, metadata = nanotrack.import_onnx_pair([source] if isinstance(source, (str, os.PathLike)) else source)
        return net.eval(), overrides, metadata
    path = Path(source)
    obj = read_file(path)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        try:
            config = model_config(obj.get("family", "siamfc"), obj["model_config"])
            state = obj["state_dict"]
        except (KeyError, TypeError, ValueError) as exc:
            raise WeightsError(f"{path}: malformed siamtrack checkpoint ({exc}); re-train or re-export it") from None
        if weights_digest(state) != obj.get("sha256"):
            raise WeightsError(f"{path}: weights do not match their stored sha256 (file corrupted or edited); re-download or re-train it")
        tracker_overrides = dict(obj.get("tracker_config") or {})
        metadata = dict(obj.get("metadata") or {})
    elif is_siamfc_pytorch(obj):
        config, state = import_siamfc_pytorch(obj, path)
        tracker_overrides, metadata = {}, {"source": "siamfc-pytorch", "path": str(path)}
    elif nanotrack.is_nanotrack_state_dict(obj):
        config, state, tracker_overrides, metadata = nanotrack.import_state_dict(obj, path)
    elif lightfc.is_official_checkpoint(obj):
        config, state = lightfc.import_official(obj, path)
        tracker_overrides, metadata = {}, {"source": "lightfc-checkpoint", "path": str(path), "name": "lightfc"}
    else:
        keys = ", ".join(list(obj)[:3]) if isinstance(obj, dict) else type(obj).__name__
        raise WeightsError(f"{path} is neither a siamtrack checkpoint nor a siamfc-pytorch or NanoTrack state dict (found {keys}); "
                           f"expected 'format': '{FORMAT}', keys backbone.conv1.0.weight ..., backbone.features.* + ban_head.*, "
                           f"or LightFC's official checkpoint (key 'net')")
    try:
        net = build_network(config)
    except ValueError as exc:
        raise WeightsError(f"{path}: cannot build the architecture it describes ({exc})") from None
    check_and_load(net, state, path)
    tracker_overrides = _without_map_geometry(config, tracker_overrides, path)
    return net.eval(), {**model_loop_overrides(config), **tracker_overrides}, metadata


def _without_map_geometry(config: Any, overrides: dict[str, Any], path: Path) -> dict[str, Any]:
    """Checkpoints saved before 2026-12-08 (the shipped ``siamtrack_centre`` among them) stored the network's map
    geometry among their loop settings; it is the network's own now (``CentreModelConfig.map_geometry``), so it is
    dropped here once it agrees with the network, and a file where it does not is malformed."""
    kept = dict(overrides)
    for key, value in network_map_geometry(config).items():
        if key in kept and kept.pop(key) != value:
            raise WeightsError(f"{path}: its stored {key} ({overrides[key]}) contradicts its network's ({value}); "
                               f"re-train or re-export it")
    return kept
