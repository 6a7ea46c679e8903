"""Numba post-processing against the NumPy/OpenCV reference (siamfc-pytorch's code path)."""
import cv2
import numpy as np
import pytest

from tracker.postprocess.siamfc import PeakFinder, cubic_weights, hann_window, interpolation_mass, locate_peak_reference


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


def test_interpolation_mass_gives_the_upsampled_sum():
    rng = np.random.default_rng(3)
    src = rng.standard_normal((17, 17)).astype(np.float32)
    idx, wts = cubic_weights(17, 272)
    mass = interpolation_mass(idx, wts, 17)
    up = cv2.resize(src, (272, 272), interpolation=cv2.INTER_CUBIC).astype(np.float64)
    assert mass @ src.astype(np.float64) @ mass == pytest.approx(up.sum(), rel=1e-5, abs=1e-3)
    assert mass.sum() == pytest.approx(272, abs=1e-3)  # each output's weights sum to 1


def _peaky_maps(rng, scales):
    """Response-like maps: a Gaussian peak, a weaker distractor and noise, as a trained net gives."""
    yy, xx = np.mgrid[:17, :17]
    out = []
    for _ in range(scales):
        (py, px), (dy, dx) = rng.uniform(2, 14, 2), rng.uniform(2, 14, 2)
        peak = rng.uniform(4, 12) * np.exp(-((yy - py) ** 2 + (xx - px) ** 2) / rng.uniform(2, 8))
        distractor = rng.uniform(2, 10) * np.exp(-((yy - dy) ** 2 + (xx - dx) ** 2) / rng.uniform(2, 8))
        out.append(peak + distractor - rng.uniform(2, 6) + rng.normal(0, 0.3, (17, 17)))
    return np.stack(out).astype(np.float32)


@pytest.mark.parametrize("scales", [1, 3])
def test_numba_matches_reference_on_peaky_maps_with_distractors(scales):
    rng = np.random.default_rng(10 + scales)
    finder = PeakFinder(17, 16, scales, 0.9745, 0.176)
    for _ in range(60):
        responses = _peaky_maps(rng, scales)
        got = finder(responses)
        want = locate_peak_reference(responses, finder.penalties, finder.window, 0.176)
        assert got[:3] == want[:3]
        assert got[3] == pytest.approx(want[3], rel=1e-4, abs=1e-4)


def test_window_can_prefer_a_lower_central_peak():
    """The row pruning must keep rows that only the Hann window makes win."""
    responses = np.zeros((1, 17, 17), np.float32)
    responses[0, 1, 1] = 10.0   # highest, in the corner where the window is ~0
    responses[0, 8, 9] = 9.0    # lower, next to the centre
    for influence in (0.0, 0.176, 0.6):
        finder = PeakFinder(17, 16, 1, 0.9745, influence)
        want = locate_peak_reference(responses, finder.penalties, finder.window, influence)
        assert finder(responses)[:3] == want[:3]
    assert finder(responses)[1] > 100  # with a strong window the central peak wins


def test_numba_matches_reference_on_real_responses(weights, shared_dir):
    from tracker import SiamTracker
    from tracker.datasets import load_dataset
    seq = load_dataset(shared_dir / "data" / "sequences", names=["vot_car1"])[0]
    tracker = SiamTracker(weights, device="cpu")
    multi = tracker._multi
    finder = multi.step.finder
    checked = 0
    for i, frame in enumerate(seq.frames()):
        if i == 0:
            tracker.init(frame, seq.init_box)
            continue
        target = multi._targets[tracker._id]
        buf = multi._search_buffer(multi.config.scale_num, multi.config.instance_size)
        multi.step.search_into(target, frame, buf)
        responses = multi.engine.respond(multi._kernels_for((tracker._id,)), buf)[0][:, 0]
        want = locate_peak_reference(responses, finder.penalties, finder.window, finder.window_influence)
        got = finder(responses)
        assert got[:3] == want[:3]
        assert got[3] == pytest.approx(want[3], rel=1e-4, abs=1e-4)
        tracker.update(frame)
        checked += 1
        if checked == 25:
            break


def test_numba_caches_outside_the_package():
    """Cache files beside installed sources outlive `pip uninstall` and shadowed the README's editable install."""
    from pathlib import Path

    import tracker
    from numba.core import config
    package = Path(tracker.__file__).resolve().parent
    assert config.CACHE_DIR and package not in Path(config.CACHE_DIR).resolve().parents
