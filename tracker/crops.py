"""Square crops around a target, resampled with one cv2.warpAffine each into preallocated buffers.

Coordinates are pixel-index coordinates (pixel centres at integers), the convention of
cv2.warpAffine; a box (x, y, w, h) has its centre at (x + (w - 1) / 2, y + (h - 1) / 2).
Out-of-frame pixels take the frame's mean colour, as in SiamFC.
"""
from __future__ import annotations

import cv2
import numpy as np

_FLAGS = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP


def crop_into(frame: np.ndarray, cx: float, cy: float, size: float, out: np.ndarray,
              border: tuple[float, float, float]) -> np.ndarray:
    """Resample the ``size`` x ``size`` square centred at (cx, cy) into ``out`` (S x S x 3 uint8)."""
    out_size = out.shape[0]
    a = size / out_size
    offset = (out_size - 1) / 2
    m = np.array([[a, 0.0, cx - a * offset], [0.0, a, cy - a * offset]])
    return cv2.warpAffine(frame, m, (out_size, out.shape[1]), dst=out, flags=_FLAGS,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def crop(frame: np.ndarray, cx: float, cy: float, size: float, out_size: int,
         border: tuple[float, float, float]) -> np.ndarray:
    """Allocating convenience form of :func:`crop_into` (training and tests)."""
    return crop_into(frame, cx, cy, size, np.empty((out_size, out_size, 3), np.uint8), border)


def mean_colour(frame: np.ndarray) -> tuple[float, float, float]:
    b, g, r, _ = cv2.mean(frame)
    return (b, g, r)
