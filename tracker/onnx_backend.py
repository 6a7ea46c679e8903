"""ONNX Runtime backend: the same embed/respond contract as TorchEngine, run by onnxruntime.

The network is exported in memory (tracker.export) so any checkpoint works without a separate
export step; graphs and sessions come from tracker.graph_cache, so only the first tracker of a model
pays for the export and trackers of one model share their sessions. One target's frame is one fused
graph; elsewhere search features stay inside ONNX Runtime between the backbone and the head (OrtValue hand-off, no numpy round trip); crops are wrapped, not copied.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from .config import LoopConfig
from .engine import resolve_device, resolve_threads
from .errors import DeviceError
from .families import default_loop_config
from .graph_cache import sessions
from .models import Network

CUDA = "CUDAExecutionProvider"


def providers_for(device: str) -> list[str]:
    """ONNX Runtime providers for a device name; CUDA only when this onnxruntime build has it."""
    available = ort.get_available_providers()
    if str(device) == "auto":
        return [CUDA, "CPUExecutionProvider"] if CUDA in available else ["CPUExecutionProvider"]
    dev = resolve_device(device)
    if dev.type == "cuda":
        if CUDA not in available:
            raise DeviceError(f"device {device!r} requested but this onnxruntime has no CUDA provider; "
                              "install onnxruntime-gpu or use --device cpu")
        return [(CUDA, {"device_id": dev.index or 0}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxEngine:
    """onnxruntime backend; kernels are float32 numpy arrays (N, C, h, w).

    Dynamic graphs (any batch and size: many targets, lost-state searches, exemplars), and for one
    target's normal frame, the common case, one fused graph per crop size with every shape fixed: fixed
    shapes run faster, and one session per frame keeps a single intra-op pool busy. Static backbone/head
    pairs of the same shapes are built only when asked for (features/scores), to time the stages.
    Pickles as its network, config, device and thread count; unpickling takes the sessions from the cache.
    """

    name = "onnxruntime"

    def __init__(self, net: Network, device: str = "auto", threads: int | None = None,
                 config: LoopConfig | None = None) -> None:
        self._device_name = device
        self._providers = providers_for(device)
        self.threads = resolve_threads(threads)
        self._net, self._config = net, config or default_loop_config(net.config)
        self.backbone, self.head = self._sessions("dynamic")
        self.output_names = list(net.output_names)
        self.device = torch.device("cuda" if self.backbone.get_providers()[0] == CUDA else "cpu")
        # one fused graph per crop size a normal frame may use, keyed by the crop batch shape it is fixed to
        self._frames = {(self._config.searches_per_target, size, size, 3): self._sessions("frame", size)[0]
                        for size in self._config.frame_sizes}
        self._backbones: dict[tuple, ort.InferenceSession] = {}  # static pairs by crop / feature shape
        self._heads: dict[tuple, ort.InferenceSession] = {}

    def _sessions(self, kind: str, size: int = 0) -> tuple[ort.InferenceSession, ...]:
        return sessions(self._net, self._config, kind, size, self.threads, self._providers)

    def __getstate__(self) -> dict[str, Any]:
        return {"net": self._net, "device": self._device_name, "threads": self.threads, "config": self._config}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["net"], state["device"], state["threads"], state["config"])

    @property
    def frame_shapes(self) -> list[tuple[int, ...]]:
        """Search-crop batch shapes that run the fused single-target graph."""
        return list(self._frames)

    def _static_backbone(self, shape: tuple[int, ...]) -> ort.InferenceSession:
        """The static backbone for a fused graph's crop shape (and its head, built with it), else the dynamic one."""
        if shape in self._frames and shape not in self._backbones:
            backbone, head = self._sessions("static", shape[1])
            self._backbones[shape] = backbone
            self._heads[tuple(head.get_inputs()[1].shape)] = head
        return self._backbones.get(shape, self.backbone)

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """Exemplar embeddings (N, C, h, w) float32 for N uint8 BGR crops (N, S, S, 3)."""
        return self.backbone.run(["features"], {"crops": np.ascontiguousarray(crops)})[0]

    def features(self, crops: np.ndarray) -> ort.OrtValue:
        """Search embeddings of M uint8 BGR crops, left inside ONNX Runtime for the head."""
        crops_value = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(crops))
        return self._static_backbone(crops.shape).run_with_ort_values(["features"], {"crops": crops_value})[0]

    def scores(self, kernels: np.ndarray, features: ort.OrtValue) -> tuple[np.ndarray, ...]:
        """The family's outputs (float32, (M, k, n, n) each) of search embeddings against their exemplars."""
        kernel_value = ort.OrtValue.ortvalue_from_numpy(kernels)
        session = self._heads.get(tuple(features.shape()), self.head) if len(kernels) == 1 else self.head
        values = session.run_with_ort_values(self.output_names, {"exemplar": kernel_value, "search": features})
        return tuple(v.numpy() for v in values)

    def respond(self, kernels: np.ndarray, crops: np.ndarray) -> tuple[np.ndarray, ...]:
        """Outputs for M search crops; M is a multiple of len(kernels). One target's normal frame runs
        its fused graph; anything else the dynamic backbone and head."""
        frame = self._frames.get(crops.shape) if len(kernels) == 1 else None
        if frame is not None:
            return tuple(frame.run(self.output_names, {"exemplar": kernels, "crops": np.ascontiguousarray(crops)}))
        return self.scores(kernels, self.features(crops))

    @staticmethod
    def select(kernels: np.ndarray, rows: list[int]) -> np.ndarray:
        return kernels[rows]

    @staticmethod
    def concat(kernels: list[np.ndarray]) -> np.ndarray:
        return np.ascontiguousarray(np.concatenate(kernels, axis=0))
