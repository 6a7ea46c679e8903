"""Centre-head outputs -> the frame's box: Hann-windowed peak, size + offset decode, map back, clip.

``decode_centre`` is the Numba kernel the tracker runs; ``decode_centre_reference`` is LightFC's
post-processing (lib/test/tracker/lightfc.py track/map_box_back, erh.py cal_bbox, box_ops.py clip_box)
written plainly in NumPy, the tests' ground truth. Both keep upstream's arithmetic: the window,
product, decode and scaling in float32 (torch's), the mapping back and the clip in float64 (Python's).
"""
from __future__ import annotations

import math

import numba
import numpy as np


def hann_window(n: int, power: float = 1.0) -> np.ndarray:
    """LightFC's 2-D window: outer product of 0.5 * (1 - cos(2 pi k / (n + 1))), k = 1..n (no zeros),
    float32, raised to ``power`` (1: LightFC's; 0: no window)."""
    k = np.arange(1, n + 1, dtype=np.float32)
    hann = (np.float32(0.5) * (np.float32(1) - np.cos(np.float32(2 * math.pi / (n + 1)) * k))).astype(np.float32)
    window = np.outer(hann, hann).astype(np.float32)
    return window if power == 1.0 else (window ** np.float32(power)).astype(np.float32)


@numba.njit(cache=True, nogil=True)
def peak(score, window):
    """(raw maximum of ``score``, row, column of the first maximum of ``window * score``), float32."""
    best = np.float32(-1.0)
    raw = np.float32(-1.0)
    bi, bj = 0, 0
    for i in range(score.shape[0]):
        for j in range(score.shape[1]):
            s = score[i, j]
            v = np.float32(window[i, j] * s)
            if v > best:
                best, bi, bj = v, i, j
            if s > raw:
                raw = s
    return raw, bi, bj


@numba.njit(cache=True, nogil=True)
def decode_centre(score, size, offset, window, search_size, side, x, y, w, h, height, width, margin, cells, origin):
    """One target's maps -> (raw score, x, y, w, h) of the new box in frame px.

    score (n, n), size (2, n, n), offset (2, n, n) float32; window (n, n); the search crop was ``side``
    frame px around the previous box (x, y, w, h) resized to ``search_size``, which ``cells`` cells span
    (``search_size`` / stride), the maps' first beginning ``origin`` px in (0: LightFC's, whose arithmetic
    this keeps to the bit); the box is clipped to the height x width frame with ``margin``.
    """
    raw, i, j = peak(score, window)
    n = np.float32(cells)
    scale = np.float32(search_size)
    factor = np.float32(search_size / side)
    shift = np.float32(origin)
    cx = np.float32(np.float32(np.float32(np.float32(np.float32(j) + offset[0, i, j]) / n) * scale) + shift) / factor
    cy = np.float32(np.float32(np.float32(np.float32(np.float32(i) + offset[1, i, j]) / n) * scale) + shift) / factor
    bw = np.float32(size[0, i, j] * scale) / factor
    bh = np.float32(size[1, i, j] * scale) / factor
    half = 0.5 * search_size / (search_size / side)
    cx = float(cx) + (x + 0.5 * w - half)
    cy = float(cy) + (y + 0.5 * h - half)
    x1, y1 = cx - 0.5 * float(bw), cy - 0.5 * float(bh)
    x2, y2 = x1 + float(bw), y1 + float(bh)
    x1 = min(max(0.0, x1), width - margin)
    x2 = min(max(margin, x2), float(width))
    y1 = min(max(0.0, y1), height - margin)
    y2 = min(max(margin, y2), float(height))
    return float(raw), x1, y1, max(margin, x2 - x1), max(margin, y2 - y1)


def decode_centre_reference(score, size, offset, window, search_size, side, x, y, w, h, height, width, margin):
    """LightFC's loop, line for line in NumPy (float32 where upstream computes in torch)."""
    response = (window * score).astype(np.float32)
    idx = int(np.argmax(response.reshape(-1)))  # the first maximum, as torch.max
    n = score.shape[0]
    iy, ix = idx // n, idx % n
    box = np.array([(np.float32(ix) + offset[0, iy, ix]) / np.float32(n), (np.float32(iy) + offset[1, iy, ix]) / np.float32(n),
                    size[0, iy, ix], size[1, iy, ix]], np.float32)
    resize_factor = search_size / side
    cx, cy, bw, bh = ((box * np.float32(search_size)) / np.float32(resize_factor)).astype(np.float32).tolist()
    half_side = 0.5 * search_size / resize_factor
    cx_real, cy_real = cx + (x + 0.5 * w - half_side), cy + (y + 0.5 * h - half_side)
    bx, by = cx_real - 0.5 * bw, cy_real - 0.5 * bh
    x2, y2 = bx + bw, by + bh
    bx, x2 = min(max(0, bx), width - margin), min(max(margin, x2), width)
    by, y2 = min(max(0, by), height - margin), min(max(margin, y2), height)
    return float(score.max()), bx, by, max(margin, x2 - bx), max(margin, y2 - by)


def size_penalty(size: np.ndarray, side: float, w: float, h: float, k: float) -> np.ndarray:
    """(n, n) float32 factor on every cell's score: SiamRPN's scale and aspect penalty, exp(-k (c(r) c(s) - 1))
    with c(x) = max(x, 1/x), s the cell's size sqrt(w h) over the target's and r its aspect over the target's.
    ``size``: (2, n, n) widths and heights as shares of the ``side``-px search crop. A student's size maps are
    noisier than its teacher's; this prefers the peaks whose box stays the target's shape."""
    bw, bh = np.maximum(size[0] * side, 1e-6), np.maximum(size[1] * side, 1e-6)
    s = np.sqrt(bw * bh) / math.sqrt(w * h)
    r = (bw / bh) / (w / h)
    change = np.maximum(s, 1 / s) * np.maximum(r, 1 / r)
    return np.exp(-k * (change - 1)).astype(np.float32)


@numba.njit(cache=True, nogil=True)
def locate_centre(score, offset, stride, origin):
    """(raw score, cx, cy) of the unwindowed peak; the centre in crop px (cell edges at ``origin`` + multiples of
    ``stride``)."""
    raw, i, j = peak(score, np.ones_like(score))
    return float(raw), origin + float(j + offset[0, i, j]) * stride, origin + float(i + offset[1, i, j]) * stride
