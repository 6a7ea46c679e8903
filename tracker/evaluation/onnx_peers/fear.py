"""FEAR-XS (Borsuk et al., ECCV 2022; MIT) as a bench peer: the upstream tracking loop of
PinataFarms/FEARTracker model_training/tracker/fear_tracker.py (initialize 17-34, update 46-67, _postprocess
74-86), base_tracker.py (_rescale_bbox 83-90, _smooth_size 126-139, _postprocess_bbox 149-164,
_confidence_postprocess 166-205), dataset/box_coder.py (decode 74-107) and utils/utils.py (extend_bbox,
ensure_bbox_boundaries, make_grid, clamp_bbox, get_extended_crop), ported onto its two ONNX graphs (RGB 0-255
float crops in; the graphs normalise).

Kept as upstream: integer boxes (int32-truncated crop windows, rounded results, at least 3 px, clamped into
the frame), crops that stretch the grown box to a square (aspect ratio not preserved) with the frame-0 mean
colour as padding, and the peak of the sigmoid map (torch's float32 sigmoid, so saturated ties resolve the
same way). The released loop has no window, penalty or smoothing; ``smooth`` turns on the dormant branch
(siam_tracker.yaml's penalty_k, window_influence, lr), smoothing the size as written there.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from ...inputs import as_bgr, parse_box
from ...tracking import TrackResult
from .graphs import GraphSpec, load_graphs
from .scoring import PeerOutputs, change_penalty, cosine_window, grid_points, peak, windowed

FEATURES = 256  # channels of the template features
FILES = "fear_xs_*.onnx"
Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class FearConfig:
    """Loop parameters of model_training/config/tracker/siam_tracker.yaml; ``smooth`` = its dormant branch."""

    smooth: bool = False
    penalty_k: float = 0.062
    window_influence: float = 0.38
    lr: float = 0.765
    template_size: int = 128
    instance_size: int = 256
    template_bbox_offset: float = 0.2
    search_context: float = 2.0
    total_stride: int = 16
    min_side: int = 3

    @property
    def score_size(self) -> int:
        return self.instance_size // self.total_stride


VARIANTS = {"fear": FearConfig(), "fear_smooth": FearConfig(smooth=True)}


def graphs(cfg: FearConfig) -> dict[str, GraphSpec]:
    """The two graph files and the tensors the loop exchanges with them."""
    t, i = cfg.template_size, cfg.instance_size
    features = ((1, FEATURES, t // cfg.total_stride, t // cfg.total_stride), "tensor(float)")
    return {"fear_xs_template.onnx": GraphSpec({"image": ((1, 3, t, t), "tensor(float)")}, ("features",)),
            "fear_xs_track.onnx": GraphSpec({"image": ((1, 3, i, i), "tensor(float)"), "template_features": features},
                                            ("bbox", "cls"))}


def inside(x: float, y: float, w: float, h: float, shape: tuple[int, ...]) -> Box:
    """ensure_bbox_boundaries: the part of the box inside an image of ``shape``, truncated to integers."""
    x1, y1 = min(max(0, x), shape[1]), min(max(0, y), shape[0])
    x2, y2 = min(max(0, x1 + w), shape[1]), min(max(0, y1 + h), shape[0])
    return int(x1), int(y1), int(x2 - x1), int(y2 - y1)


def clamp_box(x: float, y: float, w: float, h: float, frame_shape: tuple[int, ...], min_side: int) -> Box:
    """clamp_bbox: the box inside the frame, then widened to ``min_side`` and shifted back inside."""
    fh, fw = frame_shape[:2]
    bx, by, bw, bh = inside(x, y, w, h, frame_shape)
    if bw < min_side:
        bw = min_side
        bx -= max(0, bx + bw - fw)
    if bh < min_side:
        bh = min_side
        by -= max(0, by + bh - fh)
    return bx, by, bw, bh


def extended_crop(frame: np.ndarray, box: Box, offset: float, size: int,
                  colour: tuple[float, ...]) -> tuple[np.ndarray, Box, tuple[float, float]]:
    """get_extended_crop: the box grown by ``offset`` x its side on every side (int32-truncated), padded with
    ``colour``, resized to size x size. Returns the crop, the grown box, and the box's size inside the crop."""
    x, y, w, h = box
    cx, cy, cw, ch = (int(v) for v in (x - w * offset, y - h * offset, w * (1.0 + offset + offset),
                                       h * (1.0 + offset + offset)))
    fh, fw = frame.shape[:2]
    left, top = max(-cx, 0), max(-cy, 0)
    right, bottom = max(cx + cw - fw, 0), max(cy + ch - fh, 0)
    part = frame[cy + top:cy + ch - bottom, cx + left:cx + cw - right]
    padded = cv2.copyMakeBorder(part, top, bottom, left, right, cv2.BORDER_CONSTANT, value=colour)
    rows, cols = padded.shape[:2]
    _, _, iw, ih = inside(x - cx, y - cy, w, h, padded.shape)
    if (rows, cols) != (size, size):
        padded = cv2.resize(padded, (size, size), interpolation=cv2.INTER_LINEAR)
    return padded, (cx, cy, cw, ch), (iw * size / cols, ih * size / rows)


def _rgb_blob(crop: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(crop[:, :, ::-1].transpose(2, 0, 1)[None], dtype=np.float32)


class FearPeer:
    """``init(frame, box)`` / ``update(frame) -> TrackResult`` (score = the chosen cell's probability, never lost);
    ``outputs`` holds the last frame's raw maps (PeerOutputs). ``folder`` holds the two graph files."""

    def __init__(self, folder: str | Path, config: FearConfig = FearConfig(), threads: int = 1) -> None:
        self.config = config
        sessions = load_graphs("fear", Path(folder), graphs(config), threads)
        self.model_files = tuple(sessions)
        self._template, self._track = sessions.values()
        self._grid = grid_points(config.score_size, config.total_stride, config.instance_size)
        self._window = cosine_window(config.score_size)
        self._features: np.ndarray | None = None
        self.outputs: PeerOutputs | None = None

    def init(self, frame: np.ndarray, box: tuple[float, ...]) -> None:
        frame = as_bgr(frame)
        cfg = self.config
        self._box = clamp_box(*parse_box(box), frame.shape, cfg.min_side)
        self._colour = tuple(float(v) for v in np.mean(frame, axis=(0, 1)))
        crop, _, _ = extended_crop(frame, self._box, cfg.template_bbox_offset, cfg.template_size, self._colour)
        (self._features,) = self._template.run(None, {"image": _rgb_blob(crop)})
        self.outputs = None

    def update(self, frame: np.ndarray) -> TrackResult:
        if self._features is None:
            raise RuntimeError("call init(frame, box) before update(frame)")
        cfg = self.config
        frame = as_bgr(frame)
        crop, (cx, cy, cw, ch), (prev_w, prev_h) = extended_crop(frame, self._box, cfg.search_context,
                                                                 cfg.instance_size, self._colour)
        ltrb, logits = self._track.run(["bbox", "cls"], {"image": _rgb_blob(crop), "template_features": self._features})
        scores = torch.from_numpy(logits[0, 0]).sigmoid().numpy()
        g = self._grid
        x1, y1 = g[None, :] - ltrb[0, 0], g[:, None] - ltrb[0, 1]
        w, h = g[None, :] + ltrb[0, 2] - x1, g[:, None] + ltrb[0, 3] - y1
        if cfg.smooth:
            penalty = change_penalty(w, h, prev_w, prev_h, cfg.penalty_k)
            r, c = peak(windowed(scores, penalty, self._window, cfg.window_influence))
            # float32, as upstream's product with a 0-dim float32 tensor
            lr = float(np.float32(penalty[r, c]) * scores[r, c] * np.float32(cfg.lr))
            old_w, old_h = prev_w * (1 - lr), prev_h * (1 - lr)
            size = (old_w + lr * (w[r, c] * lr + old_w), old_h + lr * (h[r, c] * lr + old_h))
        else:
            r, c = peak(scores)
            size = (w[r, c], h[r, c])
        ws, hs = cw / cfg.instance_size, ch / cfg.instance_size
        self._box = clamp_box(round(x1[r, c] * ws + cx), round(y1[r, c] * hs + cy), max(cfg.min_side, round(size[0] * ws)),
                              max(cfg.min_side, round(size[1] * hs)), frame.shape, cfg.min_side)
        self.outputs = PeerOutputs(scores, ltrb[0], (r, c))
        return TrackResult(tuple(float(v) for v in self._box), float(scores[r, c]), False)  # type: ignore[arg-type]
