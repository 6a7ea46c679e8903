"""How strongly a score map's best rival competes with its peak: the doubt's input, for every family (Numba)."""
from __future__ import annotations

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
