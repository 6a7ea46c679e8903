"""A tracker never changes a process-wide setting: OpenCV's and torch's thread counts stay as the caller
set them, whatever the backend, the entry point (SiamTracker, MultiTracker, track, OpenCVTracker) or
the tracker's own ``threads``."""
import cv2
import pytest
import torch

from tracker import MultiTracker, OpenCVTracker, SiamTracker, track
from tracker.synthetic import demo_clip


@pytest.fixture
def caller_settings():
    """Odd values no library picks by itself, restored after the test."""
    before = cv2.getNumThreads(), torch.get_num_threads()
    cv2.setNumThreads(3)
    torch.set_num_threads(3)
    yield 3, 3
    cv2.setNumThreads(before[0])
    torch.set_num_threads(before[1])


def _settings() -> tuple[int, int]:
    return cv2.getNumThreads(), torch.get_num_threads()


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
@pytest.mark.parametrize("threads", [None, 1, 2])
def test_trackers_leave_the_callers_thread_settings_alone(caller_settings, backend, threads):
    clip = demo_clip(n_frames=12)
    frames = [clip.render(i)[0] for i in range(4)]
    box = clip.render(0)[1]
    single = SiamTracker(device="cpu", backend=backend, threads=threads)
    assert _settings() == caller_settings
    single.init(frames[0], box)
    for frame in frames[1:]:
        single.update(frame)
    assert _settings() == caller_settings

    multi = MultiTracker(device="cpu", backend=backend, threads=threads)
    for _ in range(3):
        multi.add(frames[0], box)
    for frame in frames[1:]:
        multi.update(frame)
    assert _settings() == caller_settings

    results = list(track(frames, box, device="cpu", backend=backend, threads=threads))
    assert len(results) == 4 and _settings() == caller_settings

    adapter = OpenCVTracker.create(device="cpu", backend=backend, threads=threads)
    adapter.init(frames[0], tuple(int(v) for v in box))
    ok, _ = adapter.update(frames[1])
    assert ok and _settings() == caller_settings


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_the_trackers_own_thread_count_reaches_its_engine(backend):
    assert SiamTracker(device="cpu", backend=backend, threads=2)._multi.engine.threads == 2
    if backend == "onnxruntime":
        engine = SiamTracker(device="cpu", backend=backend, threads=1)._multi.engine
        assert engine.backbone.get_session_options().intra_op_num_threads == 1


def test_an_in_process_evaluation_gives_the_callers_settings_back(caller_settings):
    """The benchmark runs its trackers on one thread for fair timing, but only while it runs."""
    import functools

    import numpy as np

    from tracker.datasets import Sequence
    from tracker.evaluation.runner import evaluate
    clip = demo_clip(n_frames=12)
    frames = [clip.render(i)[0] for i in range(6)]
    boxes = np.array([clip.render(i)[1] for i in range(6)], dtype=float)

    class InMemory(Sequence):
        def frames(self):
            return iter(frames)

    seen = []

    class Probe(SiamTracker):
        def update(self, frame):
            seen.append(_settings())
            return super().update(frame)

    scores = evaluate(functools.partial(Probe, device="cpu", threads=1), [InMemory("clip", boxes)])
    assert set(seen) == {(1, 1)} and scores["clip"].precision == 1.0  # every centre within 20 px: it tracked
    assert _settings() == caller_settings
