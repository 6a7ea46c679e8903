"""Comparison heads: score every window of a search embedding against an exemplar embedding.

All heads share one contract: ``head(z, x)`` with ``z`` of shape (Nz, C, h, w) and ``x`` of shape
(Nx, C, H, W), where Nx is a multiple k of Nz and search ``i`` is compared with exemplar ``i // k``
(k scales per target). The result is (Nx, 1, H-h+1, W-w+1): larger means more similar.
Each head multiplies by a fixed ``out_scale`` and adds a learnable scalar ``bias`` (the "adjust"
layer of SiamFC) so every head can be trained with the same logistic loss.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn


def correlate(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Cross-correlate each search map with its exemplar: one batched matmul + one fixed conv.

    The matmul scores every exemplar cell against every search cell; a constant one-hot
    convolution then sums the h*w shifted diagonals. This is 2-5x faster on CPU than a grouped
    convolution and exports to ONNX with a dynamic batch (a conv's group count cannot be dynamic).
    """
    nz, c, h, w = z.shape
    nx, _, hx, wx = x.shape
    if nx % nz:
        raise ValueError(f"search batch {nx} is not a multiple of exemplar batch {nz}")
    zm = z.reshape(nz, 1, c, h * w).transpose(2, 3)
    xm = x.reshape(nz, nx // nz, c, hx * wx)
    cells = torch.matmul(zm, xm).reshape(nx, h * w, hx, wx)
    return F.conv2d(cells, shift_kernel(int(h), int(w), z.dtype, z.device))


@functools.lru_cache(maxsize=8)
def shift_kernel(h: int, w: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(1, h*w, h, w) one-hot kernel: channel i*w+j picks offset (i, j).

    Built outside inference mode so a kernel first made while tracking still works in training.
    """
    with torch.inference_mode(False):
        return torch.eye(h * w, dtype=dtype, device=device).reshape(h * w, 1, h, w).transpose(0, 1).contiguous()


def window_sum(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Sum over channels and every h x w window of ``x`` (a box filter as a convolution)."""
    ones = torch.ones(1, 1, int(h), int(w), dtype=x.dtype, device=x.device)  # int(): a constant kernel in exports
    return F.conv2d(x.sum(dim=1, keepdim=True), ones)


def _expand(z: torch.Tensor, nx: int) -> torch.Tensor:
    k = nx // z.shape[0]
    return z.repeat_interleave(k, dim=0) if k > 1 else z


class Head(nn.Module):
    default_scale = 1.0

    def __init__(self, out_scale: float | None = None) -> None:
        super().__init__()
        self.out_scale = float(self.default_scale if out_scale is None else out_scale)
        self.bias = nn.Parameter(torch.zeros(1))

    def similarity(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if z.shape[1] != x.shape[1]:
            raise ValueError(f"exemplar has {z.shape[1]} channels but search has {x.shape[1]}")
        return self.similarity(z, x) * self.out_scale + self.bias


class XCorr(Head):
    """SiamFC cross-correlation (output scale 1e-3 as in siamfc-pytorch)."""

    default_scale = 1e-3

    def similarity(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return correlate(z, x)


class Cosine(Head):
    """Normalised cross-correlation: cosine of the angle between exemplar and window, in [-1, 1]."""

    default_scale = 10.0
    eps = 1e-8

    def similarity(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        h, w = z.shape[2:]
        z_norm = z.flatten(1).norm(dim=1)
        z_norm = _expand(z_norm, x.shape[0]).view(-1, 1, 1, 1)
        x_norm = window_sum(x * x, h, w).clamp_min(0).sqrt()
        return correlate(z, x) / (z_norm * x_norm + self.eps)


class Euclidean(Head):
    """Negative squared L2 distance, expanded as |z|^2 - 2 z.x + |x|^2 so it is three convolutions."""

    default_scale = 1e-3

    def similarity(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        h, w = z.shape[2:]
        z_sq = _expand(z.flatten(1).pow(2).sum(dim=1), x.shape[0]).view(-1, 1, 1, 1)
        dist = z_sq - 2 * correlate(z, x) + window_sum(x * x, h, w)
        return -dist.clamp_min(0)


class Manhattan(Head):
    """Negative L1 distance; accumulated over the exemplar's h*w offsets (no unfold copy)."""

    default_scale = 1e-2

    def similarity(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        h, w = z.shape[2:]
        zz = _expand(z, x.shape[0])
        ho, wo = x.shape[2] - h + 1, x.shape[3] - w + 1
        out = x.new_zeros(x.shape[0], 1, ho, wo)
        for i in range(h):
            for j in range(w):
                diff = x[:, :, i:i + ho, j:j + wo] - zz[:, :, i:i + 1, j:j + 1]
                out = out + diff.abs().sum(dim=1, keepdim=True)
        return -out


HEADS = {"xcorr": XCorr, "cosine": Cosine, "euclidean": Euclidean, "manhattan": Manhattan}


def build_head(name: str, out_scale: float | None = None) -> Head:
    if name not in HEADS:
        raise ValueError(f"unknown head {name!r}; choose one of: {', '.join(sorted(HEADS))}")
    return HEADS[name](out_scale)
