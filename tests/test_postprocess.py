"""Numba post-processing against the NumPy/OpenCV reference (siamfc-pytorch's code path)."""
import cv2
import numpy as np
import pytest

from tracker.postprocess import PeakFinder, cubic_weights, hann_window, locate_peak_reference


def test_cubic_tables_reproduce_cv2_resize():
    rng = np.random.default_rng(1)
    src = rng.standard_normal((17, 17)).astype(np.float32)
    idx, wts = cubic_weights(17, 272)
    rows = (wts[:, None, :, None] * wts[None, :, None, :] * src[idx[:, None, :, None], idx[None, :, None, :]]).sum((2, 3))
    np.testing.assert_allclose(rows, cv2.resize(src, (272, 272), interpolation=cv2.INTER_CUBIC), atol=2e-5)


def test_hann_window_sums_to_one_and_peaks_in_centre():
    w = hann_window(9)
    assert w.sum() == pytest.approx(1.0, abs=1e-6)
    assert np.unravel_index(w.argmax(), w.shape) == (4, 4)
    assert w[0].max() == 0.0


@pytest.mark.parametrize("scales", [1, 3, 5])
def test_numba_matches_reference_on_random_maps(scales):
    rng = np.random.default_rng(scales)
    finder = PeakFinder(17, 16, scales, 0.9745, 0.176)
    for _ in range(30):
        responses = (rng.standard_normal((scales, 17, 17)) * rng.uniform(0.1, 10)).astype(np.float32)
        got = finder(responses)
        want = locate_peak_reference(responses, finder.penalties, finder.window, 0.176)
        assert got[:3] == want[:3]
        assert got[3] == pytest.approx(want[3], rel=1e-4, abs=1e-4)


def test_scale_penalty_prefers_centre_scale_on_ties():
    finder = PeakFinder(17, 16, 3, 0.9745, 0.176)
    responses = np.zeros((3, 17, 17), np.float32)
    responses[:, 8, 8] = 5.0
    s, r, c, raw = finder(responses)
    assert (s, r, c) == (1, 135, 135)  # centre scale, centre of the 272 map ((272-1)/2 rounds to 135/136)
    assert raw == pytest.approx(cv2.resize(responses[1], (272, 272), interpolation=cv2.INTER_CUBIC)[135, 135], rel=1e-5)


def test_off_centre_peak_is_found_despite_window():
    finder = PeakFinder(17, 16, 1, 0.9745, 0.176)
    responses = np.zeros((1, 17, 17), np.float32)
    responses[0, 3, 12] = 10.0
    _, r, c, _ = finder(responses)
    assert abs(r - (3 * 16 + 7.5)) <= 1 and abs(c - (12 * 16 + 7.5)) <= 1
