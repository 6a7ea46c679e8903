"""Training targets of the box-regression (anchor-free) Siamese family on its n x n output grid.

Boxes come in as (cx, cy, w, h) in search-crop pixels with the crop centre at 0: that is what the
pair sampler knows (the target's offset from the crop centre and its size after augmentation).
Grid point (i, j) sits at x = -(n // 2) * stride + stride * j, y = -(n // 2) * stride + stride * i
(NanoTrack's convention), and the network's loc output at a point is (l, t, r, b), the distances
from the point to the box's left, top, right and bottom sides, so targets need no anchor matching.
Targets carry no gradient; everything is built on the device of the boxes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .options import opt

REGIONS = ("ellipse", "shrink")


@dataclass(frozen=True)
class BoxTargetConfig:
    """Which grid points are positive, negative or ignored around the target box.

    Both regions are measured in box-normalised coordinates u = (x - cx) / (w / 2),
    v = (y - cy) / (h / 2): ``ellipse`` uses sqrt(u^2 + v^2) (SiamBAN's ellipse labels), ``shrink``
    uses max(|u|, |v|) (the box scaled about its centre). A point is positive when that distance is
    < pos_scale, negative when it is > neg_scale, ignored in between; every point of a negative
    pair is negative.
    """

    region: str = opt("ellipse", "label region: ellipse (semi-axes scale*w/2, scale*h/2; SiamBAN) | "
                                 "shrink (the box scaled by scale about its centre)")
    pos_scale: float = opt(0.5, "points strictly inside the region of this scale are positives "
                                "(0.5 = SiamBAN's w/4, h/4 ellipse); at most 1, so positives lie inside the box")
    neg_scale: float = opt(1.0, "points strictly outside the region of this scale are negatives "
                                "(1.0 = SiamBAN's w/2, h/2 ellipse); points in between are ignored")

    def __post_init__(self) -> None:
        if self.region not in REGIONS:
            raise ValueError(f"region must be one of {', '.join(REGIONS)}; got {self.region!r}")
        if not 0.0 < self.pos_scale <= 1.0:
            raise ValueError(f"pos_scale must be in (0, 1] so every positive point lies inside its box; "
                             f"got {self.pos_scale}")
        if self.neg_scale < self.pos_scale:
            raise ValueError(f"neg_scale ({self.neg_scale}) must be >= pos_scale ({self.pos_scale})")


@dataclass
class BoxTargets:
    """Per-point targets of a batch (N samples, n x n grid)."""

    cls: torch.Tensor         # (N, n, n) int64: 1 positive, 0 negative, -1 ignore
    loc: torch.Tensor         # (N, 4, n, n) l, t, r, b to the box sides, crop px (negative outside the box)
    centerness: torch.Tensor  # (N, n, n) FCOS centerness, 0 outside the box


def grid_points(size: int, stride: int = 16, device: torch.device | None = None) -> torch.Tensor:
    """(size,) coordinates of the grid's columns (and rows) in crop px from the crop centre; the
    tracker must decode its boxes from the same points, so they are defined once here."""
    return (torch.arange(size, dtype=torch.float32, device=device) - size // 2) * stride


def centerness(loc: torch.Tensor) -> torch.Tensor:
    """FCOS centerness sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b)) of (N, 4, ...) distances:
    1 at the box centre, falling towards its sides, 0 outside it (a distance clamped to 0)."""
    l, t, r, b = loc.clamp_min(0).unbind(1)
    ratio_x = torch.minimum(l, r) / torch.maximum(l, r).clamp_min(1e-12)
    ratio_y = torch.minimum(t, b) / torch.maximum(t, b).clamp_min(1e-12)
    return (ratio_x * ratio_y).sqrt()


@torch.no_grad()
def box_targets(boxes: torch.Tensor, positive: torch.Tensor, size: int, stride: int = 16,
                config: BoxTargetConfig = BoxTargetConfig()) -> BoxTargets:
    """Targets for ``boxes`` (N, 4) = (cx, cy, w, h) in crop px from the crop centre and
    ``positive`` (N,) pair flags, on a ``size`` x ``size`` grid of the given stride.

    loc is filled at every point (the loss reads it at positives only); a negative pair's box is
    used for loc and centerness but its labels are all 0.
    """
    pts = grid_points(size, stride, boxes.device)
    cx, cy, w, h = (v.view(-1, 1, 1) for v in boxes.float().unbind(1))
    dx, dy = torch.broadcast_tensors(pts.view(1, 1, size) - cx, pts.view(1, size, 1) - cy)
    loc = torch.stack([dx + w / 2, dy + h / 2, w / 2 - dx, h / 2 - dy], dim=1)
    u, v = dx / (w / 2), dy / (h / 2)
    dist = torch.hypot(u, v) if config.region == "ellipse" else torch.maximum(u.abs(), v.abs())
    labels = torch.full_like(dist, -1, dtype=torch.long)
    labels[dist > config.neg_scale] = 0
    labels[dist < config.pos_scale] = 1
    labels[~positive.to(boxes.device).bool()] = 0
    return BoxTargets(labels, loc, centerness(loc))


def align_grids(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop two maps (..., na, na) and (..., nb, nb) of the same stride to the grid points they
    share, so a 15 x 15 student can learn from a 16 x 16 teacher: with the -(n // 2) convention the
    15-grid is the 16-grid without its first row and column."""
    na, nb = a.shape[-1], b.shape[-1]
    lo, hi = max(-(na // 2), -(nb // 2)), min(na - na // 2, nb - nb // 2)
    sa, sb = slice(lo + na // 2, hi + na // 2), slice(lo + nb // 2, hi + nb // 2)
    return a[..., sa, sa], b[..., sb, sb]
