"""Host <-> device copies for TorchEngine: uint8 crops up, float32 responses down, buffers reused per shape.

On CUDA the crops cross the bus as uint8 (a quarter of float32's bytes) from a pinned staging buffer with a
non-blocking copy, and become float channels_last on the GPU; responses come back through a pinned buffer.
A plain ``copy_`` from a numpy array would convert to float on the CPU, allocate temporaries and send 4x the
bytes from pageable memory. On CPU it is the one conversion into a reused float buffer.

Only the simple eager path is here: no CUDA graphs, no ``torch.compile`` (tools/gpu_check.sh measures this path;
add either only where a GPU benchmark shows it helps).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

MAX_SHAPES = 16  # bounded: lost-target searches use a few extra crop sizes


@dataclass
class _Staging:
    """One crop shape's CUDA buffers; ``done`` marks when the last copy out of ``host`` finished reading it."""

    host: torch.Tensor  # pinned uint8 N x S x S x 3
    host_array: np.ndarray  # numpy view of ``host``
    device_u8: torch.Tensor  # N x S x S x 3 on the GPU
    done: torch.cuda.Event


class DeviceIO:
    """Moves crops to ``device`` and responses back, reusing its buffers; one per engine."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        self._inputs: dict[tuple[int, ...], torch.Tensor] = {}
        self._staging: dict[tuple[int, ...], _Staging] = {}
        self._outputs: dict[tuple[int, ...], torch.Tensor] = {}

    def _input(self, shape: tuple[int, ...]) -> torch.Tensor:
        buf = self._inputs.get(shape)
        if buf is None:
            _bounded(self._inputs)
            n, h, w, _ = shape
            buf = torch.empty((n, 3, h, w), dtype=torch.float32, device=self.device).to(memory_format=torch.channels_last)
            self._inputs[shape] = buf
        return buf

    def _stage(self, shape: tuple[int, ...]) -> _Staging:
        stage = self._staging.get(shape)
        if stage is None:
            _bounded(self._staging)
            host = torch.empty(shape, dtype=torch.uint8, pin_memory=True)
            stage = _Staging(host, host.numpy(), torch.empty(shape, dtype=torch.uint8, device=self.device),
                             torch.cuda.Event())
            self._staging[shape] = stage
        return stage

    def upload(self, crops: np.ndarray) -> torch.Tensor:
        """N x S x S x 3 uint8 crops as a float N x 3 x S x S channels_last tensor on the device.

        The tensor is reused by the next call of the same shape (stream order keeps GPU readers safe)."""
        buf = self._input(crops.shape)
        if not self.cuda:
            buf.copy_(torch.from_numpy(crops).permute(0, 3, 1, 2))
            return buf
        stage = self._stage(crops.shape)
        stage.done.synchronize()  # the previous upload has finished reading the pinned buffer
        np.copyto(stage.host_array, crops)
        stage.device_u8.copy_(stage.host, non_blocking=True)
        stage.done.record(torch.cuda.current_stream(self.device))
        buf.copy_(stage.device_u8.permute(0, 3, 1, 2))  # NHWC uint8 is NCHW channels_last: one elementwise pass
        return buf

    def download(self, responses: torch.Tensor) -> np.ndarray:
        """A float32 numpy array of ``responses``, owned by the caller (no later call overwrites it)."""
        if not self.cuda:
            return responses.float().numpy()
        shape = tuple(responses.shape)
        host = self._outputs.get(shape)
        if host is None:
            _bounded(self._outputs)
            host = self._outputs[shape] = torch.empty(shape, dtype=torch.float32, pin_memory=True)
        host.copy_(responses, non_blocking=True)
        torch.cuda.current_stream(self.device).synchronize()
        return host.numpy().copy()  # responses are small (M x 17 x 17); the copy keeps results independent


def _bounded(cache: dict) -> None:
    """Drop every buffer once more than MAX_SHAPES shapes were seen."""
    if len(cache) > MAX_SHAPES:
        cache.clear()
