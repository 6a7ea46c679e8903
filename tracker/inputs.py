"""Validation at the edge: frames become HxWx3 uint8 BGR, boxes become finite (x, y, w, h) floats.

Conversions happen only where the meaning is unambiguous; anything else is refused with a
one-line error naming the problem and the fix.
"""
from __future__ import annotations

import math
import warnings
from typing import Sequence

import cv2
import numpy as np

from .errors import BoxError, FrameError

MIN_FRAME_SIDE = 8
MIN_BOX_SIDE = 2.0


def as_bgr(frame: object) -> np.ndarray:
    """Return ``frame`` as a C-contiguous HxWx3 uint8 BGR array, converting unambiguous variants."""
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"frame must be a numpy array (HxWx3 uint8 BGR, as cv2 gives), got {type(frame).__name__}")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (3, 4)):
        raise FrameError(f"frame has shape {frame.shape}; expected HxW (gray), HxWx3 (BGR) or HxWx4 (BGRA)")
    if min(frame.shape[:2]) < MIN_FRAME_SIDE:
        raise FrameError(f"frame is {frame.shape[1]}x{frame.shape[0]} px; frames must be at least {MIN_FRAME_SIDE}x{MIN_FRAME_SIDE}")
    if frame.dtype != np.uint8:
        frame = _to_uint8(frame)
    if frame.ndim == 2:
        frame = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_GRAY2BGR)
    elif frame.shape[2] == 4:
        frame = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(frame)


def _to_uint8(frame: np.ndarray) -> np.ndarray:
    if frame.dtype == np.uint16:
        return (frame >> 8).astype(np.uint8)
    if frame.dtype == np.bool_:
        return frame.astype(np.uint8) * 255
    if np.issubdtype(frame.dtype, np.floating):
        if not np.isfinite(frame).all():
            raise FrameError("frame contains NaN or infinite values; pass a finite image")
        lo, hi = float(frame.min()), float(frame.max())
        if lo >= 0.0 and hi <= 1.0:
            return np.round(frame * 255.0).astype(np.uint8)
        if lo >= 0.0 and hi <= 255.0:
            return np.round(frame).astype(np.uint8)
        raise FrameError(f"float frame has values in [{lo:g}, {hi:g}]; expected [0, 1] or [0, 255]")
    raise FrameError(f"frame dtype {frame.dtype} is not supported; pass uint8, uint16 or float images")


def parse_box(box: object) -> tuple[float, float, float, float]:
    """Parse (x, y, w, h) from a sequence or an 'x,y,w,h' string; reject anything not finite."""
    if isinstance(box, str):
        parts: Sequence[object] = [p for p in box.replace(" ", ",").split(",") if p]
    else:
        try:
            parts = list(box)  # type: ignore[arg-type]
        except TypeError:
            raise BoxError(f"box must be 4 numbers x,y,w,h; got {box!r}") from None
    if len(parts) != 4:
        raise BoxError(f"box must have 4 values x,y,w,h; got {len(parts)} ({box!r})")
    try:
        values = tuple(float(p) for p in parts)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BoxError(f"box values must be numbers x,y,w,h; got {box!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise BoxError(f"box values must be finite numbers; got {box!r}")
    x, y, w, h = values
    if w <= 0 or h <= 0:
        raise BoxError(f"box width and height must be positive; got w={w:g}, h={h:g}")
    return x, y, w, h


def check_box(box: object, frame_shape: tuple[int, ...]) -> tuple[float, float, float, float]:
    """Validate an initial box against the frame: clip partial overlap (with a warning), refuse the rest."""
    x, y, w, h = parse_box(box)
    fh, fw = frame_shape[:2]
    if w < MIN_BOX_SIDE or h < MIN_BOX_SIDE:
        raise BoxError(f"box {w:g}x{h:g} px is too small to track; draw a box at least {MIN_BOX_SIDE:g} px on each side")
    x0, y0, x1, y1 = max(x, 0.0), max(y, 0.0), min(x + w, float(fw)), min(y + h, float(fh))
    if x1 - x0 <= 0 or y1 - y0 <= 0:
        raise BoxError(f"box {x:g},{y:g},{w:g},{h:g} lies entirely outside the {fw}x{fh} frame; give a box on the target")
    if (x0, y0, x1, y1) != (x, y, x + w, y + h):
        if x1 - x0 < MIN_BOX_SIDE or y1 - y0 < MIN_BOX_SIDE:
            raise BoxError(f"box {x:g},{y:g},{w:g},{h:g} overlaps the {fw}x{fh} frame by less than {MIN_BOX_SIDE:g} px; give a box on the target")
        warnings.warn(f"box {x:g},{y:g},{w:g},{h:g} extends past the {fw}x{fh} frame; clipped to "
                      f"{x0:g},{y0:g},{x1 - x0:g},{y1 - y0:g}", stacklevel=3)
    return x0, y0, x1 - x0, y1 - y0
