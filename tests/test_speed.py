"""Speed benchmark: every row in its own process, nothing leaking between rows, and the report it writes
(no wall-clock asserts)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import SHARED

from tracker.config import ModelConfig, TrackerConfig
from tracker.datasets import write_sequence
from tracker.evaluation import speed
from tracker.evaluation.flops import model_flops, onnx_flops
from tracker.evaluation.peers import PeerOptions
from tracker.evaluation.speed import SpeedOptions, run_speed
from tracker.evaluation.speed_worker import STAGES, grid_boxes, regime_threads, run_job
from tracker.models import SiameseNet, save_checkpoint


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


def _fresh_settings() -> dict:
    """What a new Python process that imports OpenCV and torch starts with."""
    code = "import cv2, torch, json; print(json.dumps([cv2.getNumThreads(), torch.get_num_threads()]))"
    cv, th = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    return {"cv2_threads": cv, "torch_threads": th}


def test_every_row_runs_in_a_fresh_process_and_no_setting_leaks_into_the_next(tiny_clip):
    root, _ = tiny_clip
    opts = SpeedOptions(sequence=root / "seqs" / "clip", trackers=f"siamtrack:{root / 'w.pth'},kcf", frames=6, passes=1,
                        rounds=1, regimes=("1", "default"), backends=("torch",), stage_repeats=1)
    report = run_speed(opts, log=lambda m: None)
    rows = {(t.name, t.regime): t for t in report.trackers}
    pids = [pid for t in report.trackers for pid in t.pids]
    assert len(pids) == 4 and len(set(pids)) == 4 and os.getpid() not in pids
    fresh = _fresh_settings()
    assert all(entry == fresh for t in report.trackers for entry in t.on_entry)
    # the 1-thread rows ran on one thread; the default rows after them still saw the libraries' own defaults
    assert rows["siamtrack:w [torch]", "1"].while_timed == [{"cv2_threads": 1, "torch_threads": 1}]
    assert rows["kcf", "default"].while_timed == [fresh]
    assert rows["siamtrack:w [torch]", "1"].engine_threads == [1]
    assert all(t.error is None and t.tracker_fps > 0 for t in report.trackers)


def test_the_rows_entry_settings_would_show_a_leak():
    """The instrument can fail: run in one process, a 1-thread row leaks into the default row after it,
    and that row's recorded entry settings say so (the isolated run above shows none)."""
    before = _settings_now()
    try:
        job = lambda regime: speed.Job("kcf", regime, sequence=_missing(), frames=2, passes=1,  # noqa: E731
                                       peers=speed.PeerOptions(), end_to_end=False)
        first, second = run_job(job("1")), run_job(job("default"))
        assert first["on_entry"] == before and second["on_entry"] == {"cv2_threads": 1, "torch_threads": 1}
    finally:
        import cv2
        cv2.setNumThreads(before["cv2_threads"])
        torch.set_num_threads(before["torch_threads"])


def _settings_now() -> dict:
    import cv2
    return {"cv2_threads": cv2.getNumThreads(), "torch_threads": torch.get_num_threads()}


def _missing():
    from pathlib import Path
    return Path("no-such-dataset") / "clip"  # the job fails after applying its regime: a recorded error


@pytest.fixture(scope="module")
def tiny_run(tiny_clip):
    """In-process (fast) run of every table: one target under two regimes, then 3 targets."""
    root, net = tiny_clip
    opts = SpeedOptions(sequence=root / "seqs" / "clip", trackers=f"siamtrack:{root / 'w.pth'},csrt,kcf,nanotrack",
                        frames=8, passes=2, rounds=2, regimes=("1", "2"), backends=("torch",), targets=(3,),
                        multi_frames=5, stage_repeats=2, memory_frames=20)
    return run_speed(opts, log=lambda m: None, runner=run_job), net


def test_report_rows_stages_ratios_and_many_targets(tiny_run):
    report, net = tiny_run
    single = [(t.name, t.regime) for t in report.trackers if t.targets == 1 and t.error is None]
    assert single == [(n, r) for n in ("siamtrack:w [torch]", "csrt", "kcf") for r in ("1", "2")]
    siam = report.row("siamtrack:w [torch]", "2")
    assert set(siam.stages) == set(STAGES) and all(t.wall_ms > 0 for t in siam.stages.values())
    assert siam.graphs_ms == siam.stages["graphs"].wall_ms
    assert siam.gflop_per_frame == pytest.approx(model_flops(net, TrackerConfig()).per_frame / 1e9)
    assert len(siam.tracker_fps_rounds) == 2 and siam.tracker_fps == pytest.approx(np.median(siam.tracker_fps_rounds))
    assert siam.engine_threads == [2, 2] and siam.end_to_end_fps > 0
    nano = [t for t in report.trackers if t.name == "nanotrack"]
    assert nano[0].error == "not run: model path not given (--nano-backbone/--nano-neckhead)"
    assert set(report.ratios) == {"siamtrack:w [torch]"}  # no peer has 3-target rows (nanotrack did not run)
    ratio = report.ratios["siamtrack:w [torch]"]["kcf"]
    per_round = np.array(siam.tracker_fps_rounds) / np.array(report.row("kcf", "2").tracker_fps_rounds)
    assert ratio["2"] == pytest.approx(np.median(per_round))
    multi = report.row("siamtrack:w [torch]", "1", 3)
    assert multi.error is None and multi.tracker_fps > 0 and not multi.stages
    assert report.memory.frames == 20 and len(report.memory.rss_mb) == 20


def test_json_and_markdown(tiny_run):
    report, _ = tiny_run
    data = json.loads(report.to_json())
    assert {"machine", "options", "load_before", "load_after", "trackers", "ratios", "memory"} <= set(data)
    assert data["options"]["sequence"] == "clip" and data["options"]["frames"] == 8
    md = report.to_markdown()
    header = next(line for line in md.splitlines() if line.startswith("| tracker | GFLOP"))
    assert header.count("|") - 1 == 2 + 2 + 2 * 2 + 1  # name, GFLOP, fps x 2 regimes, ratio to csrt/kcf x 2, threads
    assert "| siamtrack:w [torch] | 3 |" in md and "| siamtrack:w [torch] | 2 threads |" in md
    assert "Memory: siamtrack:w [torch], 20 updates" in md and "in its own fresh process" in md


def test_bench_speed_flag_writes_both_reports(tiny_clip, tmp_path, capsys, monkeypatch):
    from tracker.cli import main
    monkeypatch.setattr(speed, "run_isolated", run_job)  # the isolation has its own test; here the plumbing
    root, _ = tiny_clip
    assert main(["bench", str(root / "seqs"), "--speed", "--trackers", f"siamtrack:{root / 'w.pth'},kcf",
                 "--out", str(tmp_path), "--device", "cpu"]) == 0
    table = capsys.readouterr().out
    assert "| siamtrack:w [onnxruntime] |" in table and "x kcf, default |" in table
    data = json.loads((tmp_path / "speed.json").read_text())
    assert [(t["name"], t["regime"]) for t in data["trackers"]] == \
        [(n, r) for n in ("siamtrack:w [onnxruntime]", "kcf") for r in ("1", "2", "default")]
    assert (tmp_path / "speed.md").read_text() == table


def test_a_run_where_no_tracker_loads_reports_why(tiny_clip):
    """E.g. --device cuda on a machine without a GPU: rows with reasons, not a crash."""
    root, _ = tiny_clip
    opts = SpeedOptions(sequence=root / "seqs" / "clip", trackers=f"siamtrack:{root / 'w.pth'},nanotrack", frames=4,
                        passes=1, rounds=1, backends=("torch",), stage_repeats=1, device="cuda:99")
    report = run_speed(opts, log=lambda m: None)
    assert [(t.name, t.error.split(":")[0], t.tracker_fps) for t in report.trackers] == \
        [("siamtrack:w", "not run", 0.0), ("nanotrack", "not run", 0.0)]
    assert report.machine["gpu"].startswith("none (device 'cuda:99' requested but") and report.ratios == {}
    assert "| siamtrack:w | not run: device 'cuda:99' requested but" in report.to_markdown()


def test_ratios_pair_each_round_so_a_slow_spell_of_the_machine_reads_true(tiny_clip):
    """Ours is always 1.25x kcf, but the machine runs at half speed for the first three processes: all of
    round 1 and kcf's row of round 2. The ratio of the medians would read 2.5 (ours fast in 2 of 3 rounds, kcf
    slow in 2 of 3); the median of each round's own ratio reads 1.25."""
    root, _ = tiny_clip
    started: list[tuple[str, str]] = []

    def runner(job):
        slow = 2.0 if len(started) < 3 else 1.0
        started.append((job.tracker, job.regime))
        own = 1.0 if job.tracker == "kcf" else 0.8  # seconds per pass at full speed
        return {"pid": 0, "on_entry": {}, "while_timed": {}, "passes": [(own * slow, 0.0)]}

    opts = SpeedOptions(sequence=root / "seqs" / "clip", trackers=f"siamtrack:{root / 'w.pth'},kcf", frames=6, passes=1,
                        rounds=3, regimes=("1",), backends=("torch",), stage_repeats=0)
    report = run_speed(opts, log=lambda m: None, runner=runner)
    assert [t.split(":")[0] for t, _ in started] == ["siamtrack", "kcf", "kcf", "siamtrack", "siamtrack", "kcf"]
    siam, kcf = report.row("siamtrack:w [torch]", "1"), report.row("kcf", "1")
    assert siam.tracker_fps_rounds == pytest.approx([5 / 1.6, 5 / 0.8, 5 / 0.8])
    assert kcf.tracker_fps_rounds == pytest.approx([5 / 2.0, 5 / 2.0, 5 / 1.0])
    assert siam.tracker_fps / kcf.tracker_fps == pytest.approx(2.5)
    assert report.ratios["siamtrack:w [torch]"]["kcf"]["1"] == pytest.approx(1.25)


def test_each_round_keeps_the_rows_it_compares_back_to_back():
    plan = [(e, r, n) for n in (1, 8) for r in ("1", "2", "default") for e in ("ours", "peer", "other")]
    for k in range(5):
        order = speed.round_order(plan, k)
        assert sorted(order) == sorted(plan)
        groups = [(r, n) for _, r, n in order]
        assert all(groups[i] == groups[i - i % 3] for i in range(len(groups)))  # runs of 3 of one group
        assert [e for e, _, _ in order[:3]] == speed._rotated(["ours", "peer", "other"], k)


def test_regimes_and_target_boxes():
    assert regime_threads("1") == 1 and regime_threads("default") is None
    with pytest.raises(ValueError, match="unknown thread regime 'two'"):
        regime_threads("two")
    boxes = grid_boxes(8, (10.0, 20.0, 30.0, 40.0), (240, 320, 3))
    assert boxes[0] == (10.0, 20.0, 30.0, 40.0) and len(set(boxes)) == 8
    assert all(0 <= x and x + w <= 320 and 0 <= y and y + h <= 240 for x, y, w, h in boxes)


def test_the_tool_reports_a_missing_sequence_in_one_line(tmp_path):
    tool = os.path.join(os.path.dirname(__file__), "..", "tools", "speed.py")
    missing = tmp_path / "nowhere" / "clip"
    done = subprocess.run([sys.executable, tool, "--sequence", str(missing), "--trackers", "kcf"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [f"speed: error: dataset folder {missing.parent} not found; pass the path of a "
                                        "local dataset (nothing is downloaded)"]


def test_the_onnx_peers_rows_carry_their_graphs_cost(tmp_path):
    """nanotrack's row costs its two graphs; vit's (one stream: template and search every frame) its whole graph,
    read from the file --vit-model names, so the GFLOP column compares like with like."""
    vit = SHARED / "reference" / "vittrack_early" / "vitTracker_early.onnx"
    if not vit.is_file():
        pytest.skip(f"needs {vit} (../shared)")
    entries, failed = speed._entries(SpeedOptions(sequence=tmp_path, trackers=["vit"], peers=PeerOptions(vit_model=vit)))
    assert failed == [] and [(e.name, e.flops.per_frame, e.flops.exemplar) for e in entries] == [
        ("vit", onnx_flops(vit), 0)]
    assert onnx_flops(vit) == 89_952_256  # 0.090 GFLOP: its convs and matmuls at 128 + 256 px
    entries, failed = speed._entries(SpeedOptions(sequence=tmp_path, trackers=["vit"], peers=PeerOptions()))
    assert entries == [] and "--vit-model" in failed[0].error
