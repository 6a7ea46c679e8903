"""Box-regression post-processing: the Numba kernel equals NanoTrack's NumPy maths; a hand-made case."""
import numpy as np
import pytest

from tracker.postprocess.box import cosine_window, grid_origin, locate_box, locate_box_reference


@pytest.mark.parametrize("n", [15, 16, 24])
def test_kernel_equals_the_reference_on_random_maps(n):
    rng = np.random.default_rng(n)
    window = cosine_window(n)
    for trial in range(50):
        cls = rng.normal(0, 2, (2, n, n)).astype(np.float32)
        loc = np.exp(rng.normal(3, 0.7, (4, n, n))).astype(np.float32)
        width, height = rng.uniform(10, 150, 2)
        k, influence = rng.uniform(0, 0.3), rng.uniform(0, 0.8)
        origin = -(n // 2) * 16
        got = locate_box(cls, loc, window, 16, origin, width, height, k, influence)
        want = locate_box_reference(cls, loc, window, 16, origin, width, height, k, influence)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_a_hand_made_map():
    """3x3 grid, stride 16: points at -16, 0, 16. Only the point right of centre (row 1, col 2) is
    confident and its box (l=10, t=4, r=20, b=8) equals the current size 30 x 12, so no penalty."""
    cls = np.zeros((2, 3, 3), np.float32)
    cls[1, 1, 2] = 4.0
    loc = np.full((4, 3, 3), 5.0, np.float32)
    loc[:, 1, 2] = (10, 4, 20, 8)
    score, penalty, cx, cy, w, h = locate_box(cls, loc, np.ones((3, 3)), 16, -16.0, 30.0, 12.0, 0.2, 0.0)
    assert score == pytest.approx(1 / (1 + np.exp(-4.0)))
    assert penalty == pytest.approx(1.0)
    assert (cx, cy, w, h) == pytest.approx((16 + (20 - 10) / 2, 0 + (8 - 4) / 2, 30, 12))


def test_window_and_size_penalty_move_the_choice():
    cls = np.zeros((2, 3, 3), np.float32)
    cls[1, 0, 0] = 1.0                    # a slightly more confident corner point ...
    loc = np.full((4, 3, 3), 10.0, np.float32)
    window = cosine_window(3)            # ... loses to the centre under a strong window
    assert locate_box(cls, loc, window, 16, -16.0, 20.0, 20.0, 0.0, 0.0)[2:4] == (-16.0, -16.0)
    assert locate_box(cls, loc, window, 16, -16.0, 20.0, 20.0, 0.0, 0.5)[2:4] == (0.0, 0.0)
    loc[:, 0, 0] = 40.0                  # 4x the size: the change penalty sends the choice elsewhere
    assert locate_box(cls, loc, np.ones((3, 3)), 16, -16.0, 20.0, 20.0, 1.0, 0.0)[2:4] != (-16.0, -16.0)


def test_grid_origin_keeps_points_on_the_image_when_the_crop_changes():
    # NanoTrack's convention at the training crop: v3 (n = 15 at 255) and v1/v2 (n = 16)
    assert grid_origin(15, 255, 255, 16) == -112 and grid_origin(16, 255, 255, 16) == -128
    # v3's grid is symmetric at every size: -(n - 1) / 2 * stride
    assert [grid_origin(n, 255 + 16 * (n - 15), 255, 16) for n in (13, 14, 16, 17)] == [-96, -104, -120, -128]
    # v1/v2's stays half a stride off centre: point 0 is always 1 px left of the crop's first pixel
    for n, crop in ((14, 223), (15, 239), (17, 271), (20, 319)):
        assert grid_origin(n, crop, 255, 16) + (crop - 1) / 2 == -1


def test_target_probability_is_the_softmax_of_the_target_channel():
    from tracker.postprocess.box import target_probability
    cls = np.random.default_rng(0).normal(0, 30, (2, 15, 15)).astype(np.float32)  # gaps past +-60 too
    expected = np.exp(cls[1].astype(np.float64)) / (np.exp(cls[0].astype(np.float64)) + np.exp(cls[1].astype(np.float64)))
    np.testing.assert_allclose(target_probability(cls), expected, atol=1e-6)
