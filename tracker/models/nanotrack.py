"""Importers for NanoTrack (v1, v2, v3; Apache-2.0) weights into the box-regression family.

Two forms are read, both detected by content:
- the published PyTorch state dicts (``backbone.features.*``, ``ban_head.*``): the architecture is
  read off the tensor shapes and the keys are renamed onto :class:`BoxSiameseNet`;
- the ONNX pair OpenCV's ``cv2.TrackerNano`` loads (backbone + neck/head graphs, BatchNorm folded):
  the pair is matched against the v1/v2/v3 architectures by the sequence of its weight shapes,
  and each folded weight goes to the layer that computes it.
Each version brings its published tracking-loop parameters as the checkpoint's loop defaults.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import torch

from ..config import NANOTRACK_BLOCKS, BoxModelConfig
from ..errors import WeightsError
from .box_siamese import BoxSiameseNet
from .onnx_import import call_order, fits, load_folded, onnx_layers

# MobileNetV3-small's (h-swish, stride) per block: not in the weights, fixed by the architecture.
_ACT_STRIDE = ((False, 2), (False, 2), (False, 1), (True, 2), (True, 1), (True, 1), (True, 1), (True, 1), (True, 1))

PRESETS: dict[str, BoxModelConfig] = {
    "nanotrack_v1": BoxModelConfig(blocks=NANOTRACK_BLOCKS, depthwise=False, shared_correlation=True, project=False,
                                   cls_tower=(5, 5, 3), loc_tower=(3, 3, 5, 5), cls_channels=128, loc_channels=96,
                                   tower_block="act_pw"),
    "nanotrack_v2": BoxModelConfig(blocks=NANOTRACK_BLOCKS, depthwise=False, project=True, tower_block="act_pw"),
    "nanotrack_v3": BoxModelConfig(),
}
# tracking_params_in_source of each version (HonglinChu/SiamTrackers @248663f, NanoTrack/experiments/*/config.yaml)
LOOP_PARAMS: dict[str, dict[str, float]] = {
    "nanotrack_v1": {"window_influence": 0.462, "penalty_k": 0.148, "lr": 0.39},
    "nanotrack_v2": {"window_influence": 0.49, "penalty_k": 0.15, "lr": 0.385},
    "nanotrack_v3": {"window_influence": 0.455, "penalty_k": 0.138, "lr": 0.348},
}
LICENSE = "Apache-2.0 (NanoTrack, HonglinChu/SiamTrackers)"

_RENAMES = [(re.compile(a), b) for a, b in (
    (r"^ban_head\.", "head."),
    (r"^head\.corr_pw\.", "head.corr."),
    (r"^head\.corr_pw_cls\.", "head.cls_corr."),
    (r"^head\.corr_pw_reg\.", "head.loc_corr."),
    (r"^head\.corr_dw_cls\.", "head.cls_dw."),
    (r"^head\.corr_dw_reg\.", "head.loc_dw."),
    (r"\.conv_kernel\.", ".project_z."),
    (r"\.conv_search\.", ".project_x."),
    (r"\.CA_layer\.", ".attention."),
    (r"^(head\.(?:cls_|loc_)?corr)\.conv\.", r"\1.refine."),
    (r"^head\.down_cls\.", "head.cls_fuse."),
    (r"^head\.down_reg\.", "head.loc_fuse."),
    (r"^head\.cls_(?:pw_)?tower\.", "head.cls_tower."),
    (r"^head\.bbox_(?:pw_)?tower\.", "head.loc_tower."),
    (r"^head\.(?:cls_logits|cls_pred)\.", "head.cls_out."),
    (r"^head\.bbox_pred\.", "head.loc_out."),
    (r"^neck\.downsample\.", "neck."),
)]


def is_nanotrack_state_dict(obj: Any) -> bool:
    return (isinstance(obj, dict) and "backbone.features.0.0.weight" in obj
            and any(isinstance(k, str) and k.startswith("ban_head.") for k in obj))


def _rename(key: str) -> str:
    for pattern, repl in _RENAMES:
        key = pattern.sub(repl, key)
    return key


def _shape(state: dict[str, torch.Tensor], key: str, path: Path) -> tuple[int, ...]:
    if key not in state:
        raise WeightsError(f"{path}: NanoTrack state dict lacks {key}; it does not match the NanoTrack architecture")
    return tuple(state[key].shape)


def _blocks(state: dict[str, torch.Tensor], path: Path) -> tuple[tuple[Any, ...], ...]:
    blocks = []
    i = 1
    while f"backbone.features.{i}.conv.0.weight" in state:
        p = f"backbone.features.{i}.conv."
        expanded = p + "8.weight" in state
        dw, se_key, out_key = ("3", "5", "7") if expanded else ("0", "3", "4")
        hidden = _shape(state, p + "0.weight", path)[0]
        kernel = _shape(state, p + dw + ".weight", path)[-1]
        out = _shape(state, p + out_key + ".weight", path)[0]
        se = state[p + se_key + ".fc.0.weight"].shape[0] if p + se_key + ".fc.0.weight" in state else 0
        hswish, stride = _ACT_STRIDE[i - 1] if i - 1 < len(_ACT_STRIDE) else (True, 1)
        blocks.append((int(kernel), int(hidden), int(out), int(se), hswish, stride))
        i += 1
    return tuple(blocks)


def _tower(state: dict[str, torch.Tensor], prefix: str) -> tuple[tuple[int, ...], int, str]:
    """(depth-wise kernels, output channels, block layout) of a tower from its weights."""
    act_pw = state[prefix + "1.weight"].dim() == 4  # the pointwise conv directly follows the depth-wise one
    step, pw = (4, 1) if act_pw else (5, 3)
    kernels, channels, b = [], 0, 0
    while prefix + f"{b * step}.weight" in state:
        kernels.append(int(state[prefix + f"{b * step}.weight"].shape[-1]))
        channels = int(state[prefix + f"{b * step + pw}.weight"].shape[0])
        b += 1
    return tuple(kernels), channels, "act_pw" if act_pw else "linear_pw"


def config_from_state(state: dict[str, torch.Tensor], path: Path) -> BoxModelConfig:
    """The BoxModelConfig that NanoTrack state dict (keys already renamed) was trained with."""
    shared = "head.corr.attention.fc1.weight" in state
    corr = "head.corr." if shared else "head.cls_corr."
    cls_kernels, cls_channels, layout = _tower(state, "head.cls_tower.")
    loc_kernels, loc_channels, _ = _tower(state, "head.loc_tower.")
    neck = state.get("neck.0.weight")
    return BoxModelConfig(
        stem=_shape(state, "backbone.features.0.0.weight", path)[0], blocks=_blocks(state, path),
        adjust=int(neck.shape[0]) if neck is not None else 0, depthwise="head.cls_dw.project_z.0.weight" in state,
        shared_correlation=shared, project=corr + "project_z.0.weight" in state,
        exemplar_cells=_shape(state, corr + "attention.fc1.weight", path)[0], cls_tower=cls_kernels,
        loc_tower=loc_kernels, cls_channels=cls_channels, loc_channels=loc_channels, tower_block=layout,
        input_order="bgr")


def version_of(config: BoxModelConfig) -> str | None:
    return next((name for name, preset in PRESETS.items() if preset == config), None)


def _provenance(version: str | None, path: str) -> tuple[dict[str, float], dict[str, Any]]:
    overrides = dict(LOOP_PARAMS[version]) if version else {}
    named = {"name": version} if version else {}
    return overrides, {"source": version or "nanotrack-style", "path": path, "license": LICENSE, **named}


def import_state_dict(obj: dict[str, Any], path: Path) -> tuple[BoxModelConfig, dict[str, torch.Tensor], dict[str, float], dict[str, Any]]:
    """(config, our state dict, loop overrides, metadata) for a NanoTrack state dict."""
    state = {_rename(k): v for k, v in obj.items()}
    neck = state.get("neck.0.weight")
    if neck is not None and neck.shape[0] == neck.shape[1]:  # NanoTrack skips an adjust layer with in == out
        state = {k: v for k, v in state.items() if not k.startswith("neck.")}
    config = config_from_state(state, path)
    version = version_of(config)
    overrides, metadata = _provenance(version, str(path))
    return config, state, overrides, metadata


# ----------------------------------------------------------------------------------------------------------
# The ONNX pair of cv2.TrackerNano


def onnx_pair(paths: Sequence[str | Path]) -> list[Path]:
    """The two files of an ONNX pair from a folder or two paths (errors say what was found)."""
    found = [Path(p) for p in paths]
    if len(found) == 1 and found[0].is_dir():
        folder = found[0]
        found = sorted(folder.glob("*.onnx"))
        if len(found) != 2:
            raise WeightsError(f"{folder} holds {len(found)} .onnx files; a NanoTrack model is a pair (backbone + head): "
                               "put exactly those two in the folder or pass both files")
    if len(found) != 2:
        raise WeightsError(f"a NanoTrack ONNX model is a pair of files (backbone + head), got {len(found)}: "
                           "pass both (PATH1,PATH2) or the folder that holds them")
    for p in found:
        if not p.is_file():
            raise WeightsError(f"ONNX file not found: {p}")
    return found


def import_onnx_pair(paths: Sequence[str | Path]) -> tuple[BoxSiameseNet, dict[str, float], dict[str, Any]]:
    """Rebuild a NanoTrack v1/v2/v3 network from its two ONNX graphs (roles told apart by their inputs)."""
    files = onnx_pair(paths)
    graphs = {}
    for p in files:
        n_inputs, layers = onnx_layers(p, "pass NanoTrack's backbone and head .onnx files")
        role = "backbone" if n_inputs == 1 else "head" if n_inputs == 2 else None
        if role is None or role in graphs:
            raise WeightsError(f"{p} has {n_inputs} inputs; expected one backbone graph (1 input) and one head graph (2 inputs)")
        graphs[role] = (p, layers)
    if len(graphs) != 2:
        raise WeightsError(f"{files[0]} and {files[1]} are not a backbone + head pair")
    for version, config in PRESETS.items():
        net = BoxSiameseNet(config).eval()
        backbone, head = call_order(net, 127, 255)
        if fits(backbone, graphs["backbone"][1]) and fits(head, graphs["head"][1]):
            load_folded(net, backbone, graphs["backbone"][1])
            load_folded(net, head, graphs["head"][1])
            overrides, metadata = _provenance(version, ",".join(str(p) for p in files))
            return net, overrides, metadata
    raise WeightsError(f"{files[0]} + {files[1]}: the graphs' layers match none of the NanoTrack v1/v2/v3 architectures; "
                       "convert the PyTorch weights instead (pass the state dict .pth)")

