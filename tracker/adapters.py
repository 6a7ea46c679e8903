"""Adapters that let code written for other tracker APIs use siamtrack unchanged.

``OpenCVTracker`` mirrors ``cv2.TrackerCSRT``'s ``init(frame, bbox)`` / ``update(frame) -> (ok, bbox)``
so OpenCV tracking code switches with one line. ``GOT10kTracker`` plugs into the got10k toolkit's
experiments; it is loaded on first access because got10k imports matplotlib.pyplot (~1.5 s).
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from .tracking import SiamTracker


class OpenCVTracker:
    """Drop-in for OpenCV's trackers: ``init(frame, bbox)``, ``update(frame) -> (ok, bbox)``.

    An all-integer bbox gives integer boxes back (as ``cv2.TrackerCSRT``), a float one float boxes
    (as OpenCV's legacy Rect2d trackers); ``ok`` is False while the target is lost.
    ``OpenCVTracker.create()`` mirrors ``cv2.TrackerCSRT.create()``; arguments go to SiamTracker.
    """

    def __init__(self, weights: str | os.PathLike | None = None, **kwargs: Any) -> None:
        self.tracker = SiamTracker(weights, **kwargs)
        self._integer = True

    @classmethod
    def create(cls, weights: str | os.PathLike | None = None, **kwargs: Any) -> "OpenCVTracker":
        return cls(weights, **kwargs)

    def init(self, image: np.ndarray, boundingBox: Sequence[float]) -> None:
        values = list(np.asarray(boundingBox).ravel()) if isinstance(boundingBox, np.ndarray) else list(boundingBox)
        self._integer = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values)
        self.tracker.init(image, values)

    def update(self, image: np.ndarray) -> tuple[bool, tuple]:
        result = self.tracker.update(image)
        box = tuple(int(round(v)) for v in result.box) if self._integer else tuple(float(v) for v in result.box)
        return not result.lost, box


def __getattr__(name: str) -> Any:
    if name == "GOT10kTracker":
        from .got10k_tracker import GOT10kTracker
        return GOT10kTracker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
