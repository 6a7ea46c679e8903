"""Centre-head step (LightFC): LightFC's crops, the windowed score peak's size and offset, the box clipped.

The target's geometry lives in the shared lifecycle (centre cx = x + (w - 1) / 2); the step converts
to LightFC's (x, y, w, h) (the target's ``box``) at its edges, so a model of this family tracks exactly as LightFC's own loop.
"""
from __future__ import annotations

import numpy as np

from ..config import CentreTrackerConfig
from ..crops import lightfc_side, sample_target_into
from ..postprocess.centre import decode_centre, hann_window, locate_centre, size_penalty

Proposal = tuple[float, float, float, float, float]  # score, cx, cy, w, h


class CentreStep:
    """Per-tracker state: the Hann windows by map size, and how the network's maps lie in the search crop.

    ``map_origin`` (crop px where the maps' first cell begins) and ``size_reference`` (the crop side the size map's
    fractions are of; 0 = the crop searched) belong to the network (``CentreModelConfig.map_geometry``), not to
    the loop: no loop setting may move them.
    """

    relative_confidence = False  # the score map is a probability: the peak's raw value is the confidence

    def __init__(self, cfg: CentreTrackerConfig, map_origin: float = 0.0, size_reference: float = 0.0) -> None:
        if size_reference < 0:
            raise ValueError(f"size_reference must be >= 0 (0 = the searched crop), got {size_reference}")
        self.cfg = cfg
        self.map_origin, self.size_reference = float(map_origin), float(size_reference)
        self._windows: dict[int, np.ndarray] = {}
        maps = np.full((2, 2, 2), 0.5, np.float32)
        decode_centre(maps[0], maps, maps, self._window(2), 32, 64, 0.0, 0.0, 8.0, 8.0, 64, 64, 2.0, 2.0, 0.0)  # JIT warm-up
        locate_centre(maps[0], maps, 16.0, 0.0)

    def _window(self, n: int) -> np.ndarray:
        window = self._windows.get(n)
        if window is None:
            window = self._windows[n] = hann_window(n, self.cfg.window_influence)
        return window

    def search_size(self, target) -> int:
        return self.cfg.instance_size

    def exemplar_into(self, target, frame: np.ndarray, out: np.ndarray) -> None:
        sample_target_into(frame, *target.box, self.cfg.template_factor, out)

    def search_into(self, target, frame: np.ndarray, out: np.ndarray) -> None:
        sample_target_into(frame, *target.box, self.cfg.search_factor, out[0])

    def propose(self, target, outputs: tuple[np.ndarray, ...], size: int) -> Proposal:
        """Peak of score x window (x size penalty) -> its cell's size and offset -> the box around the previous
        centre, clipped."""
        cfg = self.cfg
        score, box_size, offset = outputs[0][0], outputs[1][0], outputs[2][0]
        x, y, w, h = target.box
        side = lightfc_side(w, h, cfg.search_factor)  # the crop search_into made
        height, width = target.frame_shape
        window = self._window(score.shape[1])
        if self.size_reference and self.size_reference != size:  # fractions of the trained crop -> of this one
            box_size = box_size * np.float32(self.size_reference / size)
        if cfg.penalty_k:  # folded into the window: the peak is that of score x window x penalty
            window = window * size_penalty(box_size, side, w, h, cfg.penalty_k)
        raw, nx, ny, nw, nh = decode_centre(score[0], box_size, offset, window, size, side, x, y, w, h, height, width,
                                            cfg.clip_margin, size / cfg.total_stride, self.map_origin)
        cx, cy = nx + (nw - 1) / 2, ny + (nh - 1) / 2
        if cfg.size_rate < 1.0:  # a student's noisy sizes would otherwise compound through the next crop's scale
            nw, nh = w + cfg.size_rate * (nw - w), h + cfg.size_rate * (nh - h)
        return raw, cx, cy, nw, nh

    def score_map(self, outputs: tuple[np.ndarray, ...]) -> np.ndarray:
        """The unwindowed score map (the doubt's and the spread's input; see tracker.postprocess.map_signals)."""
        return outputs[0][0, 0]

    def relocate(self, target, outputs: tuple[np.ndarray, ...], crop_px: float, out_size: int) -> tuple[float, float, float]:
        """Unwindowed peak of a lost-state crop (``out_size`` px over ``crop_px`` frame px, centred on the target)."""
        raw, u, v = locate_centre(outputs[0][0, 0], outputs[2][0], float(self.cfg.total_stride), self.map_origin)
        scale = crop_px / out_size
        return raw, target.cx + (u - out_size / 2) * scale, target.cy + (v - out_size / 2) * scale
