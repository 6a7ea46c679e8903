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
