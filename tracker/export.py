"""Export a network for other runtimes: ONNX (backbone + head, dynamic batch) and TorchScript.

Both formats take what the tracker crops: uint8 BGR crops (N, S, S, 3) as OpenCV gives them; the
layout change and Conv+BN folding are baked into the graph, so callers need no pre-processing.
The backbone maps crops to features; the head scores search features (Nx, C, H, W) against
exemplar features (Nz, C, h, w), search i against exemplar i // (Nx / Nz). Its outputs are the
family's: SiamFC ``response`` (Nx, 1, n, n); box regression ``cls`` (Nx, 2, n, n) logits and ``loc``
(Nx, 4, n, n) l,t,r,b in search-crop pixels.
"""
from __future__ import annotations

import io
import json
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .config import LoopConfig
from .families import default_loop_config, loop_config
from .errors import OutputError
from .model_zoo import resolve
from .models import Network, inference_copy

FORMATS = ("onnx", "torchscript")
OPSET = 17
BACKBONE_FILE, HEAD_FILE, TORCHSCRIPT_FILE, INFO_FILE = "backbone.onnx", "head.onnx", "siamtrack.pt", "siamtrack.json"
GRAPH_FIELDS = ("exemplar_size", "instance_size", "searches_per_target")  # the loop config fields _examples reads
# torch's exporter and tracer keep global state (GLOBALS.in_onnx_export): two threads exporting at once fail
_export_lock = threading.Lock()


class CropNet(nn.Module):
    """An inference copy of a network whose ``embed`` takes uint8 BGR crops (N, S, S, 3)."""

    def __init__(self, net: Network) -> None:
        super().__init__()
        self.net = inference_copy(net, "bgr")

    def embed(self, crops: torch.Tensor) -> torch.Tensor:
        return self.net.embed(crops.permute(0, 3, 1, 2).float())

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.net.outputs(z, x)


class _Embed(nn.Module):
    def __init__(self, crop_net: CropNet) -> None:
        super().__init__()
        self.crop_net = crop_net

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return self.crop_net.embed(crops)


class _Frame(nn.Module):
    """One target's whole frame: exemplar features and search crops in, the family's outputs out."""

    def __init__(self, crop_net: CropNet) -> None:
        super().__init__()
        self.crop_net = crop_net

    def forward(self, z: torch.Tensor, crops: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.crop_net(z, self.crop_net.embed(crops))


def _examples(crop_net: CropNet, config: LoopConfig, static: int = 0) -> tuple[torch.Tensor, ...]:
    """(exemplar crops, search crops, exemplar features, search features) to trace with: 2 exemplars and
    2 x k searches (k = 3 where the family allows several searches per exemplar, as SiamFC's scales) so
    no batch size is baked in; ``static``: one target's frame with search crops of this size (1 exemplar,
    its searches_per_target crops), the shapes the graph will then be fixed to."""
    k = crop_net.net.searches_per_exemplar or 3
    nz, nx = (1, config.searches_per_target) if static else (2, 2 * k)
    size = static or config.instance_size
    z_crops = torch.zeros(nz, config.exemplar_size, config.exemplar_size, 3, dtype=torch.uint8)
    x_crops = torch.zeros(nx, size, size, 3, dtype=torch.uint8)
    with torch.no_grad():
        return z_crops, x_crops, crop_net.embed(z_crops), crop_net.embed(x_crops)


def _quiet_export(module: nn.Module, args: tuple[torch.Tensor, ...], names: list[str], outputs: list[str],
                  axes: dict[str, dict[int, str]]) -> bytes:
    buf = io.BytesIO()
    with _export_lock, warnings.catch_warnings():
        # The exporter's deprecation notice and tracer hints about shape constants (the exemplar
        # feature size is fixed by design) are not actionable for our users.
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, buf, dynamo=False, opset_version=OPSET, input_names=names,
                          output_names=outputs, dynamic_axes=axes)
    return buf.getvalue()


def _default_config(net: Network) -> LoopConfig:
    return default_loop_config(net.config)


def onnx_models(net: Network, config: LoopConfig | None = None, static: int = 0) -> tuple[bytes, bytes]:
    """Serialized ONNX (backbone, head): crops -> features; (exemplar, search features) -> outputs.

    Dynamic batch and size unless ``static`` (a search-crop size): then fixed to one target's normal
    frame with crops of that size (one of the loop's ``frame_sizes``), so ONNX Runtime
    folds every shape computation and a batch-1 depth-wise correlation becomes one grouped convolution
    (the NanoTrack-v3 head runs ~16 % faster; the tracker's single-target fast path).
    """
    crop_net = CropNet(net).eval()
    z_crops, x_crops, z, x = _examples(crop_net, config or _default_config(net), static)
    outputs = list(net.output_names)
    backbone_axes = {"crops": {0: "batch", 1: "height", 2: "width"}, "features": {0: "batch", 2: "fh", 3: "fw"}}
    head_axes = {"exemplar": {0: "targets"}, "search": {0: "batch", 2: "height", 3: "width"},
                 **{name: {0: "batch", 2: "rh", 3: "rw"} for name in outputs}}
    backbone = _quiet_export(_Embed(crop_net), (x_crops if static else z_crops,), ["crops"], ["features"],
                             {} if static else backbone_axes)
    return backbone, _quiet_export(crop_net, (z, x), ["exemplar", "search"], outputs, {} if static else head_axes)


def onnx_frame_model(net: Network, config: LoopConfig, size: int) -> bytes:
    """Serialized ONNX of one target's normal frame with search crops of ``size``: (exemplar features,
    crops) -> outputs, every shape fixed. One graph in one session instead of a backbone and a head:
    no feature hand-off between sessions, and one intra-op pool, so a second thread no longer spins
    against the first (on 2 cores the default tracks ~1.5x faster at 2 threads, tools/speed.py)."""
    crop_net = CropNet(net).eval()
    _, x_crops, z, _ = _examples(crop_net, config, size)
    return _quiet_export(_Frame(crop_net), (z, x_crops), ["exemplar", "crops"], list(net.output_names), {})


def torchscript_module(net: Network, config: LoopConfig | None = None) -> torch.jit.ScriptModule:
    """Traced module with ``embed(crops)`` and ``forward(exemplar_features, search_features)``."""
    crop_net = CropNet(net).eval()
    z_crops, _, z, x = _examples(crop_net, config or _default_config(net))
    with _export_lock, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.trace_module(crop_net, {"embed": (z_crops,), "forward": (z, x)})


def _info(fmt: str, net: Network, config: LoopConfig, metadata: dict[str, Any]) -> dict[str, Any]:
    return {"format": f"siamtrack-{fmt}", "model": metadata.get("name", ""), "family": net.config.family,
            "outputs": list(net.output_names), "model_config": {**net.config.to_dict(), "input_order": "bgr"},
            "tracker_config": config.to_dict(),
            "inputs": "uint8 BGR crops (N, S, S, 3); exemplar S = exemplar_size, search S = instance_size"}


def export(weights: str | os.PathLike | None, fmt: str, output: str | os.PathLike) -> list[Path]:
    """Write ``weights`` (a model name, checkpoint path, or None = default) in ``fmt`` into folder ``output``.

    An ``output`` named like a model file (``.onnx``, ``.pt``, ``.pth``) or naming an existing file is an
    OutputError: the export is several files, so a folder.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    out = Path(output)
    if out.suffix.lower() in (".onnx", ".pt", ".pth") or out.is_file():  # before any work: a file was expected
        files = {"onnx": f"{BACKBONE_FILE}, {HEAD_FILE}", "torchscript": TORCHSCRIPT_FILE}[fmt]
        raise OutputError(f"--output {out} {'is an existing file' if out.is_file() else 'looks like a file name'}, "
                          f"but export writes a folder ({files}, {INFO_FILE}); pass a folder such as "
                          f"--output {out.with_name(f'{out.stem}_{fmt}')}/")
    net, overrides, metadata = resolve(weights)
    config = loop_config(net.config.family, overrides)
    try:
        out.mkdir(parents=True, exist_ok=True)
        if fmt == "onnx":
            files = dict(zip((BACKBONE_FILE, HEAD_FILE), onnx_models(net, config)))
            written = [out / name for name in files]
            for path, data in zip(written, files.values()):
                path.write_bytes(data)
        else:
            written = [out / TORCHSCRIPT_FILE]
            torchscript_module(net, config).save(str(written[0]))
        info = out / INFO_FILE
        info.write_text(json.dumps(_info(fmt, net, config, metadata), indent=1))
    except OSError as exc:
        raise OutputError(f"cannot write the export to {out} ({exc.strerror or exc}); pass a writable --output folder") from None
    return [*written, info]
