"""Losses of the centre-head family (LightFC / OSTrack style) and its distillation terms.

The network gives, per cell of its n x n grid (16 px cells of the search crop), the probability that
the target's centre lies in the cell (``score``), the target's w, h as a fraction of the crop
(``size``) and the centre's position inside the cell (``offset``, in cells). Labels (OSTrack's):
a Gaussian at the cell holding the box centre (radius from CenterNet's rule, min overlap 0.7) for the
penalty-reduced focal loss; the box read at that cell for L1 and (G/W)IoU.

Every term is a per-sample value averaged over samples (as box_losses), so DDP shards give the
undivided batch's gradient; a negative pair (target absent) adds only the focal loss's background.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import SiamTrackError
from .box_losses import feature_distillation
from .options import opt

BOX_LOSSES = ("giou", "iou", "wiou")
_EPS = 1e-7


@dataclass(frozen=True)
class CentreLossConfig:
    """Centre-family losses: which ones and their weights (distillation terms apply only with a teacher)."""

    score_weight: float = opt(1.0, "weight of the penalty-reduced focal loss on the score map (CenterNet)")
    focal_alpha: float = opt(2.0, "focal exponent on (1 - p) at the centre and p elsewhere")
    focal_beta: float = opt(4.0, "exponent of (1 - Gaussian) that spares the cells around the centre")
    min_overlap: float = opt(0.7, "CenterNet's Gaussian radius rule: boxes this IoU off the label still score")
    box_loss: str = opt("wiou", "box loss at the centre cell: giou (1 - GIoU) | iou (1 - IoU) | wiou (Wise-IoU v1: "
                                "1 - IoU scaled by the centre distance over the enclosing box, LightFC's)")
    box_weight: float = opt(2.0, "weight of the box loss")
    l1_weight: float = opt(5.0, "weight of the L1 loss on (cx, cy, w, h) as fractions of the crop")
    distill_score: float = opt(1.0, "with a teacher: weight of the binary cross-entropy between the student's and "
                                    "the teacher's score maps")
    distill_box: float = opt(1.0, "with a teacher: weight of the L1 between the student's and the teacher's size and "
                                  "offset maps, each cell weighted by the teacher's score (normalised per sample)")
    distill_feature: float = opt(1.0, "with a teacher: weight of the feature distillation (relative MSE of the "
                                      "template and search embeddings, through a 1x1 adapter where widths differ)")

    def __post_init__(self) -> None:
        if self.box_loss not in BOX_LOSSES:
            raise ValueError(f"box_loss must be one of {', '.join(BOX_LOSSES)}; got {self.box_loss!r}")
        if not 0.0 < self.min_overlap < 1.0:
            raise ValueError(f"min_overlap must be in (0, 1), got {self.min_overlap}")


@dataclass(frozen=True)
class MapGrid:
    """Where a network's n x n map cells lie in its search crop, in fractions of the crop: LightFC's tile it
    (``cells`` = n, ``origin`` 0); the nanotrack head's n - 1 begin half a cell in. A smaller crop at the same
    factor covers the same region, so grids in fractions compare across crop sizes."""

    cells: float          # cells the crop spans (search px / stride)
    origin: float = 0.0   # where the first cell begins

    @classmethod
    def centred(cls, n: int, cells: float) -> MapGrid:
        """n x n cells centred in a crop that spans ``cells`` of them (LightFC's: n = cells, tiling it; the
        nanotrack head's: n = cells - 1, half a cell in)."""
        return cls(float(cells), (cells - n) / (2 * cells))

    def centres(self, n: int, like: torch.Tensor) -> torch.Tensor:
        """(n,) crop fractions of the cells' centres."""
        return self.origin + (torch.arange(n, dtype=like.dtype, device=like.device) + 0.5) / self.cells


@dataclass
class CentreTargets:
    heatmap: torch.Tensor   # (N, n, n) Gaussian, exactly 1 at the centre cell of a positive pair; 0 for a negative
    cell: torch.Tensor      # (N, 2) long: row, column of the centre cell
    box: torch.Tensor       # (N, 4) cx, cy, w, h as fractions of the crop
    positive: torch.Tensor  # (N,) float: 1 where the target is in the crop
    grid: MapGrid           # where the cells lie


def gaussian_radius(h: torch.Tensor, w: torch.Tensor, min_overlap: float) -> torch.Tensor:
    """CenterNet's radius (in the units of h, w): the smallest of its three corner-shift cases."""
    b1, c1 = h + w, w * h * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + torch.sqrt(b1 ** 2 - 4 * c1)) / 2
    b2, c2 = 2 * (h + w), (1 - min_overlap) * w * h
    r2 = (b2 + torch.sqrt(b2 ** 2 - 16 * c2)) / 2
    a3, b3, c3 = 4 * min_overlap, -2 * min_overlap * (h + w), (min_overlap - 1) * w * h
    r3 = (b3 + torch.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return torch.minimum(torch.minimum(r1, r2), r3)


def centre_targets(boxes: torch.Tensor, positive: torch.Tensor, n: int, crop: int,
                   min_overlap: float = 0.7, grid: MapGrid | None = None) -> CentreTargets:
    """Labels for pairs whose search crop (``crop`` px, n x n cells on ``grid``; default: tiling it) shows the
    target at ``boxes`` (N, 4) = cx, cy, w, h in px from the crop centre (PairDataset's convention)."""
    grid = grid or MapGrid(float(n))
    stride = crop / grid.cells
    fx, fy = (boxes[:, 0] + crop / 2) / crop, (boxes[:, 1] + crop / 2) / crop  # centre in crop fractions
    u, v = (fx - grid.origin) * grid.cells, (fy - grid.origin) * grid.cells  # ... in cells from the first's edge
    col, row = u.floor().clamp(0, n - 1), v.floor().clamp(0, n - 1)
    w, h = boxes[:, 2] / stride, boxes[:, 3] / stride
    sigma = (2 * gaussian_radius(h, w, min_overlap).floor().clamp_min(0) + 1) / 6  # CenterNet's diameter / 6
    axis = torch.arange(n, device=boxes.device, dtype=boxes.dtype)
    gy = torch.exp(-(axis.view(1, n) - row.view(-1, 1)) ** 2 / (2 * sigma.view(-1, 1) ** 2))
    gx = torch.exp(-(axis.view(1, n) - col.view(-1, 1)) ** 2 / (2 * sigma.view(-1, 1) ** 2))
    pos = positive.to(boxes.dtype)
    heatmap = gy.unsqueeze(2) * gx.unsqueeze(1) * pos.view(-1, 1, 1)
    box = torch.stack([fx, fy, boxes[:, 2] / crop, boxes[:, 3] / crop], dim=1)
    return CentreTargets(heatmap, torch.stack([row, col], 1).long(), box, pos, grid)


def focal_loss(score: torch.Tensor, heatmap: torch.Tensor, alpha: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss on probabilities (N, n, n), per sample divided by its
    count of centre cells (1 for a positive pair; a negative pair's background is divided by 1)."""
    p = score.clamp(_EPS, 1 - _EPS)
    centre = (heatmap >= 1 - 1e-6).float()
    pos = -torch.log(p) * (1 - p) ** alpha * centre
    neg = -torch.log(1 - p) * p ** alpha * (1 - heatmap) ** beta * (1 - centre)
    per_sample = (pos + neg).flatten(1).sum(1) / centre.flatten(1).sum(1).clamp_min(1)
    return per_sample.mean()


def read_cells(maps: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
    """(N, C) values of (N, C, n, n) maps at each sample's (row, column)."""
    index = torch.arange(maps.shape[0], device=maps.device)
    return maps[index, :, cell[:, 0], cell[:, 1]]


def cell_boxes(size: torch.Tensor, offset: torch.Tensor, cell: torch.Tensor, grid: MapGrid | None = None) -> torch.Tensor:
    """(N, 4) cx, cy, w, h as crop fractions that the maps predict at ``cell`` (LightFC's cal_bbox on its
    tiling grid, the default)."""
    grid = grid or MapGrid(float(size.shape[-1]))
    off, wh = read_cells(offset, cell), read_cells(size, cell)
    return torch.stack([grid.origin + (cell[:, 1] + off[:, 0]) / grid.cells,
                        grid.origin + (cell[:, 0] + off[:, 1]) / grid.cells, wh[:, 0], wh[:, 1]], dim=1)


def _corners(box: torch.Tensor) -> torch.Tensor:
    return torch.cat([box[:, :2] - box[:, 2:] / 2, box[:, :2] + box[:, 2:] / 2], dim=1)


def box_iou_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "wiou") -> torch.Tensor:
    """(N,) loss between cx, cy, w, h boxes: 1 - IoU, 1 - GIoU, or Wise-IoU v1 (Tong et al. 2023):
    (1 - IoU) * exp(centre distance^2 / enclosing diagonal^2), the enclosing box detached."""
    a, b = _corners(pred), _corners(target)
    lt, rb = torch.maximum(a[:, :2], b[:, :2]), torch.minimum(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp_min(0).prod(1)
    union = (a[:, 2:] - a[:, :2]).clamp_min(0).prod(1) + (b[:, 2:] - b[:, :2]).prod(1) - inter
    iou = inter / union.clamp_min(_EPS)
    enclose = torch.maximum(a[:, 2:], b[:, 2:]) - torch.minimum(a[:, :2], b[:, :2])
    if kind == "iou":
        return 1 - iou
    if kind == "giou":
        area = enclose.prod(1)
        return 1 - (iou - (area - union) / area.clamp_min(_EPS))
    if kind == "wiou":
        distance = (pred[:, :2] - target[:, :2]).pow(2).sum(1)
        return (1 - iou) * torch.exp(distance / enclose.detach().pow(2).sum(1).clamp_min(_EPS))
    raise SiamTrackError(f"unknown box loss {kind!r}; choose one of {', '.join(BOX_LOSSES)}")


def _resize(t: torch.Tensor, n: int) -> torch.Tensor:
    """Bilinear, cell centres to cell centres: both grids tile the same crop."""
    return F.interpolate(t, size=(n, n), mode="bilinear", align_corners=False)


def _resample(t: torch.Tensor, n: int, grid: MapGrid, source: MapGrid) -> torch.Tensor:
    """Bilinear, at the crop fractions of ``grid``'s n x n cell centres, from maps on ``source`` (edges clamped)."""
    m = t.shape[-1]
    index = (grid.centres(n, t) - source.origin) * source.cells - 0.5  # in the source's cells
    coord = 2 * index / max(m - 1, 1) - 1
    points = torch.stack([coord.view(1, n).expand(n, n), coord.view(n, 1).expand(n, n)], -1)
    return F.grid_sample(t, points.expand(t.shape[0], n, n, 2), mode="bilinear", padding_mode="border", align_corners=True)


def to_student_grid(teacher: tuple[torch.Tensor, ...], n: int, grid: MapGrid | None = None,
                    source: MapGrid | None = None) -> tuple[torch.Tensor, ...]:
    """The teacher's (score, size, offset) maps (on ``source``; default: tiling the crop) on the student's n x n
    cells of ``grid`` (default: tiling the crop): a student with a smaller search crop at the same factor, or
    cells half a cell in. Score and size (crop fractions) are resampled as they are; the offset is resampled as
    the centre it points at (crop fractions), then read back in the student's cells."""
    t_score, t_size, t_offset = teacher
    m = t_score.shape[-1]
    grid, source = grid or MapGrid(float(n)), source or MapGrid(float(m))
    if m == n and grid == source:
        return teacher
    own = torch.arange(m, dtype=t_offset.dtype, device=t_offset.device)
    centre = torch.stack([own.view(1, m) + t_offset[:, 0], own.view(m, 1) + t_offset[:, 1]], 1) / source.cells + source.origin
    centre = _resample(centre, n, grid, source)
    cells = torch.arange(n, dtype=t_offset.dtype, device=t_offset.device)
    offset = torch.stack([(centre[:, 0] - grid.origin) * grid.cells - cells.view(1, n),
                          (centre[:, 1] - grid.origin) * grid.cells - cells.view(n, 1)], 1)
    return _resample(t_score, n, grid, source), _resample(t_size, n, grid, source), offset


def _distillation(maps: tuple[torch.Tensor, ...], teacher: tuple[torch.Tensor, ...], features: tuple[torch.Tensor, ...],
                  teacher_features: tuple[torch.Tensor, ...], config: CentreLossConfig, grid: MapGrid,
                  teacher_grid: MapGrid | None) -> dict[str, torch.Tensor]:
    score, size, offset = maps
    t_score, t_size, t_offset = to_student_grid(tuple(m.detach() for m in teacher), score.shape[-1], grid, teacher_grid)
    parts = {}
    if config.distill_score:
        p = score.clamp(_EPS, 1 - _EPS)
        bce = -(t_score * torch.log(p) + (1 - t_score) * torch.log(1 - p))
        parts["distill_score"] = config.distill_score * bce.flatten(1).mean(1).mean()
    if config.distill_box:
        weights = t_score[:, 0]
        weights = weights / weights.flatten(1).sum(1).clamp_min(1).view(-1, 1, 1)
        l1 = (size - t_size).abs().sum(1) + (offset - t_offset).abs().sum(1) / grid.cells  # offsets in crop fractions
        parts["distill_box"] = config.distill_box * (l1 * weights).flatten(1).sum(1).mean()
    if config.distill_feature:
        teacher_features = tuple(t if t.shape[-2:] == f.shape[-2:] else _resize(t.detach(), f.shape[-1])
                                 for f, t in zip(features, teacher_features))
        parts["distill_feature"] = config.distill_feature * feature_distillation(features, teacher_features)
    return parts


def centre_loss(maps: tuple[torch.Tensor, ...], targets: CentreTargets, config: CentreLossConfig = CentreLossConfig(),
                teacher: tuple[torch.Tensor, ...] | None = None, features: tuple[torch.Tensor, ...] = (),
                teacher_features: tuple[torch.Tensor, ...] = (),
                teacher_grid: MapGrid | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the selected losses for one micro-batch, and each weighted part as a float; the student's
    maps lie on ``targets.grid``, the teacher's on ``teacher_grid`` (default: tiling the crop)."""
    score, size, offset = maps
    parts: dict[str, torch.Tensor] = {}
    if config.score_weight:
        parts["score"] = config.score_weight * focal_loss(score[:, 0], targets.heatmap, config.focal_alpha,
                                                          config.focal_beta)
    if config.box_weight or config.l1_weight:
        pred = cell_boxes(size, offset, targets.cell, targets.grid)
        if config.box_weight:
            parts["box"] = config.box_weight * (box_iou_loss(pred, targets.box, config.box_loss) * targets.positive).mean()
        if config.l1_weight:
            parts["l1"] = config.l1_weight * ((pred - targets.box).abs().sum(1) * targets.positive).mean()
    if teacher is not None:
        parts.update(_distillation(maps, teacher, features, teacher_features, config, targets.grid, teacher_grid))
    if not parts:
        raise SiamTrackError("every centre loss weight is 0; set score_weight, box_weight, l1_weight or a teacher "
                             "with a distillation weight")
    total = sum(parts.values())
    return total, {k: float(v.detach()) for k, v in parts.items()}

