"""LightTrack-Mobile (Yan et al., CVPR 2021; MIT) as a bench peer: the upstream tracking loop of
researchmm/LightTrack lib/tracker/lighttrack.py (init 27-80, update 82-140, track 142-178, grids 180-196,
Config 212-239) and lib/utils/utils.py (get_subwindow_tracking 196-256, python2round 281-287, cxy_wh_2_rect
862-864), ported onto three fixed-shape ONNX graphs (uint8 BGR crops in; the graphs normalise).

Kept as upstream, because the goal is its behaviour: the exemplar side rounded at init but not while
tracking, the search side rounded half away from zero (python2round), crop corners rounded half to even,
padding with the frame-0 channel mean truncated to uint8, cv2.resize crops, the size smoothed twice, the
centre clamped to the frame and the size to [10, frame side], the reported corner clamped at 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ...inputs import as_bgr, parse_box
from ...tracking import TrackResult
from .graphs import GraphSpec, load_graphs
from .scoring import PeerOutputs, change_penalty, cosine_window, grid_points, peak, windowed

FEATURES = 96  # channels of the backbone's feature maps
FILES = "lighttrack_*.onnx"


@dataclass(frozen=True)
class LightTrackConfig:
    """Loop parameters: upstream Config(even=1) (lines 214-220); the VOT2019 variant changes penalty_k,
    window_influence and lr (experiments/test/VOT/LightTrack.yaml; its 288 px big search crop is not used:
    the graphs are fixed at 256)."""

    penalty_k: float = 0.062
    window_influence: float = 0.38
    lr: float = 0.765
    exemplar_size: int = 128
    instance_size: int = 256
    total_stride: int = 16
    context_amount: float = 0.5
    min_size: float = 10.0

    @property
    def score_size(self) -> int:
        return round(self.instance_size / self.total_stride)


VARIANTS = {"lighttrack": LightTrackConfig(),
            "lighttrack_vot": LightTrackConfig(penalty_k=0.007, window_influence=0.225, lr=0.616)}


def graphs(cfg: LightTrackConfig) -> dict[str, GraphSpec]:
    """The three graph files and the tensors the loop exchanges with them."""
    e, i, s = cfg.exemplar_size, cfg.instance_size, cfg.score_size
    zf = ((1, FEATURES, e // cfg.total_stride, e // cfg.total_stride), "tensor(float)")
    return {"lighttrack_z_feature.onnx": GraphSpec({"z": ((1, e, e, 3), "tensor(uint8)")}, ("zf",)),
            "lighttrack_x_feature.onnx": GraphSpec({"x": ((1, i, i, 3), "tensor(uint8)")}, ("xf",)),
            "lighttrack_head.onnx": GraphSpec({"xf": ((1, FEATURES, s, s), "tensor(float)"), "zf": zf}, ("reg", "cls"))}


def python2round(f: float) -> float:
    """Python 2's round: halves away from zero."""
    if round(f + 1) - round(f) != 1:
        return f + abs(f) / f * 0.5
    return round(f)


def subwindow(frame: np.ndarray, cx: float, cy: float, out_size: int, side: float, pad: np.ndarray) -> np.ndarray:
    """get_subwindow_tracking: the side x side pixels from round(c - (side + 1) / 2), out-of-frame pixels
    ``pad``, resized to out_size x out_size by cv2.resize (bilinear) unless already that size."""
    n = int(side)
    x0, y0 = round(cx - (side + 1) / 2), round(cy - (side + 1) / 2)
    fh, fw = frame.shape[:2]
    if x0 >= 0 and y0 >= 0 and x0 + n <= fw and y0 + n <= fh:
        patch = frame[y0:y0 + n, x0:x0 + n]
    else:
        patch = np.empty((n, n, 3), np.uint8)
        patch[:] = pad
        ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x0 + n, fw), min(y0 + n, fh)
        if ix0 < ix1 and iy0 < iy1:
            patch[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = frame[iy0:iy1, ix0:ix1]
    if n != out_size:
        return cv2.resize(patch, (out_size, out_size))
    return np.ascontiguousarray(patch)


class LightTrackPeer:
    """``init(frame, box)`` / ``update(frame) -> TrackResult`` (score = the chosen cell's probability, never lost);
    ``outputs`` holds the last frame's raw maps (PeerOutputs). ``folder`` holds the three graph files."""

    def __init__(self, folder: str | Path, config: LightTrackConfig = LightTrackConfig(), threads: int = 1) -> None:
        self.config = config
        sessions = load_graphs("lighttrack", Path(folder), graphs(config), threads)
        self.model_files = tuple(sessions)
        self._z, self._x, self._head = sessions.values()
        self._grid = grid_points(config.score_size, config.total_stride, config.instance_size)
        self._window = cosine_window(config.score_size)
        self._zf: np.ndarray | None = None
        self.outputs: PeerOutputs | None = None

    def _context_side(self) -> float:
        w, h = self._size
        ctx = self.config.context_amount * (w + h)
        return float(np.sqrt((w + ctx) * (h + ctx)))

    def init(self, frame: np.ndarray, box: tuple[float, ...]) -> None:
        frame = as_bgr(frame)
        x, y, w, h = parse_box(box)
        self._frame_h, self._frame_w = frame.shape[:2]
        self._pos = np.array([x + w / 2, y + h / 2])
        self._size = np.array([w, h])
        self._pad = np.mean(frame, axis=(0, 1)).astype(np.uint8)
        z = subwindow(frame, *self._pos, self.config.exemplar_size, round(self._context_side()), self._pad)
        self._zf = self._z.run(None, {"z": z[None]})[0]
        self.outputs = None

    def update(self, frame: np.ndarray) -> TrackResult:
        if self._zf is None:
            raise RuntimeError("call init(frame, box) before update(frame)")
        cfg = self.config
        frame = as_bgr(frame)
        s_z = self._context_side()
        scale_z = cfg.exemplar_size / s_z
        s_x = s_z + 2 * ((cfg.instance_size - cfg.exemplar_size) / 2 / scale_z)
        x = subwindow(frame, *self._pos, cfg.instance_size, python2round(s_x), self._pad)
        (xf,) = self._x.run(None, {"x": x[None]})
        reg, cls = self._head.run(["reg", "cls"], {"xf": xf, "zf": self._zf})
        target = self._size * scale_z
        g = self._grid
        x1, y1 = g[None, :] - reg[0], g[:, None] - reg[1]
        x2, y2 = g[None, :] + reg[2], g[:, None] + reg[3]
        penalty = change_penalty(x2 - x1, y2 - y1, target[0], target[1], cfg.penalty_k)
        r, c = peak(windowed(cls, penalty, self._window, cfg.window_influence))
        centre = np.array([(x1[r, c] + x2[r, c]) / 2, (y1[r, c] + y2[r, c]) / 2]) - cfg.instance_size // 2
        pred = np.array([x2[r, c] - x1[r, c], y2[r, c] - y1[r, c]]) / scale_z
        old = target / scale_z
        lr = penalty[r, c] * cls[r, c] * cfg.lr
        smoothed = pred * lr + (1 - lr) * old
        size = old * (1 - lr) + lr * smoothed  # upstream smooths twice (lines 132-136)
        pos = self._pos + centre / scale_z
        self._pos = np.array([max(0, min(self._frame_w, pos[0])), max(0, min(self._frame_h, pos[1]))])
        self._size = np.array([max(cfg.min_size, min(self._frame_w, size[0])), max(cfg.min_size, min(self._frame_h, size[1]))])
        self.outputs = PeerOutputs(cls, reg, (r, c))
        (cx, cy), (w, h) = self._pos, self._size
        box = (max(0.0, float(cx - w / 2)), max(0.0, float(cy - h / 2)), float(w), float(h))
        return TrackResult(box, float(cls[r, c]), False)
