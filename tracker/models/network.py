"""The families' networks by name, and the frozen inference form every backend runs."""
from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any, Union

import torch

from ..config import BoxModelConfig, CentreModelConfig, ModelConfig
from .backbones import fuse_conv_bn
from .box_siamese import BoxSiameseNet
from .centre import CentreSiameseNet
from .siamese import SiameseNet

Network = Union[SiameseNet, BoxSiameseNet, CentreSiameseNet]
ModelConfigs = Union[ModelConfig, BoxModelConfig, CentreModelConfig]
NETWORKS: dict[str, tuple[type, type]] = {"siamfc": (ModelConfig, SiameseNet), "box": (BoxModelConfig, BoxSiameseNet),
                                          "centre": (CentreModelConfig, CentreSiameseNet)}


def model_config(family: str, data: dict[str, Any]) -> ModelConfigs:
    """The family's model config from a checkpoint's dict (unknown family or keys: ValueError)."""
    if family not in NETWORKS:
        raise ValueError(f"unknown model family {family!r}; known: {', '.join(NETWORKS)}")
    return NETWORKS[family][0].from_dict(data)


def build_network(config: ModelConfigs) -> Network:
    return NETWORKS[config.family][1](config)


def inference_copy(net: Network, input_order: str = "bgr") -> Network:
    """A frozen eval-mode copy with Conv+BN folded and the first conv reordered to take ``input_order`` input.

    Reordering the first conv's input channels lets the tracker feed OpenCV's BGR crops directly: the
    colour conversion costs nothing at run time.
    """
    out = copy.deepcopy(net).eval()
    fuse_conv_bn(out)
    if input_order not in ("rgb", "bgr"):
        raise ValueError(f"input_order must be 'rgb' or 'bgr', got {input_order!r}")
    if input_order != out.config.input_order:
        flip = getattr(out, "flip_input_channels", None)  # a net that normalises its input flips that too
        if flip is not None:
            flip()
        else:
            first = out.backbone.first_conv()
            with torch.no_grad():
                first.weight.copy_(first.weight.flip(1))
        out.config = replace(out.config, input_order=input_order)
    for p in out.parameters():
        p.requires_grad_(False)
    return out
