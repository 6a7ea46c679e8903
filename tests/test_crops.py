"""Crop geometry: centre, scale and mean-colour padding."""
import numpy as np

from tracker.crops import crop, crop_into, mean_colour


def test_identity_crop_returns_the_window():
    frame = np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    # an 11x11 window whose centre pixel is (x=20, y=15), resampled at scale 1
    out = crop(frame, 20.0, 15.0, 11.0, 11, (0, 0, 0))
    np.testing.assert_array_equal(out, frame[10:21, 15:26])


def test_downscaled_crop_keeps_the_centre_and_pads_with_border_colour():
    frame = np.zeros((21, 21, 3), np.uint8)
    frame[10, 10] = 255
    out = crop(frame, 10.0, 10.0, 63.0, 21, (7, 8, 9))  # 3x zoom out: frame occupies the middle third
    assert tuple(out[0, 0]) == (7, 8, 9) and tuple(out[20, 20]) == (7, 8, 9)
    assert np.unravel_index(out[..., 0].argmax(), out.shape[:2]) == (10, 10)


def test_crop_into_writes_the_given_buffer():
    frame = np.full((30, 30, 3), 100, np.uint8)
    batch = np.zeros((2, 9, 9, 3), np.uint8)
    res = crop_into(frame, 15.0, 15.0, 9.0, batch[1], (0, 0, 0))
    assert res is batch[1] or np.shares_memory(res, batch)
    assert (batch[1] == 100).all() and (batch[0] == 0).all()


def test_mean_colour_is_bgr_order():
    frame = np.zeros((4, 4, 3), np.uint8)
    frame[..., 0] = 10
    frame[..., 2] = 30
    assert mean_colour(frame) == (10.0, 0.0, 30.0)


def test_crops_equal_opencv_warp_affine_to_one_grey_level():
    """The Numba kernel replaces cv2.warpAffine (INTER_LINEAR, constant border) without OpenCV's pool:
    the same values to within one level, inside the frame, across its edges and fully outside it."""
    import cv2
    rng = np.random.default_rng(3)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (90, 160, 3), dtype=np.uint8), (5, 5), 2)
    differing = total = 0
    for k in range(60):
        cx, cy = rng.uniform(-40, 200), rng.uniform(-40, 130)
        size, out_size = rng.uniform(8, 400), (31, 64, 127)[k % 3]
        border = tuple(rng.uniform(0, 255, 3))
        a = size / out_size
        m = np.array([[a, 0, cx - a * (out_size - 1) / 2], [0, a, cy - a * (out_size - 1) / 2]])
        want = cv2.warpAffine(frame, m, (out_size, out_size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=border).astype(int)
        got = crop(frame, cx, cy, size, out_size, border).astype(int)
        assert np.abs(got - want).max() <= 1, (cx, cy, size, out_size)
        differing += int((got != want).sum())
        total += got.size
    assert differing / total < 0.01


def test_crop_refuses_a_strided_buffer():
    import pytest
    frame = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(ValueError, match="C-contiguous"):
        crop_into(frame, 5.0, 5.0, 4.0, np.zeros((8, 16, 3), np.uint8)[:, ::2], (0, 0, 0))


def test_a_crop_wholly_outside_the_frame_is_all_border():
    frame = np.full((20, 30, 3), 200, np.uint8)
    for cx, cy in ((-50.0, 10.0), (90.0, 10.0), (15.0, -60.0), (15.0, 80.0), (-70.0, -70.0)):
        out = crop(frame, cx, cy, 12.0, 9, (7, 8, 9))
        assert (out == np.array([7, 8, 9], np.uint8)).all(), (cx, cy)


def test_border_converted_once_equals_the_colour_given_per_call_and_bad_shapes_are_refused():
    import pytest
    from tracker.crops import border_colour
    rng = np.random.default_rng(4)
    frame = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    colour = (12.4, 200.6, 255.7)
    once = border_colour(colour)
    assert once.dtype == np.uint8 and once.tolist() == [12, 201, 255]
    assert np.array_equal(crop(frame, 5.0, 30.0, 60.0, 31, colour), crop(frame, 5.0, 30.0, 60.0, 31, once))
    with pytest.raises(ValueError, match=r"3-channel \(H, W, 3\) frame, got shape \(40, 50\)"):
        crop(frame[..., 0], 5.0, 5.0, 4.0, 8, colour)
    with pytest.raises(ValueError, match=r"\(S, S, 3\) uint8 output buffer, got float32 \(8, 8, 3\)"):
        crop_into(frame, 5.0, 5.0, 4.0, np.zeros((8, 8, 3), np.float32), colour)
