"""SiameseNet = ONE backbone applied to both crops + a comparison head."""
from __future__ import annotations

import copy
from dataclasses import replace

import torch
from torch import nn

from ..config import ModelConfig
from .backbones import build_backbone, fuse_conv_bn
from .heads import build_head


class SiameseNet(nn.Module):
    """Both branches are the same module object, so their weights are shared by construction."""

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or ModelConfig()
        c = self.config
        self.backbone = build_backbone(c.backbone, c.width, c.dropout, c.dropout_after)
        self.head = build_head(c.head, c.out_scale)

    @property
    def total_stride(self) -> int:
        return self.backbone.total_stride

    def embed(self, crops: torch.Tensor) -> torch.Tensor:
        """Embed a batch of crops (N, 3, S, S), float 0-255 in the config's channel order."""
        return self.backbone(crops)

    def forward(self, exemplar: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(exemplar), self.embed(search))


def inference_copy(net: SiameseNet, input_order: str = "bgr") -> SiameseNet:
    """A frozen eval-mode copy with Conv+BN folded and conv1 reordered to take ``input_order`` input.

    Reordering conv1's input channels lets the tracker feed OpenCV's BGR crops directly: the colour
    conversion costs nothing at run time.
    """
    out = copy.deepcopy(net).eval()
    fuse_conv_bn(out.backbone)
    if input_order not in ("rgb", "bgr"):
        raise ValueError(f"input_order must be 'rgb' or 'bgr', got {input_order!r}")
    if input_order != out.config.input_order:
        first = out.backbone.conv1[0]
        with torch.no_grad():
            first.weight.copy_(first.weight.flip(1))
        out.config = replace(out.config, input_order=input_order)
    for p in out.parameters():
        p.requires_grad_(False)
    return out

