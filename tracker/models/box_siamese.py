"""BoxSiameseNet = ONE MobileNet-style backbone for both crops [+ adjust] + the box-regression head."""
from __future__ import annotations

import torch
from torch import nn

from ..config import BoxModelConfig
from .box_head import BoxHead
from .mobilenet import MobileNet


class BoxSiameseNet(nn.Module):
    """Both crops go through the same backbone module, so their weights are shared by construction."""

    output_names = ("cls", "loc")
    searches_per_exemplar = 1

    def __init__(self, config: BoxModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or BoxModelConfig()
        c = self.config
        self.backbone = MobileNet(c.stem, c.blocks, c.relu6)
        if self.backbone.total_stride != 16:
            raise ValueError(f"the box family's points are 16 px apart; these blocks give total stride {self.backbone.total_stride}")
        inner = self.backbone.channels
        self.neck = nn.Sequential(nn.Conv2d(inner, c.adjust, 1, bias=False), nn.BatchNorm2d(c.adjust)) if c.adjust else nn.Identity()
        self.head = BoxHead(c)

    @property
    def total_stride(self) -> int:
        return self.backbone.total_stride

    @property
    def channels(self) -> int:
        """Channels of the embedding (what feature distillation compares)."""
        return self.config.channels

    def embed(self, crops: torch.Tensor) -> torch.Tensor:
        """Embed a batch of crops (N, 3, S, S), float 0-255 in the config's channel order."""
        return self.neck(self.backbone(crops))

    def outputs(self, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(cls logits (N, 2, n, n), loc l,t,r,b (N, 4, n, n)) for exemplar and search features."""
        if z.shape[2] * z.shape[3] != self.config.exemplar_cells:
            raise ValueError(f"exemplar features are {z.shape[2]}x{z.shape[3]} but the head was built for "
                             f"{self.config.exemplar_cells} cells; use the exemplar size the model was trained with")
        return self.head(z, x)

    def forward(self, exemplar: torch.Tensor, search: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.outputs(self.embed(exemplar), self.embed(search))
