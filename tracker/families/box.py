"""Box-regression step (NanoTrack / SiamBAN): one search crop, the best penalised point's box, smoothed size."""
from __future__ import annotations

import numpy as np

from ..config import BoxTrackerConfig
from ..crops import crop_into
from .common import ContextExemplar
from ..postprocess.box import cosine_window, grid_origin, locate_box, target_probability

Proposal = tuple[float, float, float, float, float]  # score, cx, cy, w, h


class BoxStep(ContextExemplar):
    """Per-tracker state: the cosine windows by map size (normal and lost-state crops differ)."""

    relative_confidence = False  # the cls softmax is already a probability

    def __init__(self, cfg: BoxTrackerConfig) -> None:
        self.cfg = cfg
        self._windows: dict[int, np.ndarray] = {}
        locate_box(np.zeros((2, 2, 2), np.float32), np.ones((4, 2, 2), np.float32), np.ones((2, 2)), 16, -8.0, 1.0,
                   1.0, 0.1, 0.5)  # JIT warm-up

    def _window(self, n: int) -> np.ndarray:
        window = self._windows.get(n)
        if window is None:
            window = self._windows[n] = cosine_window(n)
        return window

    def _origin(self, n: int, crop: int) -> float:
        return grid_origin(n, crop, self.cfg.reference_search, self.cfg.total_stride)

    def search_size(self, target) -> int:
        """The smaller crop while the last frame was confident: cheaper, and a tighter motion prior."""
        cfg = self.cfg
        return cfg.confident_size if cfg.confident_size and target.score >= cfg.confident_score else cfg.instance_size

    def search_into(self, target, frame: np.ndarray, out: np.ndarray) -> None:
        """One crop at the target's scale (crop px per frame px); its size is the buffer's."""
        crop_into(frame, target.cx, target.cy, target.x_sz * out.shape[1] / self.cfg.instance_size, out[0], target.border)

    def propose(self, target, outputs: tuple[np.ndarray, ...], size: int) -> Proposal:
        """Best point under penalty and window -> its centre, and the size moved towards its box by lr."""
        cfg = self.cfg
        cls, loc = outputs[0][0], outputs[1][0]
        scale = cfg.instance_size / target.x_sz  # crop px per frame px, whatever the crop's size
        score, penalty, dx, dy, w, h = locate_box(cls, loc, self._window(cls.shape[1]), cfg.total_stride,
                                                  self._origin(cls.shape[1], size), target.w * scale,
                                                  target.h * scale, cfg.penalty_k, cfg.window_influence)
        lr = penalty * score * cfg.lr
        height, width = target.frame_shape
        cx = min(max(target.cx + dx / scale, 0.0), width)
        cy = min(max(target.cy + dy / scale, 0.0), height)
        w = min(max(target.w * (1 - lr) + w / scale * lr, cfg.min_size), width)
        h = min(max(target.h * (1 - lr) + h / scale * lr, cfg.min_size), height)
        return score, cx, cy, w, h

    def score_map(self, outputs: tuple[np.ndarray, ...]) -> np.ndarray:
        """The cls map as probabilities (the doubt's input; see tracker.tracking.rivalry)."""
        return target_probability(outputs[0][0])

    def relocate(self, target, outputs: tuple[np.ndarray, ...], crop_px: float, out_size: int) -> tuple[float, float, float]:
        """Best point of a lost-state crop by score and size consistency (no window: the target may be anywhere)."""
        cfg = self.cfg
        cls, loc = outputs[0][0], outputs[1][0]
        scale = out_size / crop_px
        score, _, dx, dy, _, _ = locate_box(cls, loc, self._window(cls.shape[1]), cfg.total_stride,
                                            self._origin(cls.shape[1], out_size), target.w * scale, target.h * scale,
                                            cfg.penalty_k, 0.0)
        return score, target.cx + dx / scale, target.cy + dy / scale
