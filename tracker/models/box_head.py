"""Box-regression head: the Siamese comparison (pixel-wise and depth-wise correlation) + cls/loc towers.

Contract: ``head(z, x)`` with exemplar features ``z`` (N, C, h, w) and search features ``x``
(N, C, H, W), one search per exemplar, returns ``cls`` (N, 2, n, n) logits (softmax over the two
channels, index 1 = target) and ``loc`` (N, 4, n, n) = l, t, r, b distances in search-crop pixels.
Every operation is batched along N (no per-target group counts), so one pass serves many targets
and the graph exports to ONNX with a dynamic batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import BoxModelConfig
from .heads import shift_kernel


def pixelwise_correlate(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(N, h*w, H, W): every exemplar cell's dot product with every search cell (one batched matmul)."""
    n, c, h, w = z.shape
    return torch.matmul(z.reshape(n, c, h * w).transpose(1, 2), x.reshape(n, c, -1)).reshape(n, h * w, x.shape[2], x.shape[3])


def depthwise_correlate(z: torch.Tensor, x: torch.Tensor, padding: int = 1) -> torch.Tensor:
    """Per-channel cross-correlation of each search map with its own exemplar (zero padding ``padding``).

    Every (sample, channel) pair is one row: a fixed one-hot convolution lays out the h*w shifted
    copies of its search map, and one batched matmul weights them by its exemplar cells. A grouped
    convolution would need N*C groups, which cannot be a dynamic batch in ONNX; shifted slices
    cost ONNX Runtime ~30 small ops. One sample is a plain depth-wise convolution (torch's fastest
    path, and a static ONNX graph's).
    """
    n, c, h, w = z.shape
    if n == 1:
        return F.conv2d(x, z.transpose(0, 1), padding=padding, groups=c)
    rows = x.reshape(n * c, 1, x.shape[2], x.shape[3])
    shifted = F.conv2d(rows, shift_kernel(int(h), int(w), x.dtype, x.device).transpose(0, 1), padding=padding)
    out = torch.matmul(z.reshape(n * c, 1, h * w), shifted.reshape(n * c, h * w, -1))
    return out.reshape(n, c, shifted.shape[2], shifted.shape[3])


def _project(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels))


class ChannelAttention(nn.Module):
    """Gates on the correlation channels (= exemplar cells) from their global average."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels, 1)
        self.fc2 = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3), keepdim=True)))))


class PixelwiseCorrelation(nn.Module):
    """[1x1 projections] -> pixel-wise correlation -> channel attention [-> 2x2 refinement]."""

    def __init__(self, channels: int, cells: int, project: bool, refine: bool) -> None:
        super().__init__()
        self.project_z = _project(channels) if project else nn.Identity()
        self.project_x = _project(channels) if project else nn.Identity()
        self.attention = ChannelAttention(cells)
        self.refine = nn.Sequential(nn.Conv2d(cells, cells, 2, groups=cells, bias=False), nn.BatchNorm2d(cells),
                                    nn.ReLU6(), nn.Conv2d(cells, cells, 1), nn.BatchNorm2d(cells)) if refine else nn.Identity()

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.refine(self.attention(pixelwise_correlate(self.project_z(z), self.project_x(x))))


class DepthwiseCorrelation(nn.Module):
    """1x1 projections -> depth-wise correlation of the exemplar's centre ``crop`` x ``crop`` cells."""

    def __init__(self, channels: int, crop: int) -> None:
        super().__init__()
        self.crop = crop
        self.project_z = _project(channels)
        self.project_x = _project(channels)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        lo = (int(z.shape[3]) - self.crop) // 2
        return depthwise_correlate(self.project_z(z[:, :, lo:lo + self.crop, lo:lo + self.crop]), self.project_x(x))


def tower(inp: int, channels: int, kernels: tuple[int, ...], block: str) -> nn.Sequential:
    """Depth-wise separable blocks; ``act_pw`` = dw, pw, BN, ReLU6; ``linear_pw`` = dw, BN, ReLU6, pw, BN."""
    layers: list[nn.Module] = []
    for k in kernels:
        dw = nn.Conv2d(inp, inp, k, 1, (k - 1) // 2, groups=inp, bias=False)
        pw = nn.Conv2d(inp, channels, 1, bias=False)
        if block == "act_pw":
            layers += [dw, pw, nn.BatchNorm2d(channels), nn.ReLU6()]
        else:
            layers += [dw, nn.BatchNorm2d(inp), nn.ReLU6(), pw, nn.BatchNorm2d(channels)]
        inp = channels
    return nn.Sequential(*layers)


class BoxTowers(nn.Module):
    """Correlations (one shared, or one per branch; pixel-wise, optionally with depth-wise) -> cls and loc towers.

    Everything of the box head but its two output convs: the centre family's ``nanotrack`` head reads its own
    maps off these towers (and takes them over, trained, from a box-family checkpoint).
    """

    def __init__(self, cfg: BoxModelConfig) -> None:
        super().__init__()
        c, cells = cfg.channels, cfg.exemplar_cells
        if cfg.shared_correlation and cfg.depthwise:
            raise ValueError("a shared correlation has no depth-wise branch; set depthwise=False")
        self.depthwise = cfg.depthwise
        self.shared = cfg.shared_correlation

        def pixelwise() -> PixelwiseCorrelation:
            return PixelwiseCorrelation(c, cells, cfg.project, refine=cfg.depthwise)

        if self.shared:
            self.corr = pixelwise()
        else:
            self.loc_corr, self.cls_corr = pixelwise(), pixelwise()
        if self.depthwise:
            self.loc_dw, self.cls_dw = DepthwiseCorrelation(c, cfg.template_crop), DepthwiseCorrelation(c, cfg.template_crop)
            self.loc_fuse = nn.Sequential(nn.Conv2d(cells + c, c, 1))
            self.cls_fuse = nn.Sequential(nn.Conv2d(cells + c, c, 1))
        width = c if self.depthwise else cells
        self.cls_tower = tower(width, cfg.cls_channels, cfg.cls_tower, cfg.tower_block)
        self.loc_tower = tower(width, cfg.loc_channels, cfg.loc_tower, cfg.tower_block)

    def correlate(self, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(cls tower input, loc tower input)."""
        # Call order = NanoTrack's (loc before cls in the correlations): ONNX graphs map onto it in order.
        if self.shared:
            loc_feat = cls_feat = self.corr(z, x)
        else:
            loc_feat, cls_feat = self.loc_corr(z, x), self.cls_corr(z, x)
        if self.depthwise:
            loc_dw, cls_dw = self.loc_dw(z, x), self.cls_dw(z, x)
            loc_feat = self.loc_fuse(torch.cat((loc_feat, loc_dw), 1))
            cls_feat = self.cls_fuse(torch.cat((cls_feat, cls_dw), 1))
        return cls_feat, loc_feat

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(cls tower features, loc tower features)."""
        cls_feat, loc_feat = self.correlate(z, x)
        return self.cls_tower(cls_feat), self.loc_tower(loc_feat)


class BoxHead(BoxTowers):
    """The towers, then a 1x1 conv to 2 cls logits and one to 4 log-distances (exponentiated)."""

    def __init__(self, cfg: BoxModelConfig) -> None:
        super().__init__(cfg)
        self.cls_out = nn.Sequential(nn.Conv2d(cfg.cls_channels, 2, 1))
        self.loc_out = nn.Sequential(nn.Conv2d(cfg.loc_channels, 4, 1))

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cls_feat, loc_feat = self.correlate(z, x)  # each tower then its output: NanoTrack's graphs' order
        return self.cls_out(self.cls_tower(cls_feat)), torch.exp(self.loc_out(self.loc_tower(loc_feat)))
