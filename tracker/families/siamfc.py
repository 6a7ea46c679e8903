"""SiamFC step: a scale pyramid of search crops, the upsampled response's windowed peak, damped scale."""
from __future__ import annotations

import cv2
import numpy as np

from ..config import TrackerConfig
from ..crops import crop_into
from .common import ContextExemplar
from ..postprocess.siamfc import PeakFinder

Proposal = tuple[float, float, float, float, float]  # raw score, cx, cy, w, h


class SiamFCStep(ContextExemplar):
    """Per-tracker state: the peak finder's window and scratch buffers, the scale factors."""

    relative_confidence = True  # raw responses have no fixed scale: confidence is relative to recent peaks

    def __init__(self, cfg: TrackerConfig) -> None:
        self.cfg = cfg
        self.finder = PeakFinder(cfg.response_size, cfg.response_up, cfg.scale_num, cfg.scale_penalty, cfg.window_influence)
        self.finder(np.zeros((cfg.scale_num, cfg.response_size, cfg.response_size), np.float32))  # JIT warm-up
        self.scales = np.asarray(cfg.scale_factors)

    def search_size(self, target) -> int:
        return self.cfg.instance_size

    def search_into(self, target, frame: np.ndarray, out: np.ndarray) -> None:
        for i, f in enumerate(self.scales):
            crop_into(frame, target.cx, target.cy, target.x_sz * f, out[i], target.border)

    def propose(self, target, outputs: tuple[np.ndarray, ...], size: int) -> Proposal:
        """Peak of the (S, 1, n, n) responses -> moved centre and damped scale change."""
        cfg = self.cfg
        s, r, c, raw = self.finder(outputs[0][:, 0])
        half = (self.finder.upscale_size - 1) / 2
        step = cfg.total_stride / cfg.response_up * target.x_sz * self.scales[s] / cfg.instance_size
        scale = (1 - cfg.scale_lr) + cfg.scale_lr * self.scales[s]
        x_sz = min(max(target.x_sz * scale, cfg.min_scale * target.base_x_sz), cfg.max_scale * target.base_x_sz)
        scale = x_sz / target.x_sz
        return raw, target.cx + (c - half) * step, target.cy + (r - half) * step, target.w * scale, target.h * scale

    def score_map(self, outputs: tuple[np.ndarray, ...]) -> np.ndarray:
        """The response of the scale with the highest peak (the doubt's input; see tracker.tracking.rivalry)."""
        responses = outputs[0][:, 0]
        return responses[int(np.argmax(responses.reshape(len(responses), -1).max(axis=1)))]

    def relocate(self, target, outputs: tuple[np.ndarray, ...], crop_px: float, out_size: int) -> tuple[float, float, float]:
        """Peak of one lost-state response over an ``out_size`` crop of ``crop_px`` frame px -> (raw, cx, cy)."""
        cfg = self.cfg
        response = outputs[0][0, 0]
        n = response.shape[0]
        up = cv2.resize(response, (n * cfg.response_up, n * cfg.response_up), interpolation=cv2.INTER_CUBIC)
        r, c = np.unravel_index(int(np.argmax(up)), up.shape)
        half = (up.shape[0] - 1) / 2
        step = cfg.total_stride / cfg.response_up * crop_px / out_size
        return float(up[r, c]), target.cx + (c - half) * step, target.cy + (r - half) * step
