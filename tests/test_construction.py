"""Building trackers a pipeline can lean on: exported graphs cached in memory and on disk ($SIAMTRACK_CACHE),
sessions shared, corrupt cache files rebuilt, trackers built and run from several threads at once, trackers
pickled (also into a spawned worker process) and carrying on with the same boxes.

Exports are counted through torch.onnx.export, never timed: whether the cache works is not a matter of speed.
"""
from __future__ import annotations

import multiprocessing as mp
import pickle
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from tracker import SiamTracker, graph_cache
from tracker.synthetic import demo_clip

MODELS = ("siamtrack_small", "siamtrack_fast", "siamtrack_box")


@pytest.fixture()
def exports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A cache folder of this test's own, empty in-process caches, and a count of ONNX exports."""
    monkeypatch.setenv("SIAMTRACK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(graph_cache, "_graphs", {})
    monkeypatch.setattr(graph_cache, "_sessions", {})
    calls: list[int] = []
    real = torch.onnx.export

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", counted)
    return calls


def forget_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a fresh process knows: nothing but the disk cache."""
    monkeypatch.setattr(graph_cache, "_graphs", {})
    monkeypatch.setattr(graph_cache, "_sessions", {})


@pytest.fixture(scope="module")
def clip():
    return demo_clip(n_frames=8)


def run(tracker: SiamTracker, clip, frames: range | None = None) -> list[tuple[float, ...]]:
    frames = frames or range(len(clip))
    boxes = []
    for t in frames:
        frame, _ = clip.render(t)
        if t == 0:
            tracker.init(frame, clip.boxes[0])
            continue
        boxes.append(tracker.update(frame).box)
    return boxes


def test_second_construction_exports_nothing_and_shares_sessions(exports, tmp_path, monkeypatch):
    first = SiamTracker("siamtrack_fast", device="cpu", threads=1)
    assert exports, "the first tracker of a model exports its graphs"
    made = len(exports)
    second = SiamTracker("siamtrack_fast", device="cpu", threads=1)
    assert len(exports) == made
    assert second._multi.engine.backbone is first._multi.engine.backbone
    files = sorted((tmp_path / "cache" / "onnx").glob("*.onnx"))
    assert files and graph_cache.cache_dir() == tmp_path / "cache" / "onnx"
    forget_in_process(monkeypatch)
    SiamTracker("siamtrack_fast", device="cpu", threads=1)
    assert len(exports) == made, "a fresh process finds the graphs on disk"


def test_unwritable_cache_folder_is_a_warning_not_a_failure(exports, monkeypatch, clip):
    monkeypatch.setenv("SIAMTRACK_CACHE", "/proc/nope")
    with pytest.warns(UserWarning, match="cannot write the ONNX graph cache /proc/nope/onnx"):
        tracker = SiamTracker("siamtrack_fast", device="cpu", threads=1)
    assert len(run(tracker, clip)) == len(clip) - 1


def test_cache_folder_defaults_to_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("SIAMTRACK_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert graph_cache.cache_dir() == tmp_path / "siamtrack" / "onnx"


@pytest.mark.parametrize("damage", ["flip", "truncate", "not-onnx"])
def test_corrupt_cache_file_is_rebuilt(exports, tmp_path, monkeypatch, clip, damage):
    want = run(SiamTracker("siamtrack_fast", device="cpu", threads=1), clip)
    made = len(exports)
    for path in (tmp_path / "cache" / "onnx").glob("*.onnx"):
        data = path.read_bytes()
        if damage == "flip":
            data = data[:-100] + bytes([data[-100] ^ 0xFF]) + data[-99:]
        elif damage == "truncate":
            data = data[:len(data) // 2]
        else:  # intact checksums, but no graph inside: only loading it can tell
            data = graph_cache._pack(tuple(b"not a graph" for _ in graph_cache._unpack(data)))
        path.write_bytes(data)
    forget_in_process(monkeypatch)
    assert run(SiamTracker("siamtrack_fast", device="cpu", threads=1), clip) == want
    assert len(exports) == 2 * made, "every damaged graph was exported again"
    assert all(graph_cache._read(p) for p in (tmp_path / "cache" / "onnx").glob("*.onnx")), "and rewritten"


def test_trackers_built_and_run_in_four_threads_match_serial_runs(exports, clip):
    models = (*MODELS, "siamtrack_small")
    results: dict[int, list] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(len(models))

    def work(i: int, model: str) -> None:
        try:
            start.wait()
            results[i] = run(SiamTracker(model, device="cpu", threads=1), clip)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i, m)) for i, m in enumerate(models)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for i, model in enumerate(models):
        assert results[i] == run(SiamTracker(model, device="cpu", threads=1), clip), model


@pytest.mark.parametrize("model,backend", [("siamtrack_box", "onnxruntime"), ("siamtrack_small", "onnxruntime"),
                                           ("siamtrack_small", "torch")])
def test_pickled_tracker_carries_on_with_the_same_boxes(clip, model, backend):
    tracker = SiamTracker(model, device="cpu", backend=backend, threads=1)
    run(tracker, clip, range(4))
    copy = pickle.loads(pickle.dumps(tracker))
    assert copy.box == tracker.box
    rest = range(4, len(clip))
    assert run(copy, clip, rest) == run(tracker, clip, rest)


def _track_on(job: tuple[SiamTracker, list[np.ndarray]]) -> list[tuple[float, ...]]:
    tracker, frames = job
    return [tracker.update(frame).box for frame in frames]


def test_tracker_crosses_into_a_spawned_worker(clip):
    tracker = SiamTracker("siamtrack_box", device="cpu", threads=1)
    run(tracker, clip, range(3))
    frames = [clip.render(t)[0] for t in range(3, len(clip))]
    with mp.get_context("spawn").Pool(1) as pool:
        remote = pool.map(_track_on, [(tracker, frames)])[0]
    assert remote == _track_on((tracker, frames))
