"""Response map -> (scale, peak): upsampling, scale penalty, Hann window, argmax.

The Numba kernels do the work without allocating per frame; ``locate_peak_reference`` is the
straightforward NumPy/OpenCV version (as in siamfc-pytorch) the tests compare them against.
"""
from __future__ import annotations

import cv2
import numba
import numpy as np

CUBIC_A = -0.75  # OpenCV's INTER_CUBIC kernel parameter


def hann_window(size: int) -> np.ndarray:
    """2-D Hann window normalised to sum 1, so it mixes with a normalised response."""
    w = np.outer(np.hanning(size), np.hanning(size)).astype(np.float32)
    return w / w.sum()


def cubic_weights(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Source indices (out, 4) and weights (out, 4) of OpenCV's INTER_CUBIC resize along one axis."""
    scale = in_size / out_size
    idx = np.empty((out_size, 4), np.int64)
    wts = np.empty((out_size, 4), np.float32)
    for d in range(out_size):
        f = (d + 0.5) * scale - 0.5
        s = int(np.floor(f))
        t = f - s
        a = CUBIC_A
        c0 = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a
        c1 = ((a + 2) * t - (a + 3)) * t * t + 1
        c2 = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1
        wts[d] = (c0, c1, c2, 1 - c0 - c1 - c2)
        idx[d] = np.clip(np.arange(s - 1, s + 3), 0, in_size - 1)
    return idx, wts


@numba.njit(cache=True, fastmath=False, nogil=True)
def _upsample(src, idx, wts, tmp, dst):
    """Separable cubic resize of one (n, n) map into dst (m, m) using scratch tmp (n, m)."""
    n = src.shape[0]
    m = dst.shape[0]
    for r in range(n):
        for c in range(m):
            acc = np.float32(0.0)
            for k in range(4):
                acc += wts[c, k] * src[r, idx[c, k]]
            tmp[r, c] = acc
    for r in range(m):
        for c in range(m):
            acc = np.float32(0.0)
            for k in range(4):
                acc += wts[r, k] * tmp[idx[r, k], c]
            dst[r, c] = acc


@numba.njit(cache=True, fastmath=False, nogil=True)
def locate_peak(responses, penalties, window, window_influence, idx, wts, tmp, up):
    """Pick the best scale and the peak inside it.

    responses (S, n, n) float32 raw scores; penalties (S,) multiplicative scale penalties;
    window (m, m) Hann window; idx/wts from :func:`cubic_weights`; tmp (n, m), up (S, m, m) scratch.
    Returns (scale index, peak row, peak column, raw upsampled score at the peak).
    """
    s_num = responses.shape[0]
    m = up.shape[1]
    best_s = 0
    best_v = -np.inf
    for s in range(s_num):
        _upsample(responses[s], idx, wts, tmp, up[s])
        peak = -np.inf
        for r in range(m):
            for c in range(m):
                if up[s, r, c] > peak:
                    peak = up[s, r, c]
        peak *= penalties[s]
        if peak > best_v:
            best_v = peak
            best_s = s
    resp = up[best_s]
    lo = np.inf
    total = 0.0
    for r in range(m):
        for c in range(m):
            v = resp[r, c]
            if v < lo:
                lo = v
            total += v
    total -= lo * m * m
    inv = 1.0 / (total + 1e-16)
    best_r = 0
    best_c = 0
    best = -np.inf
    for r in range(m):
        for c in range(m):
            v = (1.0 - window_influence) * (resp[r, c] - lo) * inv + window_influence * window[r, c]
            if v > best:
                best = v
                best_r = r
                best_c = c
    return best_s, best_r, best_c, resp[best_r, best_c]


def locate_peak_reference(responses: np.ndarray, penalties: np.ndarray, window: np.ndarray,
                          window_influence: float) -> tuple[int, int, int, float]:
    """siamfc-pytorch's post-processing written plainly with cv2.resize; the tests' ground truth."""
    m = window.shape[0]
    up = np.stack([cv2.resize(r, (m, m), interpolation=cv2.INTER_CUBIC) for r in responses])
    scored = up * penalties[:, None, None]
    s = int(np.argmax(scored.reshape(len(up), -1).max(axis=1)))
    resp = up[s] - up[s].min()
    resp = resp / (resp.sum() + 1e-16)
    resp = (1 - window_influence) * resp + window_influence * window
    r, c = np.unravel_index(int(np.argmax(resp)), resp.shape)
    return s, int(r), int(c), float(up[s, r, c])


class PeakFinder:
    """Holds the window, interpolation tables and scratch buffers so per-frame work allocates nothing."""

    def __init__(self, response_size: int, response_up: int, scale_num: int, scale_penalty: float,
                 window_influence: float) -> None:
        m = response_size * response_up
        self.window = hann_window(m)
        self.idx, self.wts = cubic_weights(response_size, m)
        self.tmp = np.empty((response_size, m), np.float32)
        self.up = np.empty((scale_num, m, m), np.float32)
        self.penalties = np.full(scale_num, scale_penalty, np.float32)
        self.penalties[scale_num // 2] = 1.0
        self.window_influence = float(window_influence)
        self.upscale_size = m

    def __call__(self, responses: np.ndarray) -> tuple[int, int, int, float]:
        s, r, c, v = locate_peak(responses, self.penalties, self.window, self.window_influence,
                                 self.idx, self.wts, self.tmp, self.up)
        return int(s), int(r), int(c), float(v)
