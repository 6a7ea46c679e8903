"""Speed benchmark: what it runs, in which order, and the report it writes (no wall-clock asserts)."""
import json

import numpy as np
import pytest
import torch

from tracker.config import ModelConfig, TrackerConfig
from tracker.datasets import write_sequence
from tracker.evaluation.flops import model_flops
from tracker.evaluation.speed import STAGES, SpeedOptions, run_speed, time_tracking
from tracker.models import SiameseNet, save_checkpoint


class _Logged:
    """A fake tracker that records which frames it saw, in what order, into a shared log."""

    def __init__(self, name, log, fail_at=None):
        self.name, self.log, self.fail_at = name, log, fail_at

    def init(self, frame, box):
        self.log.append((self.name, "init", int(frame[0, 0, 0])))

    def update(self, frame):
        i = int(frame[0, 0, 0])
        if i == self.fail_at:
            raise RuntimeError("boom")
        self.log.append((self.name, "update", i))
        return (0.0, 0.0, 1.0, 1.0)


def test_trackers_are_interleaved_in_chunks_and_failures_are_isolated():
    frames = [np.full((4, 4, 3), i, np.uint8) for i in range(9)]  # frame i carries its index
    log = []
    factories = {"a": lambda: _Logged("a", log), "b": lambda: _Logged("b", log), "bad": lambda: _Logged("bad", log, 2)}
    out = time_tracking(factories, frames, (0, 0, 1, 1), passes=2, chunk=3)
    assert out["bad"].error == "RuntimeError: boom"
    assert len(out["a"].tracker_fps_passes) == 2 and out["a"].tracker_fps > 0 and out["a"].cpu_ms >= 0
    updates = [(n, i) for n, kind, i in log if kind == "update"]
    warmup, first_pass = updates[:7], updates[7:7 + 16]  # warm-up: one chunk (3 frames) each
    assert warmup == [(n, i) for n in ("a", "b") for i in (1, 2, 3)] + [("bad", 1)]
    # pass 1 starts with "b" (rotated order); chunk 1-3 of every tracker before chunk 4-6 of any
    assert first_pass[:6] == [("b", 1), ("b", 2), ("b", 3), ("a", 1), ("a", 2), ("a", 3)]
    assert [i for n, i in first_pass if n == "a"] == list(range(1, 9))
    assert all(n != "bad" for n, _ in updates[7:])  # dropped after failing in the warm-up
    assert not out["bad"].tracker_fps_passes


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A 10-frame generated sequence and an untrained 15 %-width checkpoint: (root, net)."""
    root = tmp_path_factory.mktemp("speed")
    rng = np.random.default_rng(0)
    background = np.kron(rng.integers(0, 255, (15, 20, 3), dtype=np.uint8), np.ones((8, 8, 1), np.uint8))
    patch = np.kron(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8), np.ones((5, 5, 1), np.uint8))
    frames, boxes = [], []
    for i in range(10):
        f = background.copy()
        f[30 + i:60 + i, 40 + 2 * i:80 + 2 * i] = patch
        frames.append(f)
        boxes.append((40 + 2 * i, 30 + i, 40, 30))
    write_sequence(root / "seqs" / "clip", frames, np.array(boxes, float))
    torch.manual_seed(0)
    net = SiameseNet(ModelConfig(width=0.15))
    save_checkpoint(net, root / "w.pth")
    return root, net


@pytest.fixture(scope="module")
def tiny_run(tiny_clip):
    root, net = tiny_clip
    opts = SpeedOptions(sequence=root / "seqs" / "clip", trackers=f"siamtrack:{root / 'w.pth'},csrt,kcf,nanotrack",
                        frames=8, passes=2, chunk=3, backends=("torch",), stage_repeats=2, memory_frames=20)
    return run_speed(opts, log=lambda m: None), net


def test_report_rows_stages_and_ratios(tiny_run):
    report, net = tiny_run
    names = [t.name for t in report.trackers]
    assert names == ["siamtrack:w [torch]", "csrt", "kcf", "nanotrack"]
    siam, nano = report.trackers[0], report.trackers[-1]
    assert set(siam.stages) == set(STAGES) and all(t.cpu_ms >= 0 and t.wall_ms > 0 for t in siam.stages.values())
    assert siam.gflop_per_frame == pytest.approx(model_flops(net, TrackerConfig()).per_frame / 1e9)
    assert siam.backbone_gflops > 0 and siam.tracker_fps > 0 and siam.end_to_end_fps > 0
    assert nano.error == "not run: model path not given (--nano-backbone/--nano-neckhead)"
    assert set(report.ratios) == {"siamtrack:w [torch]"}
    assert set(report.ratios["siamtrack:w [torch]"]) == {"csrt", "kcf"}
    assert report.machine["gpu"].startswith("not measured") and report.machine["threads"] == 1
    assert len(report.load_before) == 3 and report.matmul_peak.cpu_gflops > 0
    assert report.memory.frames == 20 and len(report.memory.rss_mb) == 20


def test_json_and_markdown(tiny_run):
    report, _ = tiny_run
    data = json.loads(report.to_json())
    assert {"machine", "options", "load_before", "load_after", "matmul_peak", "trackers", "ratios", "memory"} <= set(data)
    assert data["options"]["sequence"] == "clip (160x120)" and data["options"]["frames"] == 8
    md = report.to_markdown()
    header = next(line for line in md.splitlines() if line.startswith("| tracker"))
    assert header.count("|") - 1 == 7 + 2  # 7 columns + one per peer with ratios (csrt, kcf)
    rows = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| tracker")]
    assert [r.split("|")[1].strip() for r in rows] == ["siamtrack:w [torch]", "csrt", "kcf", "nanotrack"]
    assert "Memory: siamtrack:w [torch], 20 updates" in md and "load average" in md


def test_bench_speed_flag_writes_both_reports(tiny_clip, tmp_path, capsys):
    from tracker.cli import main
    root, _ = tiny_clip
    assert main(["bench", str(root / "seqs"), "--speed", "--trackers", f"siamtrack:{root / 'w.pth'},kcf",
                 "--out", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert "| siamtrack:w [onnxruntime] |" in table and "x kcf (fps / CPU)" in table
    data = json.loads((tmp_path / "speed.json").read_text())
    assert [t["name"] for t in data["trackers"]] == ["siamtrack:w [onnxruntime]", "siamtrack:w [torch]", "kcf"]
    assert all(t["stages"]["backbone"]["cpu_ms"] >= 0 for t in data["trackers"][:2])
    assert (tmp_path / "speed.md").read_text() == table


def test_a_run_where_no_tracker_loads_reports_why(tiny_clip):
    """E.g. --device cuda on a machine without a GPU: rows with reasons, not a crash."""
    root, _ = tiny_clip
    opts = SpeedOptions(sequence=root / "seqs" / "clip", trackers=f"siamtrack:{root / 'w.pth'},nanotrack", frames=4,
                        passes=1, backends=("torch",), stage_repeats=1, device="cuda:99")
    report = run_speed(opts, log=lambda m: None)
    assert [(t.name, t.error.split(":")[0], t.tracker_fps) for t in report.trackers] == \
        [("siamtrack:w", "not run", 0.0), ("nanotrack", "not run", 0.0)]
    assert report.machine["gpu"].startswith("none (device 'cuda:99' requested but") and report.ratios == {}
    assert "| siamtrack:w | not run: device 'cuda:99' requested but" in report.to_markdown()
