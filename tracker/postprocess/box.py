"""Box-regression outputs -> best candidate box: decode, scale/aspect-change penalty, cosine window.

``locate_box`` is the Numba kernel the tracker runs (no allocation per frame); ``locate_box_reference``
is NanoTrack's / pysot's post-processing written plainly in NumPy, the tests' ground truth.
Grid point (i, j) sits at (origin + j * stride, origin + i * stride) from the crop centre; NanoTrack's
convention at its training crop is origin = -(n // 2) * stride, and :func:`grid_origin` carries that
to other crop sizes.
"""
from __future__ import annotations

import math

import numba
import numpy as np


def grid_origin(n: int, crop: int, reference_crop: int, stride: int) -> float:
    """Offset of point (0, 0) from the centre of a ``crop`` px search crop whose map is n x n.

    Points are fixed to the image: growing the crop by 2 * stride adds a point at each end, so the
    origin moves by half the growth. At ``reference_crop`` (where the model's targets were defined,
    NanoTrack: 255) it is NanoTrack's -(n0 // 2) * stride; for an odd n0 that is the symmetric grid at
    every size, for an even n0 (v1/v2) the grid stays half a stride off centre, as trained.
    """
    n0 = n - (crop - reference_crop) // stride
    return -(n0 // 2) * stride - (crop - reference_crop) / 2


def cosine_window(n: int) -> np.ndarray:
    """Outer product of Hann windows (not normalised: it mixes with softmax scores in [0, 1])."""
    return np.outer(np.hanning(n), np.hanning(n))


@numba.njit(cache=True, fastmath=False, nogil=True)
def _change(r):
    return max(r, 1.0 / r)


@numba.njit(cache=True, fastmath=False, nogil=True)
def _size(w, h):
    pad = (w + h) * 0.5
    return math.sqrt((w + pad) * (h + pad))


@numba.njit(cache=True, fastmath=False, nogil=True)
def locate_box(cls, loc, window, stride, origin, width, height, penalty_k, window_influence):
    """Best point of one target's maps.

    cls (2, n, n) logits, loc (4, n, n) l,t,r,b in crop px, window (n, n); point (i, j) at (origin +
    j * stride, origin + i * stride); width/height = the current target size in crop px. Returns (score, penalty, cx, cy, w, h) of the best point: softmax score,
    its size-change penalty, and its box (centre relative to the crop centre, size) in crop px.
    """
    n = cls.shape[1]
    ref_size = _size(width, height)
    ref_ratio = width / height
    best = -np.inf
    out = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    for i in range(n):
        py = origin + stride * i
        for j in range(n):
            px = origin + stride * j
            score = 1.0 / (1.0 + math.exp(cls[0, i, j] - cls[1, i, j]))
            l, t, r, b = loc[0, i, j], loc[1, i, j], loc[2, i, j], loc[3, i, j]
            w = l + r
            h = t + b
            penalty = math.exp(-(_change(ref_ratio / (w / h)) * _change(_size(w, h) / ref_size) - 1.0) * penalty_k)
            value = penalty * score * (1.0 - window_influence) + window[i, j] * window_influence
            if value > best:
                best = value
                out = (score, penalty, px + (r - l) * 0.5, py + (b - t) * 0.5, w, h)
    return out


def locate_box_reference(cls: np.ndarray, loc: np.ndarray, window: np.ndarray, stride: int, origin: float,
                         width: float, height: float, penalty_k: float, window_influence: float) -> tuple[float, ...]:
    """NanoTracker.track's maths (HonglinChu/SiamTrackers), vectorised as the original (which has
    origin = -(n // 2) * stride)."""
    n = cls.shape[1]
    ori = origin
    xs, ys = np.meshgrid(ori + stride * np.arange(n), ori + stride * np.arange(n))
    px, py = xs.ravel().astype(np.float32), ys.ravel().astype(np.float32)
    logits = cls.reshape(2, -1).astype(np.float64)
    score = np.exp(logits[1]) / (np.exp(logits[0]) + np.exp(logits[1]))
    d = loc.reshape(4, -1)
    x1, y1, x2, y2 = px - d[0], py - d[1], px + d[2], py + d[3]
    cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1

    def change(r):
        return np.maximum(r, 1.0 / r)

    def sz(a, b):
        pad = (a + b) * 0.5
        return np.sqrt((a + pad) * (b + pad))

    s_c = change(sz(w, h) / sz(width, height))
    r_c = change((width / height) / (w / h))
    penalty = np.exp(-(r_c * s_c - 1) * penalty_k)
    pscore = penalty * score * (1 - window_influence) + window.ravel() * window_influence
    k = int(np.argmax(pscore))
    return float(score[k]), float(penalty[k]), float(cx[k]), float(cy[k]), float(w[k]), float(h[k])


@numba.njit(cache=True, nogil=True)
def target_probability(cls):
    """(n, n) softmax probability of the target channel of (2, n, n) logits (the logit gap clipped to +-60,
    so no exp overflows): the map the doubt reads every frame."""
    n, m = cls.shape[1], cls.shape[2]
    out = np.empty((n, m), np.float32)
    for i in range(n):
        for j in range(m):
            gap = min(max(cls[0, i, j] - cls[1, i, j], -60.0), 60.0)
            out[i, j] = 1.0 / (1.0 + math.exp(gap))
    return out
