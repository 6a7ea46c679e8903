"""What a score map's shape says about the target, for every family (Numba, every frame): how strongly its best
rival competes with the peak (the doubt's input) and how spread out it is (the lost flag's input)."""
from __future__ import annotations

import math

import numba


@numba.njit(cache=True, nogil=True)
def rivalry(score_map, radius):
    """The highest cell farther than ``radius`` cells (Chebyshev) from the peak (its first maximum), over the
    peak, both measured above the map's floor: 0 = one clear peak, 1 = a rival as high as the peak (or a flat map).
    One pass for the peak and floor, one for the rival: it runs every frame."""
    rows, cols = score_map.shape
    floor = peak = score_map[0, 0]
    pr = pc = 0
    for i in range(rows):
        for j in range(cols):
            v = score_map[i, j]
            if v < floor:
                floor = v
            if v > peak:
                peak, pr, pc = v, i, j
    height = peak - floor
    if not height > 0:
        return 1.0
    rival = floor
    for i in range(rows):
        for j in range(cols):
            if (abs(i - pr) > radius or abs(j - pc) > radius) and score_map[i, j] > rival:
                rival = score_map[i, j]
    return min(max((rival - floor) / height, 0.0), 1.0)


@numba.njit(cache=True, nogil=True)
def spread(score_map):
    """Entropy of the map above its floor, as a distribution over its cells, over the entropy of a flat map:
    0 = all the mass on one cell, 1 = flat (or no height at all). A target in view concentrates the map; when
    it has gone or the tracker sits on background, the mass scatters. Normalised, so maps of any size compare."""
    rows, cols = score_map.shape
    cells = rows * cols
    if cells < 2:
        return 1.0
    floor = score_map[0, 0]
    for i in range(rows):
        for j in range(cols):
            floor = min(floor, score_map[i, j])
    total = 0.0
    for i in range(rows):
        for j in range(cols):
            total += score_map[i, j] - floor
    if not total > 0:
        return 1.0
    entropy = 0.0
    for i in range(rows):
        for j in range(cols):
            q = (score_map[i, j] - floor) / total
            if q > 0:
                entropy -= q * math.log(q)
    return min(max(entropy / math.log(cells), 0.0), 1.0)
