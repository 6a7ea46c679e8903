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
def _row_extremes(row):
    """(max, min) of one row, noted while it is in cache: scale choice and pruning need only these."""
    hi = row[0]
    lo = row[0]
    for i in range(row.shape[0]):
        v = row[i]
        hi = v if v > hi else hi
        lo = v if v < lo else lo
    return hi, lo


@numba.njit(cache=True, fastmath=False, nogil=True)
def _upsample(src, idx, wts, tmp, dst, row_max, row_min):
    """Separable cubic resize of one (n, n) map into dst (m, m) using scratch tmp (n, m), noting
    each output row's max and min. The second pass runs whole rows (contiguous, vectorised)."""
    n = src.shape[0]
    m = dst.shape[0]
    for r in range(n):
        for c in range(m):
            acc = np.float32(0.0)
            for k in range(4):
                acc += wts[c, k] * src[r, idx[c, k]]
            tmp[r, c] = acc
    for r in range(m):
        w0, w1, w2, w3 = wts[r, 0], wts[r, 1], wts[r, 2], wts[r, 3]
        t0, t1, t2, t3 = tmp[idx[r, 0]], tmp[idx[r, 1]], tmp[idx[r, 2]], tmp[idx[r, 3]]
        d = dst[r]
        for c in range(m):
            d[c] = ((w0 * t0[c] + w1 * t1[c]) + w2 * t2[c]) + w3 * t3[c]
        row_max[r], row_min[r] = _row_extremes(d)


@numba.njit(cache=True, fastmath=False, nogil=True)
def locate_peak(responses, penalties, window, window_max, window_influence, idx, wts, tmp, up, row_max, row_min, mass):
    """Pick the best scale and the peak inside it.

    responses (S, n, n) float32 raw scores; penalties (S,) multiplicative scale penalties;
    window (m, m) Hann window and its maximum; idx/wts from :func:`cubic_weights`; tmp (n, m), up (S, m, m),
    row_max/row_min (S, m) scratch; mass (n,) = :func:`interpolation_mass`.
    Returns (scale index, peak row, peak column, raw upsampled score at the peak).
    """
    s_num, n = responses.shape[0], responses.shape[1]
    m = up.shape[1]
    best_s = 0
    best_v = -np.inf
    for s in range(s_num):
        _upsample(responses[s], idx, wts, tmp, up[s], row_max[s], row_min[s])
        peak = row_max[s].max() * penalties[s]
        if peak > best_v:
            best_v = peak
            best_s = s
    resp = up[best_s]
    lo = row_min[best_s].min()
    total = 0.0  # sum of the upsampled map, exactly, from the source: sum_ij src_ij mass_i mass_j
    for i in range(n):
        for j in range(n):
            total += responses[best_s, i, j] * mass[i] * mass[j]
    total -= lo * m * m
    inv = 1.0 / (total + 1e-16)
    # Only rows whose max could beat the raw peak's windowed score need scanning (exact bound).
    q_r = row_max[best_s].argmax()
    q_c = resp[q_r].argmax()
    q_v = resp[q_r, q_c]
    gap = window_influence * (window_max - window[q_r, q_c]) / ((1.0 - window_influence) * inv + 1e-30)
    threshold = q_v - gap - 1e-4 * (abs(q_v) + abs(lo) + gap) - 1e-6  # slack for rounding
    best_r = 0
    best_c = 0
    best = -np.inf
    for r in range(m):
        if row_max[best_s, r] < threshold:
            continue
        for c in range(m):
            v = (1.0 - window_influence) * (resp[r, c] - lo) * inv + window_influence * window[r, c]
            if v > best:
                best = v
                best_r = r
                best_c = c
    return best_s, best_r, best_c, resp[best_r, best_c]


def interpolation_mass(idx: np.ndarray, wts: np.ndarray, in_size: int) -> np.ndarray:
    """Total weight each source index receives over all outputs: sum(resize(src)) = mass @ src @ mass."""
    mass = np.zeros(in_size, np.float64)
    np.add.at(mass, idx.ravel(), wts.ravel().astype(np.float64))
    return mass


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
        self.window_max = float(self.window.max())
        self.idx, self.wts = cubic_weights(response_size, m)
        self.mass = interpolation_mass(self.idx, self.wts, response_size)
        self.tmp = np.empty((response_size, m), np.float32)
        self.up = np.empty((scale_num, m, m), np.float32)
        self.row_max = np.empty((scale_num, m), np.float32)
        self.row_min = np.empty((scale_num, m), np.float32)
        self.penalties = np.full(scale_num, scale_penalty, np.float32)
        self.penalties[scale_num // 2] = 1.0
        self.window_influence = float(window_influence)
        self.upscale_size = m

    def __call__(self, responses: np.ndarray) -> tuple[int, int, int, float]:
        s, r, c, v = locate_peak(responses, self.penalties, self.window, self.window_max, self.window_influence,
                                 self.idx, self.wts, self.tmp, self.up, self.row_max, self.row_min, self.mass)
        return int(s), int(r), int(c), float(v)
