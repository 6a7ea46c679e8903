"""CentreSiameseNet = ONE MobileNetV2-style backbone for both crops + pixel-wise fusion + centre head.

The ``nanotrack`` head instead runs NanoTrack-v3's correlations and depth-wise separable towers (a box-family
head without its two output convs) and reads the three maps off them with 1x1 convs.

The LightFC architecture (Li et al. 2023) as one configurable module: every size is a field of
:class:`~tracker.config.CentreModelConfig`, so LightFC and each of our students are configs of this
code. Layers run in the order LightFC's deployment graph runs them (backbone, fusion, then the score,
size and offset towers), which is what the ONNX importer relies on to map its weights by position.

Outputs per search crop (N, ., n, n), n = search_size / 16: ``score`` (sigmoid, clamped to
[1e-4, 1 - 1e-4]: the target centre's probability per cell), ``size`` (sigmoid: w, h as a fraction of
the search crop) and ``offset`` (dx, dy of the centre inside its cell, in cells).
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import BoxModelConfig, CentreModelConfig
from .box_head import BoxTowers, pixelwise_correlate
from .mobilenet import MobileNet

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SCORE_CLAMP = 1e-4


class Normalise(nn.Module):
    """0-255 input -> (x / 255 - mean) / std per channel, in the same op order as LightFC's
    preprocessing (kept apart from the first conv: folding it in would change the zero-padded border)."""

    def __init__(self, order: str = "rgb", imagenet: bool = True) -> None:
        super().__init__()
        self.imagenet = imagenet  # False: 0-255 input goes as it is to a stem that folds its own normalisation
        mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        if order == "bgr":
            mean, std = mean.flip(0), std.flip(0)
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)  # constants, not weights
        self.register_buffer("std", std.view(1, 3, 1, 1), persistent=False)

    def flip(self) -> None:
        self.mean.copy_(self.mean.flip(1))
        self.std.copy_(self.std.flip(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x / 255.0 - self.mean) / self.std if self.imagenet else x


class Excite(nn.Module):
    """Squeeze-and-excitation with 1x1 convs and a sigmoid gate (LightFC's SE)."""

    def __init__(self, channels: int, reduction: int = 1) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3), keepdim=True)))))
        return x * gate


def probability(logits: torch.Tensor) -> torch.Tensor:
    """Sigmoid clamped to [SCORE_CLAMP, 1 - SCORE_CLAMP] (LightFC's score and size maps)."""
    return torch.clamp(torch.sigmoid(logits), SCORE_CLAMP, 1 - SCORE_CLAMP)


def conv_bn(inp: int, out: int, kernel: int, groups: int = 1, relu: bool = False) -> nn.Sequential:
    """Conv (with bias) + BN [+ ReLU]: a Sequential, so inference folds the BN into the conv."""
    layers: list[nn.Module] = [nn.Conv2d(inp, out, kernel, 1, kernel // 2, groups=groups), nn.BatchNorm2d(out)]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class Fusion(nn.Module):
    """Pixel-wise correlation -> SE -> x + dw1x1(x) + dw3x3(x) -> x + bottleneck(x) -> adjust, ++ search."""

    def __init__(self, cells: int, out: int, bottleneck: int) -> None:
        super().__init__()
        self.cells = cells
        self.excite = Excite(cells)
        self.spatial1 = conv_bn(cells, cells, 1, groups=cells)
        self.spatial3 = conv_bn(cells, cells, 3, groups=cells)
        self.mix = nn.Sequential(nn.Conv2d(cells, cells * bottleneck, 1), nn.BatchNorm2d(cells * bottleneck), nn.GELU(),
                                 nn.Conv2d(cells * bottleneck, cells, 1), nn.BatchNorm2d(cells))
        self.adjust = nn.Conv2d(cells, out, 1)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if z.shape[2] * z.shape[3] != self.cells:
            raise ValueError(f"template features are {z.shape[2]}x{z.shape[3]} but the fusion was built for "
                             f"{self.cells} cells; use the template size the model was trained with")
        corr = self.excite(pixelwise_correlate(z, x))
        corr = corr + self.spatial1(corr) + self.spatial3(corr)
        corr = corr + self.mix(corr)
        return torch.cat((self.adjust(corr), x), dim=1)


class Tower(nn.Module):
    """3x3 conv to ``width`` + SE, ``depth`` 3x3 convs halving the width, a 1x1 to ``outputs`` maps."""

    def __init__(self, inp: int, width: int, depth: int, reduction: int, outputs: int) -> None:
        super().__init__()
        self.first = conv_bn(inp, width, 3, relu=True)
        self.excite = Excite(width, reduction)
        self.layers = nn.Sequential(*(conv_bn(width >> i, width >> (i + 1), 3, relu=True) for i in range(depth)))
        self.last = nn.Conv2d(width >> depth, outputs, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last(self.layers(self.excite(self.first(x))))


class CentreHead(nn.Module):
    """Score, size and offset towers on the fused features (in that order: the deployment graph's)."""

    def __init__(self, inp: int, cfg: CentreModelConfig) -> None:
        super().__init__()
        args = (inp, cfg.head_channels, cfg.head_depth, cfg.head_reduction)
        self.score = Tower(*args, 1)
        self.size = Tower(*args, 2)
        self.offset = Tower(*args, 2)

    def forward(self, fused: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return probability(self.score(fused)), probability(self.size(fused)), self.offset(fused)


def nanotrack_towers_config(cfg: CentreModelConfig) -> BoxModelConfig:
    """The box family's correlations and towers (NanoTrack-v3's layout) that a ``nanotrack`` centre head runs."""
    depth = (3,) * cfg.head_depth
    return BoxModelConfig(stem=cfg.stem, blocks=cfg.blocks, relu6=cfg.relu6, exemplar_cells=cfg.template_cells,
                          cls_tower=depth, loc_tower=depth, cls_channels=cfg.head_channels, loc_channels=cfg.head_channels,
                          input_order=cfg.input_order)


class TowerFusion(BoxTowers):
    """NanoTrack-v3's correlations and towers; the cls and loc towers' features stacked along channels."""

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(super().forward(z, x), dim=1)


class PointHead(nn.Module):
    """1x1 convs on the stacked tower features: the score from the cls tower, size and offset from the loc tower."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.score = nn.Conv2d(channels, 1, 1)
        self.size = nn.Conv2d(channels, 2, 1)
        self.offset = nn.Conv2d(channels, 2, 1)

    def forward(self, fused: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cls, loc = fused[:, :self.channels], fused[:, self.channels:]
        return probability(self.score(cls)), probability(self.size(loc)), self.offset(loc)


class CentreSiameseNet(nn.Module):
    """Both crops go through the same backbone module, so their weights are shared by construction."""

    output_names = ("score", "size", "offset")
    searches_per_exemplar = 1

    def __init__(self, config: CentreModelConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or CentreModelConfig()
        self.normalise = Normalise(c.input_order, c.normalise == "imagenet")
        self.backbone = MobileNet(c.stem, c.blocks, relu6=c.relu6)
        if c.head == "nanotrack":  # fusion = correlations + towers (a box-family head's, minus its outputs)
            self.fusion: nn.Module = TowerFusion(nanotrack_towers_config(c))
            self.head: nn.Module = PointHead(c.head_channels)
        else:
            self.fusion = Fusion(c.template_cells, c.fusion_channels, c.bottleneck)
            self.head = CentreHead(c.fusion_channels + self.backbone.channels, c)

    @property
    def total_stride(self) -> int:
        return self.backbone.total_stride

    @property
    def channels(self) -> int:
        return self.config.channels

    def flip_input_channels(self) -> None:
        """Take the other channel order (inference feeds OpenCV's BGR crops as they are)."""
        self.normalise.flip()
        first = self.backbone.first_conv()
        with torch.no_grad():
            first.weight.copy_(first.weight.flip(1))

    def embed(self, crops: torch.Tensor) -> torch.Tensor:
        """Embed a batch of crops (N, 3, S, S), float 0-255 in the config's channel order."""
        return self.backbone(self.normalise(crops))

    def fuse(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.fusion(z, x)

    def outputs(self, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(score (N, 1, n, n), size (N, 2, n, n), offset (N, 2, n, n)) for template and search features."""
        return self.head(self.fusion(z, x))

    def forward(self, template: torch.Tensor, search: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.outputs(self.embed(template), self.embed(search))
