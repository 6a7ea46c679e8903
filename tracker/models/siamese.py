"""SiameseNet = ONE backbone applied to both crops + a comparison head (the SiamFC family)."""
from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from .backbones import build_backbone
from .heads import build_head


class SiameseNet(nn.Module):
    """Both branches are the same module object, so their weights are shared by construction."""

    output_names = ("response",)
    searches_per_exemplar = None  # any multiple: the scales of one target share its exemplar

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or ModelConfig()
        c = self.config
        self.backbone = build_backbone(c.backbone, c.width, c.dropout, c.dropout_after)
        self.head = build_head(c.head, c.out_scale)

    @property
    def total_stride(self) -> int:
        return self.backbone.total_stride

    @property
    def channels(self) -> int:
        """Channels of the embedding (what feature distillation compares)."""
        return self.backbone.channels[-1]

    def embed(self, crops: torch.Tensor) -> torch.Tensor:
        """Embed a batch of crops (N, 3, S, S), float 0-255 in the config's channel order."""
        return self.backbone(crops)

    def outputs(self, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor]:
        """(responses (Nx, 1, n, n),) for exemplar and search features: the family-neutral output form."""
        return (self.head(z, x),)

    def forward(self, exemplar: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(exemplar), self.embed(search))
