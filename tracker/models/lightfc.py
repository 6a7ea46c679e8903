"""Importers for LightFC (Li et al. 2023; official code MIT, LiYunfengLYF/LightFC) into the centre family.

Two forms are read, both detected by content:
- the official training checkpoint (``lightfc_ep0400.pth.tar``: key ``net``, the training-form state
  dict of ``lib/models/tracker_model.py``): keys are renamed onto :class:`CentreSiameseNet`, and each
  head's RepVGG-style first layer (two 3x3 conv + BN branches, ``rbr_dense`` and ``rbr_3x3``) is
  re-parameterised into one conv, as the official ``switch_to_deploy`` does;
- a deployment's two ONNX graphs (``lightfc_template.onnx`` + ``lightfc_track.onnx``, BatchNorm folded):
  their weights are matched to our layers in call order (:mod:`.onnx_import`).
Either way the network is LightFC's: the default :class:`~tracker.config.CentreModelConfig`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..config import CentreModelConfig
from ..errors import WeightsError
from .centre import CentreSiameseNet
from .onnx_import import call_order, fits, load_folded, onnx_layers

TEMPLATE_GRAPH, TRACK_GRAPH = "lightfc_template.onnx", "lightfc_track.onnx"
_TOWERS = {"ctr": "score", "size": "size", "offset": "offset"}
_FUSION = {"ca.fc1": "excite.fc1", "ca.fc2": "excite.fc2", "conv11": "spatial1.0", "bn11": "spatial1.1",
           "conv33": "spatial3.0", "bn33": "spatial3.1", "conv_up": "mix.0", "bn_up": "mix.1",
           "conv_down": "mix.3", "bn_down": "mix.4", "adjust": "adjust"}
# MobileNetV2 block layers (torchvision layout) -> ours: without expansion [dw conv, bn, pw, bn], with it
# [pw conv, bn, dw conv, bn, pw, bn]; ours keep activations (and an empty SE) in the same Sequential.
_PLAIN = {"conv.0.0": "conv.0", "conv.0.1": "conv.1", "conv.1": "conv.4", "conv.2": "conv.5"}
_EXPANDED = {"conv.0.0": "conv.0", "conv.0.1": "conv.1", "conv.1.0": "conv.3", "conv.1.1": "conv.4",
             "conv.2": "conv.7", "conv.3": "conv.8"}


def onnx_folder(source: str | os.PathLike) -> Path | None:
    """The folder of a LightFC graph pair if ``source`` is that folder or one of its two graphs."""
    path = Path(source)
    folder = path if path.is_dir() else path.parent if path.name in (TEMPLATE_GRAPH, TRACK_GRAPH) else None
    if folder is not None and (folder / TRACK_GRAPH).is_file():
        return folder
    return None


def import_onnx(folder: Path) -> tuple[CentreSiameseNet, dict[str, Any], dict[str, Any]]:
    """LightFC's network with the weights of its deployment graphs (the track graph's layers: search
    backbone, fusion, score/size/offset towers; the template graph must hold the same backbone)."""
    hint = f"pass the folder holding {TEMPLATE_GRAPH} and {TRACK_GRAPH} (and their weights file)"
    missing = [name for name in (TEMPLATE_GRAPH, TRACK_GRAPH) if not (folder / name).is_file()]
    if missing:
        raise WeightsError(f"{folder} lacks {', '.join(missing)}; {hint}")
    net = CentreSiameseNet(CentreModelConfig()).eval()
    config = net.config
    backbone, head = call_order(net, config.template_size, config.search_size)
    n_track, track = onnx_layers(folder / TRACK_GRAPH, hint)
    n_template, template = onnx_layers(folder / TEMPLATE_GRAPH, hint)
    if n_track != 2 or n_template != 1 or not fits(backbone + head, track) or not fits(backbone, template):
        raise WeightsError(f"{folder}: the graphs' layers do not match LightFC's architecture "
                           f"(MobileNetV2 to stride 16, pixel-wise fusion, 256-channel centre head); {hint}")
    load_folded(net, backbone + head, track)
    metadata = {"source": "lightfc-onnx", "path": str(folder), "name": "lightfc"}
    return net, {}, metadata


def is_official_checkpoint(obj: Any) -> bool:
    """The official trainer's checkpoint: a dict whose ``net`` holds backbone.features.* and head.conv1_ctr.*."""
    net = obj.get("net") if isinstance(obj, dict) else None
    return (isinstance(net, dict) and "backbone.features.0.0.weight" in net
            and any(k.startswith("head.conv1_ctr.") for k in net))


def _fold(state: dict[str, torch.Tensor], prefix: str, path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, bias) of conv ``prefix``.conv followed by BN ``prefix``.bn, folded (eval-mode BN)."""
    try:
        weight, bn = state[f"{prefix}.conv.weight"], {k: state[f"{prefix}.bn.{k}"] for k in
                                                       ("weight", "bias", "running_mean", "running_var")}
    except KeyError as exc:
        raise WeightsError(f"{path}: LightFC checkpoint lacks {exc.args[0]}") from None
    bias = state.get(f"{prefix}.conv.bias", torch.zeros(weight.shape[0]))
    scale = bn["weight"] / torch.sqrt(bn["running_var"] + 1e-5)
    return weight * scale.view(-1, 1, 1, 1), (bias - bn["running_mean"]) * scale + bn["bias"]


def _reparameterised(state: dict[str, torch.Tensor], prefix: str, path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """repN33 as one 3x3 conv: its deploy form as stored, or the sum of its two folded branches."""
    if f"{prefix}.rbr_reparam.weight" in state:
        return state[f"{prefix}.rbr_reparam.weight"], state[f"{prefix}.rbr_reparam.bias"]
    (w1, b1), (w2, b2) = _fold(state, f"{prefix}.rbr_dense", path), _fold(state, f"{prefix}.rbr_3x3", path)
    return w1 + w2, b1 + b2


def _identity_bn(out: dict[str, torch.Tensor], prefix: str, bias: torch.Tensor) -> None:
    """A BN that passes its input through and adds ``bias`` (the folded conv carries the rest)."""
    out[f"{prefix}.weight"] = torch.ones_like(bias)
    out[f"{prefix}.bias"] = bias.clone()
    out[f"{prefix}.running_mean"] = torch.zeros_like(bias)
    out[f"{prefix}.running_var"] = torch.full_like(bias, 1.0 - 1e-5)  # + eps = 1
    out[f"{prefix}.num_batches_tracked"] = torch.zeros((), dtype=torch.long)


def import_official(obj: dict[str, Any], path: Path) -> tuple[CentreModelConfig, dict[str, torch.Tensor]]:
    """Rename the official training-form state dict onto our network, re-parameterising the heads."""
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj["net"].items()}
    out: dict[str, torch.Tensor] = {}
    blocks: dict[str, list[str]] = {}
    for key in state:
        if key.startswith("backbone.features."):
            blocks.setdefault(".".join(key.split(".")[:3]), []).append(key)
    for block, keys in blocks.items():
        expanded = any(k.startswith(f"{block}.conv.3.") for k in keys)
        table = _EXPANDED if expanded else _PLAIN
        for key in keys:
            rest = key[len(block) + 1:]
            layer, leaf = rest.rsplit(".", 1)
            if block.endswith(".0"):
                out[key] = state[key]
            elif layer in table:
                out[f"{block}.{table[layer]}.{leaf}"] = state[key]
            else:
                raise WeightsError(f"{path}: unexpected backbone key {key} in the LightFC checkpoint")
    for key, value in state.items():
        if key.startswith("fusion."):
            layer, leaf = key[len("fusion."):].rsplit(".", 1)
            if layer not in _FUSION:
                raise WeightsError(f"{path}: unexpected fusion key {key}; this importer reads LightFC's "
                                   "pwcorr_se_scf_sc_iab_sc_concat fusion")
            out[f"fusion.{_FUSION[layer]}.{leaf}"] = value
    for theirs, ours in _TOWERS.items():
        weight, bias = _reparameterised(state, f"head.conv1_{theirs}", path)
        out[f"head.{ours}.first.0.weight"], out[f"head.{ours}.first.0.bias"] = weight, torch.zeros_like(bias)
        _identity_bn(out, f"head.{ours}.first.1", bias)
        for leaf in ("weight", "bias"):
            for fc in ("fc1", "fc2"):
                out[f"head.{ours}.excite.{fc}.{leaf}"] = _get(state, f"head.se_{theirs}.{fc}.{leaf}", path)
            out[f"head.{ours}.last.{leaf}"] = _get(state, f"head.conv5_{theirs}.{leaf}", path)
        for i in range(3):
            for layer in ("0", "1"):
                prefix = f"head.conv{i + 2}_{theirs}.{layer}."
                for key in (k for k in state if k.startswith(prefix)):
                    out[f"head.{ours}.layers.{i}.{layer}.{key[len(prefix):]}"] = state[key]
    head_channels = int(out["head.score.first.0.weight"].shape[0])
    return CentreModelConfig(head_channels=head_channels), out


def _get(state: dict[str, torch.Tensor], key: str, path: Path) -> torch.Tensor:
    if key not in state:
        raise WeightsError(f"{path}: LightFC checkpoint lacks {key}")
    return state[key]
