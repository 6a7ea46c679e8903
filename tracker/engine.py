"""Inference backends: uint8 BGR crops in, response maps out. The tracking loop sees only this.

A backend embeds exemplars once (``embed``) and scores batches of search crops against them
(``respond``); targets are independent rows, so one call serves one target or many.
"""
from __future__ import annotations

import numpy as np
import torch

from .errors import DeviceError
from .models import SiameseNet, inference_copy


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' picks CUDA when present; asking for CUDA without a GPU is an error, not a silent CPU run."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise DeviceError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {device!r} requested but no CUDA GPU is available; use --device cpu or auto")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceError(f"device {device!r} requested but only {torch.cuda.device_count()} GPU(s) exist")
    if dev.type not in ("cpu", "cuda"):
        raise DeviceError(f"device {device!r} is not supported; use 'auto', 'cpu' or 'cuda'")
    return dev


class TorchEngine:
    """PyTorch backend: Conv+BN folded, conv1 fed BGR directly, channels_last, inference mode."""

    name = "torch"

    def __init__(self, net: SiameseNet, device: str | torch.device = "auto") -> None:
        self.device = resolve_device(device)
        self.net = inference_copy(net, "bgr").to(self.device).to(memory_format=torch.channels_last)
        self._buffers: dict[tuple[int, ...], torch.Tensor] = {}

    def _as_input(self, crops: np.ndarray) -> torch.Tensor:
        """Copy N x S x S x 3 uint8 crops into a reused float NCHW (channels_last) buffer."""
        key = crops.shape
        buf = self._buffers.get(key)
        if buf is None:
            if len(self._buffers) > 16:  # bounded: lost-target searches use a few extra sizes
                self._buffers.clear()
            n, h, w, _ = key
            buf = torch.empty((n, 3, h, w), dtype=torch.float32, device=self.device).to(memory_format=torch.channels_last)
            self._buffers[key] = buf
        buf.copy_(torch.from_numpy(crops).permute(0, 3, 1, 2))
        return buf

    @torch.inference_mode()
    def embed(self, crops: np.ndarray) -> torch.Tensor:
        """Exemplar embeddings (N, C, h, w) for N uint8 BGR crops; kept on the device."""
        return self.net.embed(self._as_input(crops)).clone()

    @torch.inference_mode()
    def respond(self, kernels: torch.Tensor, crops: np.ndarray) -> np.ndarray:
        """Responses (M, n, n) float32 for M search crops; M is a multiple of len(kernels)."""
        x = self.net.embed(self._as_input(crops))
        out = self.net.head(kernels, x)
        return out[:, 0].float().cpu().numpy()

    @staticmethod
    def select(kernels: torch.Tensor, rows: list[int]) -> torch.Tensor:
        return kernels[rows]

    @staticmethod
    def concat(kernels: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(kernels, dim=0)
