"""Inference backends: uint8 BGR crops in, network outputs out. The tracking loop sees only this.

A backend embeds exemplars once (``embed``) and scores batches of search crops against them
(``respond``); targets are independent rows, so one call serves one target or many.
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch
from torch import nn

from .errors import DeviceError
from .models import Network, inference_copy
from .transfer import DeviceIO


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


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_threads() -> int:
    """The cores this process may use minus those other processes keep busy.

    Oversubscribed cores make the intra-op threads wait for each other: on a 2-core machine with one
    core kept busy, 2 threads track at 0.6x the speed of 1 (measured with the fused graph). Busy cores
    are the smaller of the 1-minute load average and the tasks running elsewhere right now: the load
    average alone still counts a job that ended seconds ago, which left the second core unused.
    """
    cores = usable_cores()
    busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    now = running_elsewhere()
    if now is not None:
        busy = min(busy, now)
    return max(1, min(cores, int(cores - busy + 0.5)))


def running_elsewhere(samples: int = 8, path: str = "/proc/loadavg") -> float | None:
    """Tasks other than this reader running or ready to run, the mean of a few reads of the kernel's
    count (Linux; None where there is none)."""
    counts = []
    try:
        for i in range(samples):
            with open(path) as f:
                counts.append(int(f.read().split()[3].split("/")[0]) - 1)  # the reader itself is running
            if i + 1 < samples:
                time.sleep(0.0005)
    except (OSError, ValueError, IndexError):
        return None
    return max(0.0, sum(counts) / len(counts))


def resolve_threads(threads: int | None = None) -> int:
    """The thread count an engine uses: ``threads``, or :func:`default_threads` when None."""
    if threads is None:
        return default_threads()
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    return threads


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """torch's intra-op thread count for the duration of one call, then the caller's again: a tracker
    never changes a process-wide setting behind its caller's back."""
    before = torch.get_num_threads()
    if before != threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if before != threads:
            torch.set_num_threads(before)


class SeparableMaxPool(nn.Module):
    """MaxPool2d without padding as strided maxima, rows then columns: the same values, but on CPU
    ~3x faster than ATen's max_pool2d, which always computes argmax indices too."""

    def __init__(self, kernel: int, stride: int) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel, self.stride
        h, w = (x.shape[2] - k) // s * s + 1, (x.shape[3] - k) // s * s + 1  # extent of the window starts
        rows = x[:, :, 0:h:s]
        for i in range(1, k):
            rows = torch.maximum(rows, x[:, :, i:i + h:s])
        out = rows[..., 0:w:s]
        for i in range(1, k):
            out = torch.maximum(out, rows[..., i:i + w:s])
        return out


def separable_pools(module: nn.Module) -> nn.Module:
    """Swap every plain square MaxPool2d (no padding/dilation/ceil) for :class:`SeparableMaxPool`."""
    for name, child in module.named_children():
        if (isinstance(child, nn.MaxPool2d) and child.padding in (0, (0, 0)) and child.dilation in (1, (1, 1))
                and not child.ceil_mode and not child.return_indices and isinstance(child.kernel_size, int)
                and isinstance(child.stride, int)):
            setattr(module, name, SeparableMaxPool(child.kernel_size, child.stride))
        else:
            separable_pools(child)
    return module


class TorchEngine:
    """PyTorch backend: Conv+BN folded, conv1 fed BGR directly, separable max-pools, channels_last,
    inference mode. Each call runs on ``threads`` CPU threads and gives torch's setting back after.
    Pickles without its transfer buffers (pinned memory, CUDA events), made again on unpickling."""

    name = "torch"

    def __init__(self, net: Network, device: str | torch.device = "auto", threads: int | None = None) -> None:
        self.device = resolve_device(device)
        self.threads = resolve_threads(threads)
        self.net = separable_pools(inference_copy(net, "bgr")).to(self.device).to(memory_format=torch.channels_last)
        self.io = DeviceIO(self.device)  # reused buffers; pinned uint8 staging on CUDA

    def __getstate__(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k != "io"}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self.io = DeviceIO(self.device)

    @torch.inference_mode()
    def embed(self, crops: np.ndarray) -> torch.Tensor:
        """Exemplar embeddings (N, C, h, w) for N uint8 BGR crops; kept on the device."""
        with torch_threads(self.threads):
            return self.net.embed(self.io.upload(crops)).clone()

    @torch.inference_mode()
    def features(self, crops: np.ndarray) -> torch.Tensor:
        """Search embeddings of M uint8 BGR crops (the backbone stage alone, for profiling)."""
        with torch_threads(self.threads):
            return self.net.embed(self.io.upload(crops))

    @torch.inference_mode()
    def scores(self, kernels: torch.Tensor, features: torch.Tensor) -> tuple[np.ndarray, ...]:
        """The family's outputs, float32 (M, k, n, n) each, of search embeddings against their exemplars
        (the head stage): SiamFC (responses,), box regression (cls, loc)."""
        with torch_threads(self.threads):
            return tuple(self.io.download(o) for o in self.net.outputs(kernels, features))

    @torch.inference_mode()
    def respond(self, kernels: torch.Tensor, crops: np.ndarray) -> tuple[np.ndarray, ...]:
        """Outputs for M search crops; M is a multiple of len(kernels)."""
        with torch_threads(self.threads):
            feats = self.net.embed(self.io.upload(crops))
            return tuple(self.io.download(o) for o in self.net.outputs(kernels, feats))

    @staticmethod
    def select(kernels: torch.Tensor, rows: list[int]) -> torch.Tensor:
        return kernels[rows]

    @staticmethod
    def concat(kernels: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(kernels, dim=0)
