"""The tracking lifecycle shared by every model family: SiamTracker (one target), MultiTracker (many, one
batched pass), lost state and re-detection.

Per frame and target: the family's step crops the search region(s) -> backbone -> head -> network
outputs -> the step's post-processing proposes a new centre and size (tracker/families). The
exemplar embedding is computed once at ``init``. A confidence below ``lost_threshold`` puts the
target in a lost state: the box stops moving and one search over a growing region (up to the whole
frame) looks for it again. A step that shows its score map (``score_map``) also feeds the *doubt*: a
rival peak nearly as high as the chosen one, frame after frame, is how a tracker that has drifted onto
a distractor or the background looks, long before its peak drops; doubt lowers the reported score. The
map's *spread* (how evenly its mass scatters) raises the lost flag: a target in view concentrates the map.
Neither moves the box.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import LoopConfig
from .crops import border_colour, crop_into, mean_colour
from .engine import TorchEngine, resolve_device, resolve_threads
from .errors import FrameError
from .families import Step, build_step, loop_config
from .inputs import as_bgr, check_box
from .postprocess.map_signals import rivalry, spread
from .model_zoo import load_shared

MAX_REDETECT_FACTOR = 3  # largest lost-state search crop, in multiples of instance_size


@dataclass(frozen=True)
class TrackResult:
    """One frame's answer: box (x, y, w, h) floats, 0-based; score in [0, 1] = the peak's confidence times
    one minus the doubt (README, Robustness: "What score and lost mean"); lost = in the lost state or doubting."""

    box: tuple[float, float, float, float]
    score: float
    lost: bool


class _Target:
    """Geometry and lost state of one tracked object; knows nothing about the network or its family."""

    def __init__(self, cfg: LoopConfig, frame: np.ndarray, box: tuple[float, float, float, float]) -> None:
        x, y, w, h = box
        self.cfg = cfg
        self._set(x + (w - 1) / 2, y + (h - 1) / 2, w, h)
        self.base_x_sz = self.x_sz
        self.border = border_colour(mean_colour(frame))
        self.lost = False
        self.low_count = 0
        self.growth = 1.0
        self.frame_shape = frame.shape[:2]
        self.frame_side = max(frame.shape[:2])
        self.score = 1.0      # confidence of the last frame (drives the lost state, crops, template refresh)
        self.doubt = 0.0      # running mean of the map's rivalry over tracked frames (frozen while lost)
        self.spread = 0.0     # running mean of the map's spread over tracked frames (frozen while lost)
        self.reference = 1.0  # raw peak the confidence is relative to: the own-frame peak at init, then recent peaks
        self.confident_frames = 0
        self._confident = self._geometry()

    def _set(self, cx: float, cy: float, w: float, h: float) -> None:
        """Move to a centre and size; the exemplar and search extents follow (context around the box)."""
        self.cx, self.cy, self.w, self.h = cx, cy, w, h
        self.z_sz, self.x_sz = self.cfg.extents(w, h)

    def _geometry(self) -> tuple[float, ...]:
        return self.cx, self.cy, self.w, self.h

    def refresh_due(self, score: float) -> bool:
        """Every ``template_every`` confident frames (lost or low frames do not count)."""
        if score < self.cfg.template_gate or self.low_count or self.lost:
            return False
        self.confident_frames += 1
        return self.confident_frames % self.cfg.template_every == 0

    def confidence(self, raw: float) -> float:
        """Peak relative to the target's recent peaks, clipped to [0, 1] (families whose raw score is
        already a probability keep the reference at 1). Relative, because raw scales differ from model
        to model (one threshold fits all), and recent, so a target that slowly turns keeps ~1 while one
        that vanishes drops at once (the reference is frozen while low/lost)."""
        return min(max(raw / self.reference, 0.0), 1.0)

    def peak_radius(self) -> int:
        """Map cells (``total_stride`` search-crop px each) the target's own peak spans: half its size in the
        crop. The same rule fits a stride-16 box map (2 cells) and a stride-8 SiamFC response (4)."""
        cfg = self.cfg
        return max(1, round(math.sqrt(self.w * self.h) * cfg.instance_size / self.x_sz / (2 * cfg.total_stride)))

    @property
    def box(self) -> tuple[float, float, float, float]:
        return (self.cx - (self.w - 1) / 2, self.cy - (self.h - 1) / 2, self.w, self.h)

    def exemplar_into(self, frame: np.ndarray, out: np.ndarray) -> None:
        crop_into(frame, self.cx, self.cy, self.z_sz, out, self.border)

    def _result(self, lost: bool) -> TrackResult:
        """What the user sees: the confidence discounted by the doubt; lost in the lost state, when doubting or
        when the map is spread out."""
        cfg = self.cfg
        flagged = lost or self.doubt >= cfg.doubt_threshold or self.spread >= cfg.spread_threshold
        return TrackResult(self.box, self.score * (1.0 - self.doubt), flagged)

    def apply(self, proposal: tuple[float, float, float, float, float], relative: bool,
              rival: float = 0.0, spread: float = 0.0) -> TrackResult:
        """Take the step's (raw score, cx, cy, w, h) unless the confidence says the target is lost; ``rival``
        and ``spread`` (0 for a step without a score map) update the doubt and the spread."""
        raw, cx, cy, w, h = proposal
        score = self.score = self.confidence(raw)
        self.doubt += self.cfg.doubt_rate * (rival - self.doubt)
        self.spread += self.cfg.spread_rate * (spread - self.spread)
        if self._enters_lost(score):
            return self._result(True)
        self._set(cx, cy, w, h)
        if not self.low_count:
            self._confident = self._geometry()
            if relative:
                self.reference += self.cfg.confidence_rate * (max(raw, 1e-6) - self.reference)
        return self._result(False)

    def _enters_lost(self, score: float) -> bool:
        """Count consecutive low-confidence frames; after ``lost_patience`` of them enter the lost state,
        back at the last confident box (the low frames may have drifted onto the background)."""
        if score >= self.cfg.lost_threshold:
            self.low_count = 0
            return False
        self.low_count += 1
        if self.low_count < self.cfg.lost_patience:
            return False
        self._set(*self._confident)
        self.lost = True
        self.growth = 1.0
        return True

    def redetect_crop(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        """A single crop over a region grown by ``redetect_growth`` per lost frame (to the frame)."""
        cfg = self.cfg
        limit = max(2.0 * self.frame_side / self.x_sz, 1.0)
        if self.growth < min(limit, MAX_REDETECT_FACTOR):  # steps of a fixed ladder: few crop sizes, few buffers
            self.growth = min(self.growth * cfg.redetect_growth, float(MAX_REDETECT_FACTOR))
        extra = int(round((cfg.instance_size * (self.growth - 1)) / cfg.total_stride))
        out_size = cfg.instance_size + extra * cfg.total_stride
        crop_px = self.x_sz * out_size / cfg.instance_size
        buf = np.empty((1, out_size, out_size, 3), np.uint8)
        crop_into(frame, self.cx, self.cy, crop_px, buf[0], self.border)
        return buf, crop_px

    def redetect(self, found: tuple[float, float, float]) -> TrackResult:
        """Jump to the step's lost-state peak (raw, cx, cy) if it is confident enough; else stay lost."""
        raw, cx, cy = found
        score = self.score = self.confidence(raw)
        if score < max(self.cfg.lost_threshold, self.cfg.recover_threshold):
            return self._result(True)
        self._set(cx, cy, self.w, self.h)
        self.lost = False
        self.low_count = 0
        self.growth = 1.0
        self._confident = self._geometry()
        return self._result(False)


def build_engine(net, backend: str, device: str, config: LoopConfig | None = None, threads: int | None = None):
    """'auto' = onnxruntime on CPU (~11 % less CPU per frame than torch with the same boxes, < 0.5 px
    on the validation split; tools/speed.py), torch on a GPU. ``threads``: CPU threads of the engine's
    own calls (None: the cores other processes leave free); no process-wide setting changes."""
    if backend == "auto":
        backend = "onnxruntime" if resolve_device(device).type == "cpu" else "torch"
    if backend == "torch":
        return TorchEngine(net, device, threads)
    if backend == "onnxruntime":
        from .onnx_backend import OnnxEngine
        return OnnxEngine(net, device, threads, config)  # the exported head bakes in the exemplar size
    raise ValueError(f"unknown backend {backend!r}; choose 'auto', 'torch' or 'onnxruntime'")


class MultiTracker:
    """Track many targets in one video with ONE batched backbone forward per frame.

    ``add(frame, box)`` returns a target id (at any frame); ``remove(id)``; ``update(frame)``
    returns ``{id: TrackResult}`` for every target. Trackers of one model share the loaded network and, on
    ONNX Runtime, its sessions (tracker.graph_cache), so building one costs milliseconds after the first.
    Picklable: the network, config and targets travel, reused buffers and sessions are made again.
    """

    def __init__(self, weights: str | os.PathLike | None = None, device: str = "auto", backend: str = "auto",
                 threads: int | None = None, **config: Any) -> None:
        threads = resolve_threads(threads)  # once, and a bad count fails before the weights load
        net, overrides, self.metadata = load_shared(weights)
        self.family = net.config.family
        self.config = loop_config(self.family, {**overrides, **config})
        self.model_config = net.config
        self.engine = build_engine(net, backend, device, self.config, threads)
        cfg = self.config
        self.step: Step = build_step(self.family, cfg, net.config)
        self._targets: dict[int, _Target] = {}
        self._kernels: dict[int, Any] = {}
        self._first_kernels: dict[int, Any] = {}
        self._batch: tuple[tuple[int, ...], Any] | None = None
        self._search: dict[tuple[int, int], np.ndarray] = {}
        self._exemplar = np.empty((1, cfg.exemplar_size, cfg.exemplar_size, 3), np.uint8)
        self._next_id = 0
        self._frame_shape: tuple[int, ...] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_batch": None, "_search": {}}

    def _check_frame(self, frame: object) -> np.ndarray:
        frame = as_bgr(frame)
        if self._frame_shape is not None and self._targets and frame.shape != self._frame_shape:
            raise FrameError(f"frame size changed from {self._frame_shape[1]}x{self._frame_shape[0]} to "
                             f"{frame.shape[1]}x{frame.shape[0]} mid-stream; re-init the tracker for the new size")
        self._frame_shape = frame.shape
        return frame

    @property
    def ids(self) -> list[int]:
        return list(self._targets)

    def add(self, frame: np.ndarray, box: object) -> int:
        """Start tracking the object in ``box`` (x, y, w, h) of ``frame``; returns its id."""
        frame = self._check_frame(frame)
        target = _Target(self.config, frame, check_box(box, frame.shape))
        self.step.exemplar_into(target, frame, self._exemplar[0])
        tid = self._next_id
        self._next_id += 1
        self._kernels[tid] = self._first_kernels[tid] = self.engine.embed(self._exemplar)
        if self.step.relative_confidence:
            target.reference = self._own_peak(self._kernels[tid], frame, target)
        self._targets[tid] = target
        self._batch = None
        return tid

    def _own_peak(self, kernel: Any, frame: np.ndarray, target: _Target) -> float:
        """The exemplar's peak response on the search crop of its own frame: 'as alike as it gets'."""
        size = self.config.instance_size
        crop = crop_into(frame, target.cx, target.cy, target.x_sz, np.empty((size, size, 3), np.uint8), target.border)
        return max(float(self.engine.respond(kernel, crop[None])[0].max()), 1e-6)

    def remove(self, tid: int) -> None:
        if tid not in self._targets:
            raise KeyError(f"no target with id {tid}; current ids: {self.ids}")
        del self._targets[tid], self._kernels[tid], self._first_kernels[tid]
        self._batch = None

    def box(self, tid: int) -> tuple[float, float, float, float]:
        return self._targets[tid].box

    def _refresh_template(self, tid: int, target: _Target, frame: np.ndarray) -> None:
        """Mix the exemplar of this confident frame into the first one, in feature space: the template
        follows slow appearance change but never forgets what it was told to track."""
        w = self.config.template_weight
        self.step.exemplar_into(target, frame, self._exemplar[0])
        self._kernels[tid] = (1 - w) * self._first_kernels[tid] + w * self.engine.embed(self._exemplar)
        self._batch = None

    def _kernels_for(self, ids: tuple[int, ...]):
        if self._batch is None or self._batch[0] != ids:
            self._batch = (ids, self.engine.concat([self._kernels[i] for i in ids]))
        return self._batch[1]

    def _search_buffer(self, n: int, size: int) -> np.ndarray:
        buf = self._search.get((n, size))
        if buf is None:
            buf = np.empty((n, size, size, 3), np.uint8)
            if len(self._search) >= len(self.config.frame_sizes):
                self._search.clear()  # keep one per crop size: target counts change rarely
            self._search[n, size] = buf
        return buf

    def update(self, frame: np.ndarray) -> dict[int, TrackResult]:
        """Track every target into ``frame``; one batched forward for all targets not lost."""
        frame = self._check_frame(frame)
        results: dict[int, TrackResult] = {}
        active = tuple(i for i, t in self._targets.items() if not t.lost)
        step = self.step
        if active:
            s = self.config.searches_per_target
            size = max(step.search_size(self._targets[tid]) for tid in active)  # one batch, one crop size
            buf = self._search_buffer(len(active) * s, size)
            for k, tid in enumerate(active):
                step.search_into(self._targets[tid], frame, buf[k * s:(k + 1) * s])
            outputs = self.engine.respond(self._kernels_for(active), buf)
            for k, tid in enumerate(active):
                target = self._targets[tid]
                mine = tuple(o[k * s:(k + 1) * s] for o in outputs)
                rival = scatter = 0.0
                if hasattr(step, "score_map"):
                    score_map = step.score_map(mine)
                    rival = rivalry(score_map, target.peak_radius())
                    if self.config.spread_threshold <= 1.0:  # off (above 1) by default: never flags, so not computed
                        scatter = spread(score_map)
                results[tid] = target.apply(step.propose(target, mine, size), step.relative_confidence, rival, scatter)
                if self.config.template_weight and target.refresh_due(target.score):
                    self._refresh_template(tid, target, frame)
        for tid, target in self._targets.items():
            if tid not in results:
                crop, crop_px = target.redetect_crop(frame)
                outputs = self.engine.respond(self._kernels[tid], crop)
                results[tid] = target.redetect(step.relocate(target, outputs, crop_px, crop.shape[1]))
        return results


class SiamTracker:
    """Single-target Siamese tracker: ``init(frame, box)`` then ``update(frame) -> TrackResult``.

    ``weights``: a shipped model name, a path to our checkpoint or to a siamfc-pytorch checkpoint,
    or None for the default shipped model; also a NanoTrack state dict or ONNX pair (the two files or their
    folder). ``config`` overrides the family's loop config fields (:class:`TrackerConfig` for SiamFC,
    :class:`BoxTrackerConfig` for box regression).
    """

    def __init__(self, weights: str | os.PathLike | None = None, device: str = "auto", backend: str = "auto",
                 threads: int | None = None, **config: Any) -> None:
        self._multi = MultiTracker(weights, device, backend, threads, **config)
        self._id: int | None = None

    @property
    def config(self) -> LoopConfig:
        return self._multi.config

    @property
    def metadata(self) -> dict[str, Any]:
        return self._multi.metadata

    @property
    def family(self) -> str:
        """The model family the weights belong to: 'siamfc' or 'box'."""
        return self._multi.family

    def init(self, frame: np.ndarray, box: object) -> None:
        """Start (or restart) tracking the object inside ``box`` = (x, y, w, h) in ``frame``."""
        if self._id is not None:
            self._multi.remove(self._id)
        self._id = None
        self._id = self._multi.add(frame, box)

    def update(self, frame: np.ndarray) -> TrackResult:
        if self._id is None:
            raise RuntimeError("call init(frame, box) before update(frame)")
        return self._multi.update(frame)[self._id]

    @property
    def box(self) -> tuple[float, float, float, float]:
        if self._id is None:
            raise RuntimeError("call init(frame, box) first")
        return self._multi.box(self._id)

