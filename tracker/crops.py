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
    pixels outside the frame read as ``border``."""
    height, width, channels = frame.shape
    rows, cols = out.shape[0], out.shape[1]
    lo = _position(scale, x0, 0)[0]
    hi = _position(scale, x0, cols - 1)[0] + 2  # footprint columns [lo, hi)
    n = cols * channels
    tap = np.empty(n, np.int32)  # per output value: its left tap in the vertical pass's row, and the weight
    weight = np.empty(n, np.int32)
    for j in range(cols):
        i, w = _position(scale, x0, j)
        for c in range(channels):
            tap[j * channels + c] = (i - lo) * channels + c
            weight[j * channels + c] = w
    inside_lo = min(max(lo, 0), hi)  # the footprint's columns inside the frame: [inside_lo, inside_hi)
    inside_hi = max(min(hi, width), inside_lo)
    blank = np.empty(width * channels, np.uint8)  # a source row above or below the frame
    for k in range(width * channels):
        blank[k] = border[k % channels]
    column = np.empty((hi - lo) * channels, np.int32)
    for k in range((inside_lo - lo) * channels):  # footprint left of the frame, then right of it
        column[k] = np.int32(border[k % channels]) << _BITS
    for k in range((inside_hi - lo) * channels, (hi - lo) * channels):
        column[k] = np.int32(border[k % channels]) << _BITS
    start, stop = inside_lo * channels, inside_hi * channels
    offset = (inside_lo - lo) * channels
    for r in range(rows):
        y, wy = _position(scale, y0, r)
        upper = (frame[y].reshape(-1) if 0 <= y < height else blank)[start:stop]  # slices: the loop vectorises
        lower = (frame[y + 1].reshape(-1) if 0 <= y + 1 < height else blank)[start:stop]
        inside = column[offset:offset + stop - start]
        for k in range(stop - start):
            a = np.int32(upper[k])
            inside[k] = (a << _BITS) + wy * (np.int32(lower[k]) - a)
        dst = out[r].reshape(-1)
        for k in range(n):
            a = column[tap[k]]
            v = (a << _BITS) + weight[k] * (column[tap[k] + channels] - a)
            dst[k] = np.uint8((v + (1 << (2 * _BITS - 1))) >> (2 * _BITS))


def crop_into(frame: np.ndarray, cx: float, cy: float, size: float, out: np.ndarray,
              border: tuple[float, float, float]) -> np.ndarray:
    """Resample the ``size`` x ``size`` square centred at (cx, cy) into ``out`` (S x S x 3 uint8)."""
    if not out.flags.c_contiguous:
        raise ValueError("crop_into needs a C-contiguous output buffer")
    out_size = out.shape[0]
    a = size / out_size
    offset = (out_size - 1) / 2
    colour = np.clip(np.rint(np.asarray(border, np.float64)), 0, 255).astype(np.uint8)
    _resample(np.ascontiguousarray(frame), a, cx - a * offset, cy - a * offset, out, colour)
    return out


def crop(frame: np.ndarray, cx: float, cy: float, size: float, out_size: int,
         border: tuple[float, float, float]) -> np.ndarray:
    """Allocating convenience form of :func:`crop_into` (training and tests)."""
    return crop_into(frame, cx, cy, size, np.empty((out_size, out_size, 3), np.uint8), border)


def mean_colour(frame: np.ndarray) -> tuple[float, float, float]:
    b, g, r, _ = cv2.mean(frame)
    return (b, g, r)
