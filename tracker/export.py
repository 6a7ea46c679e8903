"""Export a network for other runtimes: ONNX (backbone + head, dynamic batch) and TorchScript.

Both formats take what the tracker crops: uint8 BGR crops (N, S, S, 3) as OpenCV gives them; the
layout change and Conv+BN folding are baked into the graph, so callers need no pre-processing.
The backbone maps crops to features; the head scores search features (Nx, C, H, W) against
exemplar features (Nz, C, h, w), search i against exemplar i // (Nx / Nz).
"""
from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .config import TrackerConfig
from .errors import OutputError
from .model_zoo import resolve
from .models import SiameseNet, inference_copy

FORMATS = ("onnx", "torchscript")
OPSET = 17
BACKBONE_FILE, HEAD_FILE, TORCHSCRIPT_FILE, INFO_FILE = "backbone.onnx", "head.onnx", "siamtrack.pt", "siamtrack.json"


class CropNet(nn.Module):
    """An inference copy of a SiameseNet whose ``embed`` takes uint8 BGR crops (N, S, S, 3)."""

    def __init__(self, net: SiameseNet) -> None:
        super().__init__()
        self.net = inference_copy(net, "bgr")

    def embed(self, crops: torch.Tensor) -> torch.Tensor:
        return self.net.embed(crops.permute(0, 3, 1, 2).float())

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.net.head(z, x)


class _Embed(nn.Module):
    def __init__(self, crop_net: CropNet) -> None:
        super().__init__()
        self.crop_net = crop_net

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return self.crop_net.embed(crops)


def _examples(crop_net: CropNet, config: TrackerConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Example inputs of distinct batch sizes (2 exemplars, 6 searches) so no size is baked in."""
    z_crops = torch.zeros(2, config.exemplar_size, config.exemplar_size, 3, dtype=torch.uint8)
    x_crops = torch.zeros(6, config.instance_size, config.instance_size, 3, dtype=torch.uint8)
    with torch.no_grad():
        return z_crops, crop_net.embed(z_crops), crop_net.embed(x_crops)


def _quiet_export(module: nn.Module, args: tuple[torch.Tensor, ...], names: list[str], output: str,
                  axes: dict[str, dict[int, str]]) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # The exporter's deprecation notice and tracer hints about shape constants (the exemplar
        # feature size is fixed by design) are not actionable for our users.
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, buf, dynamo=False, opset_version=OPSET, input_names=names,
                          output_names=[output], dynamic_axes=axes)
    return buf.getvalue()


def onnx_models(net: SiameseNet, config: TrackerConfig | None = None) -> tuple[bytes, bytes]:
    """Serialized ONNX (backbone, head): crops -> features; (exemplar, search features) -> response."""
    crop_net = CropNet(net).eval()
    z_crops, z, x = _examples(crop_net, config or TrackerConfig())
    backbone = _quiet_export(_Embed(crop_net), (z_crops,), ["crops"], "features",
                             {"crops": {0: "batch", 1: "height", 2: "width"}, "features": {0: "batch", 2: "fh", 3: "fw"}})
    head = _quiet_export(crop_net, (z, x), ["exemplar", "search"], "response",
                         {"exemplar": {0: "targets"}, "search": {0: "batch", 2: "height", 3: "width"},
                          "response": {0: "batch", 2: "rh", 3: "rw"}})
    return backbone, head


def torchscript_module(net: SiameseNet, config: TrackerConfig | None = None) -> torch.jit.ScriptModule:
    """Traced module with ``embed(crops)`` and ``forward(exemplar_features, search_features)``."""
    crop_net = CropNet(net).eval()
    z_crops, z, x = _examples(crop_net, config or TrackerConfig())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.trace_module(crop_net, {"embed": (z_crops,), "forward": (z, x)})


def _info(fmt: str, net: SiameseNet, config: TrackerConfig, metadata: dict[str, Any]) -> dict[str, Any]:
    return {"format": f"siamtrack-{fmt}", "model": metadata.get("name", ""), "model_config": {**net.config.to_dict(), "input_order": "bgr"},
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
    config = TrackerConfig.from_dict(overrides)
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
