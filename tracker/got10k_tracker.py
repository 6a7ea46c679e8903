"""SiamTracker behind the got10k toolkit's ``Tracker`` interface (for ``ExperimentOTB`` and friends)."""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
from got10k.trackers import Tracker

from .tracking import SiamTracker


def pil_to_bgr(image: Any) -> np.ndarray:
    """A PIL image (any mode) as an HxWx3 uint8 BGR array, the tracker's frame format."""
    rgb = np.asarray(image.convert("RGB") if image.mode != "RGB" else image, dtype=np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1])


class GOT10kTracker(Tracker):
    """A SiamTracker behind the got10k toolkit's ``Tracker`` interface (for ``ExperimentOTB`` etc.)."""

    def __init__(self, name: str = "siamtrack", weights: str | os.PathLike | None = None, **kwargs: Any) -> None:
        super().__init__(name=name, is_deterministic=True)
        self.tracker = SiamTracker(weights, **kwargs)

    def init(self, image: Any, box: Sequence[float]) -> None:
        self.tracker.init(pil_to_bgr(image), [float(v) for v in box])

    def update(self, image: Any) -> np.ndarray:
        return np.asarray(self.tracker.update(pil_to_bgr(image)).box, dtype=np.float64)
