"""OpenCVTracker behaves like cv2's trackers; GOT10kTracker runs inside the got10k toolkit."""
from dataclasses import replace

import cv2
import numpy as np
import pytest
from PIL import Image

from tracker import OpenCVTracker, SiamTracker
from tracker.adapters import GOT10kTracker
from tracker.got10k_tracker import pil_to_bgr
from tracker.synthetic import demo_clip

N_FRAMES = 6


@pytest.fixture(scope="module")
def clip():
    return demo_clip(n_frames=N_FRAMES)


@pytest.fixture(scope="module")
def frames(clip):
    return list(clip)


@pytest.fixture(scope="module")
def siam_boxes(weights, frames, clip):
    tracker = SiamTracker(weights, device="cpu")
    tracker.init(frames[0], clip.truth(0))
    return [tracker.update(f).box for f in frames[1:]]


def run_opencv_style(tracker, frames, bbox):
    """Code written for cv2.TrackerCSRT: init, then (ok, box) per frame."""
    tracker.init(frames[0], bbox)
    return [tracker.update(frame) for frame in frames[1:]]


def test_integer_boxes_in_give_integer_boxes_out_like_csrt(weights, frames, clip, siam_boxes):
    bbox = tuple(int(v) for v in clip.truth(0))
    csrt = run_opencv_style(cv2.TrackerCSRT.create(), frames, bbox)
    ours = run_opencv_style(OpenCVTracker.create(weights, device="cpu"), frames, bbox)
    for (ok_cv, box_cv), (ok, box) in zip(csrt, ours):
        assert type(ok) is type(ok_cv) is bool and ok
        assert type(box) is type(box_cv) is tuple and len(box) == 4
        assert all(type(v) is int for v in box) and all(type(v) is int for v in box_cv)
        cv2.rectangle(frames[0].copy(), box, (0, 255, 0), 2)  # drawable as cv2 boxes are
    assert [box for _, box in ours] == [tuple(int(round(v)) for v in b) for b in siam_boxes]


def test_float_boxes_in_give_float_boxes_out(weights, frames, clip, siam_boxes):
    ours = run_opencv_style(OpenCVTracker(weights, device="cpu"), frames, np.array(clip.truth(0)))
    assert [box for _, box in ours] == [tuple(b) for b in siam_boxes]
    assert all(type(v) is float for _, box in ours for v in box)
    numpy_ints = run_opencv_style(OpenCVTracker(weights, device="cpu"), frames[:2], np.array([100, 80, 40, 30]))
    assert all(type(v) is int for v in numpy_ints[0][1])


def test_ok_is_false_while_the_target_is_lost(weights, frames, clip, monkeypatch):
    update = SiamTracker.update
    flags = iter([False, True, True, False, True])

    def flagged(self, frame):  # the real result, with the lost flag of a target that comes and goes
        return replace(update(self, frame), lost=next(flags))

    monkeypatch.setattr(SiamTracker, "update", flagged)
    tracker = OpenCVTracker(weights, device="cpu")
    results = run_opencv_style(tracker, frames, tuple(int(v) for v in clip.truth(0)))
    assert [ok for ok, _ in results] == [True, False, False, True, False]


def test_got10k_tracker_gives_siamtracker_boxes_through_the_toolkit(weights, frames, clip, siam_boxes, tmp_path):
    files = []
    for i, frame in enumerate(frames):
        files.append(str(tmp_path / f"{i:04d}.png"))
        cv2.imwrite(files[-1], frame)
    tracker = GOT10kTracker(weights=weights, device="cpu")
    boxes, times = tracker.track(files, np.array(clip.truth(0)))  # got10k opens them as PIL RGB images
    assert boxes.shape == (N_FRAMES, 4) and times.shape == (N_FRAMES,)
    np.testing.assert_array_equal(boxes[0], clip.truth(0))
    np.testing.assert_array_equal(boxes[1:], np.array(siam_boxes))
    assert tracker.name == "siamtrack" and tracker.is_deterministic


def test_pil_images_of_any_mode_become_bgr():
    rgb = np.array([[[10, 20, 30], [40, 50, 60]]], np.uint8)
    np.testing.assert_array_equal(pil_to_bgr(Image.fromarray(rgb)), rgb[..., ::-1])
    rgba = Image.fromarray(np.dstack([rgb, np.full((1, 2), 255, np.uint8)]), "RGBA")
    np.testing.assert_array_equal(pil_to_bgr(rgba), rgb[..., ::-1])
    gray = pil_to_bgr(Image.fromarray(np.array([[7, 9]], np.uint8)))
    assert gray.shape == (1, 2, 3) and gray[0, 1].tolist() == [9, 9, 9]
