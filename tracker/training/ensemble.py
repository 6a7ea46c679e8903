"""A teacher ensemble for box-family distillation: the --teacher network (NanoTrack-v3, say) and
LightTrack-Mobile's ONNX graphs see the same training crops; their maps are combined per pair, each
teacher weighted by its own confidence on that pair (its map's peak target probability).

Why: the teachers fail on different sequences, so where one is unsure the other's maps carry more of
the signal. LightTrack runs on the same geometry: stride 16 and a 16 x 16 map for a 2x-context search crop,
only one pixel larger (128 / 256 against 127 / 255), so the crops are padded by one pixel on the right and
bottom (every pixel keeps its coordinates) and its boxes are re-expressed from its grid points
((i - 8) * 16 + 128) to ours ((i - 8) * 16 + 127). Training-time only: nothing of LightTrack is shipped.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..evaluation.onnx_peers.graphs import load_graphs
from ..evaluation.onnx_peers.lighttrack import LightTrackConfig, graphs
from .box_targets import align_grids
from .distill import Teacher, TeacherOutput

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


class EnsembleTeacher:
    """The --teacher network plus LightTrack: features from the network (feature distillation), maps
    from the confidence-weighted ensemble of both."""

    def __init__(self, network: Teacher, lighttrack: LightTrackTeacher) -> None:
        self.network, self.lighttrack = network, lighttrack
        self.channels, self.input_order = network.channels, network.input_order

    @torch.no_grad()
    def __call__(self, z: torch.Tensor, x: torch.Tensor, z_crops: np.ndarray, x_crops: np.ndarray) -> TeacherOutput:
        own = self.network(z, x)
        cls, loc = own.maps
        light_prob, light_loc = (t.to(cls.device) for t in self.lighttrack(z_crops, x_crops))
        # the same -(n // 2) * stride points: a 15 x 15 map is the 16 x 16 one without its first row and column
        cls, light_prob = align_grids(cls, light_prob)
        loc, light_loc = align_grids(loc, light_loc)
        maps = combine([torch.softmax(cls, 1)[:, 1], light_prob], [loc, light_loc])
        return TeacherOutput(own.z, own.x, maps)
