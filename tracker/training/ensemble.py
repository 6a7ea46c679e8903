"""A teacher ensemble for box-family distillation: the --teacher network (NanoTrack-v3, say) and map-only
teachers (LightTrack-Mobile's ONNX graphs, a centre-family network such as LightFC) see the same training
crops; their maps are combined per pair, each teacher weighted by its own confidence on that pair (its
map's peak target probability).

Why: the teachers fail on different sequences, so where one is unsure the other's maps carry more of
the signal. LightTrack runs on the same geometry: stride 16 and a 16 x 16 map for a 2x-context search crop,
only one pixel larger (128 / 256 against 127 / 255), so the crops are padded by one pixel on the right and
bottom (every pixel keeps its coordinates) and its boxes are re-expressed from its grid points
((i - 8) * 16 + 128) to ours ((i - 8) * 16 + 127).

A centre-family teacher (LightFC: template 2 sqrt(wh), search 4 sqrt(wh)) sees the box crops scaled to its
own sizes. For a square target the regions agree (sqrt((w + p)(h + p)) x 255 / 127 = 4.02 w against 4 w);
for an elongated one the box crop shows a little more context (1.05x at aspect 2, 1.19x at 4), the same in
template and search, so the teacher sees its target slightly smaller, never a different geometry. Its
maps are then mapped through the image: its centre and size per cell (crop fractions) and its score are
read bilinearly at the student's grid points and turned into l, t, r, b from each point.
Training-time only: nothing of LightTrack or LightFC is shipped.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..evaluation.onnx_peers.graphs import load_graphs
from ..evaluation.onnx_peers.lighttrack import LightTrackConfig, graphs
from .box_targets import align_grids, grid_points
from .box_train import STRIDE
from .distill import Teacher, TeacherOutput, to_input

# a map-only teacher: uint8 BGR exemplar and search crops -> (target probability (N, n, n), l, t, r, b
# (N, 4, n, n) in crop px from the points -(n // 2) * STRIDE + STRIDE * i), on a grid covering the student's
MapTeacher = Callable[[np.ndarray, np.ndarray], tuple[torch.Tensor, torch.Tensor]]

_EPS = 1e-6


def pad_to(crops: np.ndarray, size: int) -> np.ndarray:
    """uint8 NHWC crops grown to ``size`` by repeating the last row and column (coordinates unchanged)."""
    grow = size - crops.shape[1]
    if grow < 0:
        raise ValueError(f"crops of {crops.shape[1]} px are larger than the teacher's {size} px input")
    return np.ascontiguousarray(np.pad(crops, ((0, 0), (0, grow), (0, grow), (0, 0)), mode="edge"))


class LightTrackTeacher:
    """LightTrack-Mobile's maps for uint8 BGR training crops: target probabilities (N, 16, 16) and
    l, t, r, b (N, 4, 16, 16) measured from the student's grid points."""

    def __init__(self, folder: str | Path, threads: int = 1) -> None:
        self.config = LightTrackConfig()
        sessions = load_graphs("lighttrack", Path(folder), graphs(self.config), threads)
        self._z, self._x, self._head = sessions.values()

    def __call__(self, z_crops: np.ndarray, x_crops: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        z, x = pad_to(z_crops, cfg.exemplar_size), pad_to(x_crops, cfg.instance_size)
        probs, locs = [], []
        for zi, xi in zip(z, x):  # the graphs are fixed to one pair
            (zf,) = self._z.run(None, {"z": zi[None]})
            (xf,) = self._x.run(None, {"x": xi[None]})
            reg, cls = self._head.run(["reg", "cls"], {"xf": xf, "zf": zf})
            probs.append(cls)
            locs.append(reg)
        # its points sit shift px right of (below) ours: x1 = g + shift - l, so l' = l - shift, r' = r + shift
        shift = (cfg.instance_size // 2) - (x_crops.shape[1] - 1) // 2
        loc = torch.from_numpy(np.stack(locs))
        loc = loc + torch.tensor([-shift, -shift, shift, shift], dtype=loc.dtype).view(1, 4, 1, 1)
        return torch.from_numpy(np.stack(probs)), loc


def combine(probs: list[torch.Tensor], locs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(2-class cls logits (N, 2, n, n), loc (N, 4, n, n)) of teachers' target probabilities (N, n, n) and
    boxes: each teacher weighted per pair by its peak probability; at each point its box counts by its
    weight times its probability there, so a teacher that sees no target at a point hardly moves its box."""
    weights = torch.stack([p.flatten(1).amax(1) for p in probs])  # (T, N)
    weights = weights / weights.sum(0).clamp_min(_EPS)
    stacked = torch.stack(probs)                                   # (T, N, n, n)
    w = weights[:, :, None, None]
    prob = (w * stacked).sum(0).clamp(_EPS, 1 - _EPS)
    point = (w * stacked).unsqueeze(2)                             # (T, N, 1, n, n)
    loc = (point * torch.stack(locs)).sum(0) / point.sum(0).clamp_min(_EPS)
    return torch.stack([torch.log1p(-prob), torch.log(prob)], 1), loc


def centre_maps_on_box_grid(score: torch.Tensor, size: torch.Tensor, offset: torch.Tensor, side: int,
                            n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A centre-family teacher's maps over a box-family search crop of ``side`` px (score (N, 1, m, m);
    size (N, 2, m, m), w and h as crop fractions; offset (N, 2, m, m), the centre in its cell) read at the
    box grid's n x n points: (target probability (N, n, n), l, t, r, b (N, 4, n, n) in crop px).

    A crop fraction f lies (f - 0.5) * side px from the crop centre, where the box grid's points are measured
    from; cell j's score sits at its centre, f = (j + 0.5) / m. Each cell's box is carried as its centre and
    size, which neighbouring cells near the target agree on, so bilinear reading moves them little; beyond the
    teacher's outermost cell centres the border cells are repeated."""
    m = score.shape[-1]
    cells = torch.arange(m, dtype=offset.dtype, device=offset.device)
    centre = torch.stack([(cells.view(1, m) + offset[:, 0]) / m, (cells.view(m, 1) + offset[:, 1]) / m], 1)
    fields = torch.cat([score, centre, size], 1)                         # (N, 5, m, m)
    points = grid_points(n, STRIDE, score.device).to(score.dtype)        # px from the crop centre
    along = 2 * points / side                                            # grid_sample's [-1, 1] over the crop
    grid = torch.stack(torch.meshgrid(along, along, indexing="xy"), -1)  # (n, n, 2): x, y
    read = F.grid_sample(fields, grid.expand(len(fields), n, n, 2), mode="bilinear", padding_mode="border",
                         align_corners=False)
    cx, cy = (read[:, 1] - 0.5) * side, (read[:, 2] - 0.5) * side
    half_w, half_h = read[:, 3] * side / 2, read[:, 4] * side / 2
    gx, gy = points.view(1, 1, n), points.view(1, n, 1)
    loc = torch.stack([gx - cx + half_w, gy - cy + half_h, cx + half_w - gx, cy + half_h - gy], 1)
    return read[:, 0], loc


class CentreMapTeacher:
    """A centre-family network (LightFC's graphs or checkpoint, our centre checkpoints) as a map-only teacher
    of the box family: it sees the box crops at its own template and search sizes. Its score is read at points
    half a cell off its cell centres, which lowers a sharp peak (LightFC's 0.6 to about 0.35); the read map is
    scaled back to the teacher's own peak, so its weight in the ensemble stays its own confidence."""

    def __init__(self, path: str | os.PathLike, device: torch.device) -> None:
        self.network = Teacher(path, device, "centre", "--teacher-centre")
        self.device = device

    def __call__(self, z_crops: np.ndarray, x_crops: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        order = self.network.input_order
        out = self.network(to_input(z_crops, self.device, order), to_input(x_crops, self.device, order))
        side = x_crops.shape[1]
        prob, loc = centre_maps_on_box_grid(*out.maps, side, side // STRIDE + 1)
        gain = out.maps[0].flatten(1).amax(1) / prob.flatten(1).amax(1).clamp_min(_EPS)
        return (prob * gain.view(-1, 1, 1)).clamp(max=1.0), loc


class EnsembleTeacher:
    """The --teacher network plus map-only teachers: features from the network (feature distillation), maps
    from the confidence-weighted ensemble of all. Every map-only teacher's grid covers the network's (16 x 16
    points against NanoTrack's 15 x 15 at 255 px) and is cropped to its points."""

    def __init__(self, network: Teacher, members: list[MapTeacher]) -> None:
        self.network, self.members = network, members
        self.channels, self.input_order = network.channels, network.input_order

    @torch.no_grad()
    def __call__(self, z: torch.Tensor, x: torch.Tensor, z_crops: np.ndarray, x_crops: np.ndarray) -> TeacherOutput:
        own = self.network(z, x)
        cls, loc = own.maps
        probs, locs = [torch.softmax(cls, 1)[:, 1]], [loc]
        for member in self.members:
            prob, box = (t.to(cls.device) for t in member(z_crops, x_crops))
            # the same -(n // 2) * stride points: a 15 x 15 map is the 16 x 16 one without its first row and column
            probs.append(align_grids(cls, prob)[1])
            locs.append(align_grids(loc, box)[1])
        return TeacherOutput(own.z, own.x, combine(probs, locs))
