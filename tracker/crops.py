"""Square crops around a target, resampled bilinearly by a Numba kernel into preallocated buffers.

Coordinates are pixel-index coordinates (pixel centres at integers), the convention of
cv2.warpAffine; a box (x, y, w, h) has its centre at (x + (w - 1) / 2, y + (h - 1) / 2).
Out-of-frame pixels take the frame's mean colour, as in SiamFC.

Why not cv2.warpAffine: it runs on OpenCV's process-wide thread pool, whose workers spin after each
call and then compete with the network's threads (and the caller decides that pool's size, not us).
This kernel is single-threaded and gives warpAffine's INTER_LINEAR + BORDER_CONSTANT values to within
one grey level (11-bit fixed-point weights; tests/test_crops.py).
"""
from __future__ import annotations

import math

import cv2
import numba
import numpy as np

_BITS = 11  # fixed-point fraction bits per interpolation pass: 255 << 22 still fits int32


@numba.njit(cache=True, nogil=True)
def _position(scale: float, origin: float, j: int) -> tuple[int, int]:
    """Source pixel left of (or above) output index ``j`` and the fixed-point weight of the next one
    (float32 positions, as OpenCV computes them)."""
    s = np.float32(np.float32(scale) * np.float32(j) + np.float32(origin))
    i = math.floor(s)
    return i, np.int32(np.rint((s - np.float32(i)) * (1 << _BITS)))


@numba.njit(cache=True, nogil=True)
def _resample(frame, scale: float, x0: float, y0: float, out, border) -> None:
    """Vertical pass over the crop's source columns, then the horizontal pass per output row. Source
    pixels outside the frame read as ``border``. Three channels, unrolled, and unsigned indices in the
    horizontal pass: no negative-index check per load, which halves the crop's time."""
    height, width = frame.shape[0], frame.shape[1]
    rows, cols = out.shape[0], out.shape[1]
    lo = _position(scale, x0, 0)[0]
    hi = _position(scale, x0, cols - 1)[0] + 2  # footprint columns [lo, hi)
    tap = np.empty(cols, np.uint64)  # per output pixel: its left tap in the vertical pass's row, and the weight
    weight = np.empty(cols, np.int32)
    for j in range(cols):
        i, w = _position(scale, x0, j)
        tap[j] = np.uint64((i - lo) * 3)
        weight[j] = w
    inside_lo = min(max(lo, 0), hi)  # the footprint's columns inside the frame: [inside_lo, inside_hi)
    inside_hi = max(min(hi, width), inside_lo)
    blank = np.empty(width * 3, np.uint8)  # a source row above or below the frame
    for k in range(width * 3):
        blank[k] = border[k % 3]
    column = np.empty((hi - lo) * 3, np.int32)
    for k in range((inside_lo - lo) * 3):  # footprint left of the frame, then right of it
        column[k] = np.int32(border[k % 3]) << _BITS
    for k in range((inside_hi - lo) * 3, (hi - lo) * 3):
        column[k] = np.int32(border[k % 3]) << _BITS
    start, stop = inside_lo * 3, inside_hi * 3
    offset = (inside_lo - lo) * 3
    half = np.int32(1 << (2 * _BITS - 1))
    one, two, three, four, five = np.uint64(1), np.uint64(2), np.uint64(3), np.uint64(4), np.uint64(5)
    for r in range(rows):
        y, wy = _position(scale, y0, r)
        upper = (frame[y].reshape(-1) if 0 <= y < height else blank)[start:stop]  # slices: the loop vectorises
        lower = (frame[y + 1].reshape(-1) if 0 <= y + 1 < height else blank)[start:stop]
        inside = column[offset:offset + stop - start]
        for k in range(stop - start):
            a = np.int32(upper[k])
            inside[k] = (a << _BITS) + wy * (np.int32(lower[k]) - a)
        dst = out[r].reshape(-1)
        for j in range(cols):
            t, w, d = tap[j], weight[j], np.uint64(3 * j)
            b, g, c = column[t], column[t + one], column[t + two]
            dst[d] = np.uint8(((b << _BITS) + w * (column[t + three] - b) + half) >> (2 * _BITS))
            dst[d + one] = np.uint8(((g << _BITS) + w * (column[t + four] - g) + half) >> (2 * _BITS))
            dst[d + two] = np.uint8(((c << _BITS) + w * (column[t + five] - c) + half) >> (2 * _BITS))


def border_colour(colour: tuple[float, float, float] | np.ndarray) -> np.ndarray:
    """The out-of-frame colour as the kernel takes it (3 uint8, rounded); convert once per target."""
    return np.clip(np.rint(np.asarray(colour, np.float64)), 0, 255).astype(np.uint8)


def crop_into(frame: np.ndarray, cx: float, cy: float, size: float, out: np.ndarray,
              border: tuple[float, float, float] | np.ndarray) -> np.ndarray:
    """Resample the ``size`` x ``size`` square centred at (cx, cy) of a 3-channel ``frame`` into ``out``
    (S x S x 3 uint8). ``border``: the out-of-frame colour, best as :func:`border_colour` gives it."""
    if not out.flags.c_contiguous or out.ndim != 3 or out.shape[2] != 3 or out.dtype != np.uint8:
        raise ValueError(f"crop_into needs a C-contiguous (S, S, 3) uint8 output buffer, got {out.dtype} {out.shape}")
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"crop_into needs a 3-channel (H, W, 3) frame, got shape {frame.shape}")
    out_size = out.shape[0]
    a = size / out_size
    offset = (out_size - 1) / 2
    if not (isinstance(border, np.ndarray) and border.dtype == np.uint8 and border.shape == (3,)):
        border = border_colour(border)
    _resample(np.ascontiguousarray(frame), a, cx - a * offset, cy - a * offset, out, border)
    return out


def crop(frame: np.ndarray, cx: float, cy: float, size: float, out_size: int,
         border: tuple[float, float, float]) -> np.ndarray:
    """Allocating convenience form of :func:`crop_into` (training and tests)."""
    return crop_into(frame, cx, cy, size, np.empty((out_size, out_size, 3), np.uint8), border)


def mean_colour(frame: np.ndarray) -> tuple[float, float, float]:
    b, g, r, _ = cv2.mean(frame)
    return (b, g, r)


def lightfc_side(w: float, h: float, factor: float) -> int:
    """Side in frame px of LightFC's crop around a w x h box: ``ceil(sqrt(w*h) * factor)``."""
    return math.ceil(math.sqrt(w * h) * factor)


def sample_target_into(frame: np.ndarray, x: float, y: float, w: float, h: float, factor: float,
                       out: np.ndarray) -> int:
    """LightFC's crop (its ``sample_target``) into ``out`` (S x S x 3 uint8); returns the crop side.

    The centre-head family's models were trained on exactly these crops, so they are reproduced as
    written: side ``ceil(sqrt(w*h) * factor)``, top-left ``round(x + w/2 - side/2)`` (Python's round,
    ties to even), zero outside the frame, and one more real column/row zeroed when the crop passes
    the right/bottom edge (upstream's ``x2 - W + 1``); then cv2.resize (bilinear) to S. A crop wholly
    outside the frame is all zero (upstream fails there).
    """
    side = lightfc_side(w, h, factor)
    if not side >= 1:
        raise ValueError(f"cannot crop around a {w} x {h} box; the box needs a positive area")
    height, width = frame.shape[:2]
    x1, y1 = round(x + 0.5 * w - side * 0.5), round(y + 0.5 * h - side * 0.5)
    left, top = max(x1, 0), max(y1, 0)
    right, bottom = min(x1 + side, width - 1) if x1 + side >= width else x1 + side, \
        min(y1 + side, height - 1) if y1 + side >= height else y1 + side
    if right <= left or bottom <= top:
        out.fill(0)
        return side
    region = frame[top:bottom, left:right]
    if (left - x1, top - y1, right - left, bottom - top) != (0, 0, side, side):
        canvas = np.zeros((side, side, 3), np.uint8)
        canvas[top - y1:bottom - y1, left - x1:right - x1] = region
        region = canvas
    cv2.resize(region, (out.shape[1], out.shape[0]), dst=out, interpolation=cv2.INTER_LINEAR)
    return side
