"""Score-map maths both ported loops share (SiamFC/Ocean lineage): grid points of the map in the search crop,
the cosine window, the scale/ratio-change penalty and the windowed score; and PeerOutputs, the last frame's raw
head outputs a peer keeps (free: they are computed anyway) for use as a distillation teacher.

Written in the upstream order of operations so that the floats match the references.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PeerOutputs:
    """One frame's raw outputs in the peer's search crop: ``score_map`` (S, S) probabilities, ``ltrb`` (4, S, S)
    left/top/right/bottom distances in crop pixels from each grid point, ``peak`` the (row, col) the loop chose."""

    score_map: np.ndarray
    ltrb: np.ndarray
    peak: tuple[int, int]


def grid_points(score_size: int, stride: int, instance_size: int) -> np.ndarray:
    """Crop coordinate of each map column (= row): (i - S // 2) * stride + instance_size // 2."""
    return (np.arange(score_size) - float(score_size // 2)) * stride + instance_size // 2


def cosine_window(score_size: int) -> np.ndarray:
    return np.outer(np.hanning(score_size), np.hanning(score_size))


def _change(r: np.ndarray) -> np.ndarray:
    return np.maximum(r, 1.0 / r)


def _padded_side(w: np.ndarray | float, h: np.ndarray | float) -> np.ndarray:
    pad = (w + h) * 0.5
    return np.sqrt((w + pad) * (h + pad))


def change_penalty(w: np.ndarray, h: np.ndarray, prev_w: float, prev_h: float, k: float) -> np.ndarray:
    """exp(-(r_c * s_c - 1) * k): s_c, r_c = how much each proposal's padded side and aspect ratio change."""
    s_c = _change(_padded_side(w, h) / _padded_side(prev_w, prev_h))
    r_c = _change((prev_w / prev_h) / (w / h))
    return np.exp(-(r_c * s_c - 1) * k)


def windowed(scores: np.ndarray, penalty: np.ndarray, window: np.ndarray, influence: float) -> np.ndarray:
    """The map the peak is taken from: penalised scores blended with the cosine window."""
    return penalty * scores * (1 - influence) + window * influence


def peak(score_map: np.ndarray) -> tuple[int, int]:
    """(row, col) of the first maximum, as np.argmax / torch.argmax pick it."""
    r, c = np.unravel_index(int(score_map.argmax()), score_map.shape)
    return int(r), int(c)
