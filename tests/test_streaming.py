"""track(): one TrackResult per frame from any frame source, lazily, with errors raised at the call."""
from dataclasses import astuple

import cv2
import numpy as np
import pytest

from tracker import BoxError, SiamTracker, TrackResult, VideoError, track
from tracker.synthetic import demo_clip

N_FRAMES = 8


@pytest.fixture(scope="module")
def clip():
    return demo_clip(n_frames=N_FRAMES)


@pytest.fixture(scope="module")
def expected(weights, clip):
    """What a hand-written SiamTracker loop gives on the clip's frames."""
    tracker = SiamTracker(weights, device="cpu")
    frames = list(clip)
    tracker.init(frames[0], clip.truth(0))
    return [TrackResult(tracker.box, 1.0, False)] + [tracker.update(f) for f in frames[1:]]


@pytest.fixture(scope="module")
def video(tmp_path_factory, clip):
    """The clip as a lossless AVI, and the frames as OpenCV decodes them."""
    path = tmp_path_factory.mktemp("v") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 25, (clip.width, clip.height))
    for frame in clip:
        writer.write(frame)
    writer.release()
    capture = cv2.VideoCapture(str(path))
    decoded = [capture.read()[1] for _ in range(N_FRAMES)]
    assert all(np.array_equal(a, b) for a, b in zip(decoded, clip))
    return path


def results(source, clip, weights):
    return [astuple(r) for r in track(source, clip.truth(0), weights=weights, device="cpu")]


@pytest.mark.parametrize("kind", ["list", "generator", "capture", "path"])
def test_every_source_gives_the_same_results_as_a_tracker_loop(kind, clip, video, expected, weights):
    sources = {"list": lambda: list(clip), "generator": lambda: (f for f in clip),
               "capture": lambda: cv2.VideoCapture(str(video)), "path": lambda: video}
    got = results(sources[kind](), clip, weights)
    assert got == [astuple(r) for r in expected]
    assert got[0] == (clip.truth(0), 1.0, False) and len(got) == N_FRAMES


def test_frames_are_pulled_one_at_a_time(clip, weights):
    pulled = []

    def frames():
        for i, frame in enumerate(clip):
            pulled.append(i)
            yield frame

    stream = track(frames(), clip.truth(0), weights=weights, device="cpu")
    assert pulled == []  # nothing read before the first result is asked for
    for _, result in zip(range(3), stream):
        assert isinstance(result, TrackResult)
    assert pulled == [0, 1, 2]


def test_empty_source_yields_nothing(weights):
    assert list(track([], (0, 0, 10, 10), weights=weights, device="cpu")) == []


def test_errors_surface_at_the_call(tmp_path, weights):
    with pytest.raises(VideoError, match="input .*missing.mp4 does not exist"):
        track(tmp_path / "missing.mp4", (0, 0, 10, 10), weights=weights)
    with pytest.raises(VideoError, match="capture passed in is not open"):
        track(cv2.VideoCapture(str(tmp_path / "missing.mp4")), (0, 0, 10, 10), weights=weights)
    with pytest.raises(VideoError, match="input must be a path, a webcam index or an iterable of frames; got object"):
        track(object(), (0, 0, 10, 10), weights=weights)
    with pytest.raises(BoxError, match="box must have 4 values"):
        track([], (0, 0, 10), weights=weights)
    with pytest.raises(ValueError, match="unknown TrackerConfig option"):
        track([], (0, 0, 10, 10), weights=weights, scales=3)


def test_a_folder_of_images_is_a_source(tmp_path, clip, expected, weights):
    for i, frame in enumerate(clip):
        cv2.imwrite(str(tmp_path / f"img{i}.png"), frame)
    got = [astuple(r) for r in track(tmp_path, clip.truth(0), weights=weights, device="cpu")]
    assert got == [astuple(r) for r in expected]
