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
def _taps(scale: float, origin: float, n: int, limit: int, channels: int):
    """Per output value along one axis: the two source indices (clamped), whether each is inside,
    and the weight of the second, for source position ``origin + scale * j`` (float32, as OpenCV)."""
    first = np.empty(n * channels, np.int32)
    second = np.empty(n * channels, np.int32)
    in_first = np.empty(n * channels, np.bool_)
    in_second = np.empty(n * channels, np.bool_)
    weight = np.empty(n * channels, np.int32)
    for j in range(n):
        s = np.float32(np.float32(scale) * np.float32(j) + np.float32(origin))
        i = math.floor(s)
        w = np.int32(np.rint((s - np.float32(i)) * (1 << _BITS)))
        for c in range(channels):
            k = j * channels + c
            first[k] = min(max(i, 0), limit - 1) * channels + c
            second[k] = min(max(i + 1, 0), limit - 1) * channels + c
            in_first[k] = 0 <= i < limit
            in_second[k] = 0 <= i + 1 < limit
            weight[k] = w
    return first, second, in_first, in_second, weight


@numba.njit(cache=True, nogil=True)
def _row(src, first, second, in_first, in_second, weight, border, out) -> None:
    """One source row resampled horizontally, in fixed point (value << _BITS)."""
    for k in range(out.shape[0]):
        a = np.int32(src[first[k]]) if in_first[k] else border[k]
        b = np.int32(src[second[k]]) if in_second[k] else border[k]
        out[k] = (a << _BITS) + weight[k] * (b - a)


@numba.njit(cache=True, nogil=True)
def _row_inside(src, first, second, weight, out) -> None:
    """:func:`_row` for a row whose taps all lie inside the frame (the common case: no branches)."""
    for k in range(out.shape[0]):
        a = np.int32(src[first[k]])
        out[k] = (a << _BITS) + weight[k] * (np.int32(src[second[k]]) - a)


@numba.njit(cache=True, nogil=True)
def _load(src, first, second, in_first, in_second, weight, border, inside: bool, out) -> None:
    if inside:
        _row_inside(src, first, second, weight, out)
    else:
        _row(src, first, second, in_first, in_second, weight, border, out)


@numba.njit(cache=True, nogil=True)
def _resample(frame, scale: float, x0: float, y0: float, out, border_colour) -> None:
    height, width, channels = frame.shape
    rows, cols = out.shape[0], out.shape[1]
    n = cols * channels
    first, second, in_first, in_second, weight = _taps(scale, x0, cols, width, channels)
    border = np.empty(n, np.int32)
    for k in range(n):
        border[k] = border_colour[k % channels]
    border_row = np.empty(n, np.int32)
    for k in range(n):
        border_row[k] = border[k] << _BITS
    inside = in_first.all() and in_second.all()
    top = np.empty(n, np.int32)
    bottom = np.empty(n, np.int32)
    loaded = -2  # the source row held in ``bottom``
    for i in range(rows):
        s = np.float32(np.float32(scale) * np.float32(i) + np.float32(y0))
        y = math.floor(s)
        wy = np.int32(np.rint((s - np.float32(y)) * (1 << _BITS)))
        if y == loaded + 1:  # upscaling: the last bottom row is this top row
            top[:] = bottom
        elif y != loaded:
            if 0 <= y < height:
                _load(frame[y].reshape(-1), first, second, in_first, in_second, weight, border, inside, top)
            else:
                top[:] = border_row
        if y != loaded:
            if 0 <= y + 1 < height:
                _load(frame[y + 1].reshape(-1), first, second, in_first, in_second, weight, border, inside, bottom)
            else:
                bottom[:] = border_row
            loaded = y
        dst = out[i].reshape(-1)
        for k in range(n):
            v = (top[k] << _BITS) + wy * (bottom[k] - top[k])
            dst[k] = np.uint8((v + (1 << (2 * _BITS - 1))) >> (2 * _BITS))


def crop_into(frame: np.ndarray, cx: float, cy: float, size: float, out: np.ndarray,
              border: tuple[float, float, float]) -> np.ndarray:
    """Resample the ``size`` x ``size`` square centred at (cx, cy) into ``out`` (S x S x 3 uint8)."""
    if not out.flags.c_contiguous:
        raise ValueError("crop_into needs a C-contiguous output buffer")
    out_size = out.shape[0]
    a = size / out_size
    offset = (out_size - 1) / 2
    colour = np.clip(np.rint(np.asarray(border, np.float64)), 0, 255).astype(np.int32)
    _resample(np.ascontiguousarray(frame), a, cx - a * offset, cy - a * offset, out, colour)
    return out


def crop(frame: np.ndarray, cx: float, cy: float, size: float, out_size: int,
         border: tuple[float, float, float]) -> np.ndarray:
    """Allocating convenience form of :func:`crop_into` (training and tests)."""
    return crop_into(frame, cx, cy, size, np.empty((out_size, out_size, 3), np.uint8), border)


def mean_colour(frame: np.ndarray) -> tuple[float, float, float]:
    b, g, r, _ = cv2.mean(frame)
    return (b, g, r)
