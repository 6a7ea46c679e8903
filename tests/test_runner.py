"""Benchmark runs: same frames for every tracker, failures reported, parallel == serial, --resume,
and the outputs of `siamtrack bench` (results.json, results.md, plots) on a generated dataset."""
import json
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tracker.cli import main
from tracker.datasets import Sequence, load_dataset, write_sequence
from tracker.evaluation.bench import BenchOptions, run_bench
from tracker.evaluation.peers import TrackerSpec, parse_trackers
from tracker.evaluation.report import build_results, without_result
from tracker.errors import DatasetError
from tracker.evaluation.metrics import score_sequence
from tracker.evaluation.runner import box_paths, evaluate, run_benchmark, score_path, track_sequence
from tracker.tracking import TrackResult


def _clip(n, seed):
    """A 24x24 textured block drifting over a blocky random background (128x96)."""
    rng = np.random.default_rng(seed)
    background = np.kron(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8), np.ones((8, 8, 1), np.uint8))
    block = np.kron(rng.integers(0, 255, (6, 6, 3), dtype=np.uint8), np.ones((4, 4, 1), np.uint8))
    frames, boxes = [], []
    for i in range(n):
        x, y = 30 + 2 * i, 30 + i
        f = background.copy()
        f[y:y + 24, x:x + 24] = block
        frames.append(f)
        boxes.append((x, y, 24, 24))
    return frames, np.array(boxes, float)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("seqs")
    for name, n, seed in (("alpha", 10, 0), ("beta", 8, 1), ("gamma", 6, 2)):
        frames, boxes = _clip(n, seed)
        if name == "beta":
            boxes[3] = np.nan  # an absent frame
        write_sequence(root / name, frames, boxes)
    return root


def _unbuildable():
    return 1 / 0


@pytest.fixture
def siam(weights):
    """The siamtrack tracker name for the test weights (shipped default, else the reference checkpoint)."""
    return "siamtrack" if weights is None else f"siamtrack:{weights}"


class _Oracle:
    """Returns each frame's truth box (lost on frame 2) and records the frames it was given."""

    def __init__(self, truth):
        self.truth, self.seen, self.t = truth, [], 0

    def init(self, frame, box):
        self.seen.append(frame)

    def update(self, frame):
        self.seen.append(frame)
        self.t += 1
        return TrackResult(tuple(self.truth[self.t]), 0.9, self.t == 2)


class _FailsAtFrame2:
    def init(self, frame, box):
        self.box = box

    def update(self, frame):
        if frame is not None and getattr(self, "n", 0) == 1:
            raise RuntimeError("boom\nsecond line")
        self.n = getattr(self, "n", 0) + 1
        return self.box


def test_track_sequence_feeds_the_same_frames_and_reports_failures():
    frames, truth = _clip(5, 0)
    seq = Sequence("s", truth)
    a, b = _Oracle(truth), _Oracle(truth)
    runs = track_sequence({"a": a, "b": b, "bad": _FailsAtFrame2()}, seq, frames=frames)
    assert all(x is y is f for x, y, f in zip(a.seen, b.seen, frames))
    assert np.array_equal(runs["a"].boxes, truth)
    assert runs["a"].lost.tolist() == [False, False, True, False, False] and runs["a"].lost_count == 1
    assert runs["a"].scores[1] == 0.9 and np.isnan(runs["a"].scores[0])
    bad = runs["bad"]
    assert bad.error == "frame 2: RuntimeError: boom"
    assert np.array_equal(bad.boxes[:2], truth[[0, 0]]) and np.isnan(bad.boxes[2:]).all()
    assert runs["a"].error is None


def test_parallel_run_equals_serial_and_resume_skips_done_pairs(dataset, siam, tmp_path):
    specs = parse_trackers(f"{siam},kcf,csrt")
    seqs = load_dataset(dataset)
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    run_benchmark(specs, seqs, serial, workers=1, progress=False)
    run_benchmark(specs, seqs, parallel, workers=2, progress=False)
    for spec in specs:
        for seq in seqs:
            a, b = box_paths(serial, spec.name, seq.name)[0], box_paths(parallel, spec.name, seq.name)[0]
            assert a.read_text() == b.read_text(), f"{spec.name} on {seq.name}: parallel boxes differ from serial"
            assert len(a.read_text().splitlines()) == len(seq)
    # --resume: only the missing pair is run again
    txt, rec = box_paths(serial, "csrt", "beta")
    txt.unlink()
    rec.unlink()
    kept = box_paths(serial, "kcf", "alpha")[1]
    before = kept.stat().st_mtime_ns
    run_benchmark(specs, seqs, serial, workers=1, resume=True, progress=False)
    assert txt.read_text() == box_paths(parallel, "csrt", "beta")[0].read_text()
    assert kept.stat().st_mtime_ns == before
    # a run saved before per-frame score files existed is run again (its lost flags cannot be measured)
    score_file = score_path(serial, "kcf", "gamma")
    assert score_file.read_text().splitlines()[0] == "nan,0" and len(score_file.read_text().splitlines()) == 6
    score_file.unlink()
    run_benchmark(specs, seqs, serial, workers=1, resume=True, progress=False)
    assert score_file.is_file()
    # a tracker whose identity changed (e.g. retrained weights under the same name) is run again
    changed = [replace(s, identity="retrained") if s.name == "kcf" else s for s in specs]
    run_benchmark(changed, seqs[:1], serial, workers=1, resume=True, progress=False)
    assert json.loads(kept.read_text())["identity"] == "retrained"
    assert json.loads(box_paths(serial, "csrt", "alpha")[1].read_text())["identity"] == specs[2].identity


def test_bench_writes_json_markdown_and_plots(dataset, siam, tmp_path):
    out = tmp_path / "out"
    results = run_bench(BenchOptions(dataset, out, f"{siam},kcf,nanotrack", progress=False))
    saved = json.loads((out / "results.json").read_text())
    assert list(saved["trackers"])[1:] == ["kcf", "nanotrack"]
    kcf = saved["trackers"]["kcf"]
    assert {"auc", "precision", "sr50", "fps", "sequences"} <= kcf.keys()
    assert kcf["sequences"].keys() == {"alpha", "beta", "gamma"}
    assert kcf["sequences"]["beta"]["frames"] == 6  # 8 frames minus frame 0 and the absent one
    assert 0.0 <= kcf["auc"] <= 1.0 and kcf["fps"] > 0
    assert saved["trackers"]["nanotrack"]["status"].startswith("not run: model path not given")
    assert results["trackers"]["kcf"]["auc"] == kcf["auc"]
    md = (out / "results.md").read_text()
    assert "| Tracker | AUC | P@20 |" in md and "| nanotrack | - |" in md and "| alpha | " in md
    for png in ("success.png", "precision.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # re-reporting from the saved box files (everything done) gives the same numbers
    again = run_bench(BenchOptions(dataset, out, f"{siam},kcf,nanotrack", resume=True, progress=False))
    assert again["trackers"]["kcf"]["sequences"] == kcf["sequences"]


def test_cli_bench_prints_the_table_and_fails_cleanly_on_a_missing_dataset(dataset, tmp_path, capsys):
    assert main(["bench", str(dataset), "--trackers", "kcf", "--sequences", "gamma", "--out", str(tmp_path / "o"),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "| kcf |" in out and "results.json" in out
    assert main(["bench", str(tmp_path / "missing"), "--trackers", "kcf", "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert "not found; pass the path of a local dataset (nothing is downloaded)" in err and len(err.splitlines()) == 1


def test_cli_bench_whose_trackers_all_failed_exits_2_with_one_line_and_still_reports(dataset, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["bench", str(dataset), "--trackers", "siamtrack:nope_model,nanotrack", "--out", str(out),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("siamtrack: error: no tracker produced a result: ")
    assert "siamtrack:nope_model (not run: unknown model 'nope_model'" in err
    assert "nanotrack (not run: model path not given" in err and f"{out}/results.md" in err
    assert "| siamtrack:nope_model | - |" in (out / "results.md").read_text()
    assert {"results.json", "success.png", "precision.png"} <= {f.name for f in out.iterdir()}


def test_cli_bench_names_the_trackers_without_a_result_when_others_ran(dataset, tmp_path, capsys):
    assert main(["bench", str(dataset), "--trackers", "kcf,siamtrack:nope_model", "--sequences", "gamma",
                 "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    wrote, _, missing = capsys.readouterr().out.splitlines()[-1].partition("; no result from ")
    assert wrote == f"wrote {tmp_path / 'o'}/results.json, results.md, success.png, precision.png"
    assert missing.startswith("siamtrack:nope_model (not run: unknown model 'nope_model'") and "kcf" not in missing


def test_a_tracker_failing_on_every_sequence_has_no_result(dataset, tmp_path):
    seqs = load_dataset(dataset)
    specs = parse_trackers("kcf") + [TrackerSpec("broken", _unbuildable), TrackerSpec("nope", None, "not run: why")]
    run_benchmark(specs, seqs, tmp_path, progress=False)
    failed = without_result(build_results(specs, seqs, tmp_path))
    assert list(failed) == ["broken", "nope"] and failed["nope"] == "not run: why"
    assert failed["broken"] == "errors on 3 sequence(s) (alpha: cannot build: ZeroDivisionError: division by zero)"


@pytest.fixture(scope="module")
def short_truth(tmp_path_factory):
    """Three 8-frame clips: 'full' (a box per frame), 'firstbox' (only the first box, the GOT-10k test layout),
    'partial' (boxes for the first 5 frames)."""
    root = tmp_path_factory.mktemp("short_truth")
    for name, seed, rows in (("firstbox", 3, 1), ("full", 4, 8), ("partial", 5, 5)):
        frames, boxes = _clip(8, seed)
        write_sequence(root / name, frames, boxes)
        np.savetxt(root / name / "groundtruth.txt", boxes[:rows], fmt="%.2f", delimiter=",")
    return root


PARTIAL_ERROR = "partial: {} has 5 boxes but the sequence has 8 frames; give a box for every frame"


class _Still:
    """Never moves: its boxes, hence its scores, are known without running it."""

    def init(self, frame, box):
        self.box = box

    def update(self, frame):
        return self.box


def test_evaluate_leaves_out_first_box_sequences_and_scores_partial_ones_only_when_allowed(short_truth):
    seqs = load_dataset(short_truth)
    with pytest.raises(DatasetError, match=PARTIAL_ERROR.format(short_truth / "partial" / "groundtruth.txt")):
        evaluate(_Still, seqs)
    scores = evaluate(_Still, seqs, allow_partial=True)
    assert sorted(scores) == ["full", "partial"]
    partial = next(s for s in seqs if s.name == "partial")
    assert scores["partial"] == score_sequence(np.tile(partial.boxes[0], (5, 1)), partial.boxes)
    assert scores["partial"].frames == 4 and scores["full"].frames == 7


def test_bench_writes_boxes_for_every_frame_and_keeps_unscored_sequences_out_of_the_means(short_truth, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(DatasetError, match=PARTIAL_ERROR.format(short_truth / "partial" / "groundtruth.txt")):
        run_bench(BenchOptions(short_truth, out, "kcf", progress=False))
    assert not out.exists()  # refused before any work
    results = run_bench(BenchOptions(short_truth, out, "kcf", progress=False, allow_partial=True))
    for name in ("firstbox", "full", "partial"):  # every frame tracked, in got10k's box format
        assert np.loadtxt(box_paths(out, "kcf", name)[0], delimiter=",").shape == (8, 4)
    kcf = results["trackers"]["kcf"]
    first, full, partial = (kcf["sequences"][n] for n in ("firstbox", "full", "partial"))
    assert first["status"] == "no-ground-truth" and "auc" not in first and first["fps"] > 0
    assert (full["status"], partial["status"], partial["frames"]) == ("ok", "partial", 4)
    assert kcf["scored_sequences"] == 2 and kcf["frames"] == 7 + 4
    assert kcf["auc"] == pytest.approx((full["auc"] + partial["auc"]) / 2)
    assert results["info"]["no_ground_truth"] == ["firstbox"] and results["info"]["partial_ground_truth"] == ["partial"]
    md = (out / "results.md").read_text()
    assert "no ground truth (boxes written, no metrics): firstbox" in md
    assert "| kcf | " in md and " | 2 of 3 | " in md
    assert "| firstbox | no ground truth: boxes written, no metrics |" in md
    assert f"| partial | {partial['auc']:.3f} / " in md and "(partial ground truth) |" in md
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # such as matplotlib's for a legend without curves
        alone = run_bench(BenchOptions(short_truth, tmp_path / "alone", "kcf", sequences=["firstbox"], progress=False))
    assert alone["trackers"]["kcf"]["auc"] is None and alone["trackers"]["kcf"]["scored_sequences"] == 0


def test_cli_bench_refuses_a_partial_ground_truth_unless_allowed(short_truth, tmp_path, capsys):
    argv = ["bench", str(short_truth), "--trackers", "kcf", "--out", str(tmp_path / "o"), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("siamtrack: error: " + PARTIAL_ERROR.format(short_truth / "partial" / "groundtruth.txt"))
    assert "pass --allow-partial" in err and len(err.splitlines()) == 1
    assert main([*argv, "--allow-partial"]) == 0
    table = capsys.readouterr().out
    assert "partial ground truth (scored on the annotated frames, all frames tracked): partial" in table
    assert " | 2 of 3 | " in table


def test_tune_tool_runs_each_candidate_as_a_bench_run_and_reports_the_best(dataset, tmp_path, capsys):
    import runpy
    import sys
    out = tmp_path / "tune"
    argv = ["tune.py", str(dataset), "--split", "", "--sequences", "alpha,gamma", "--out", str(out),
            "--param", "window_influence=0.176,0.9"]
    old, sys.argv = sys.argv, argv
    try:
        with pytest.raises(SystemExit) as code:
            runpy.run_path(str(Path(__file__).parents[1] / "tools" / "tune.py"), run_name="__main__")
    finally:
        sys.argv = old
    assert code.value.code == 0
    report = json.loads((out / "tune.json").read_text())
    aucs = {t["overrides"]["window_influence"]: t["auc"] for t in report["trials"]}
    assert set(aucs) == {0.176, 0.9}
    assert report["best"] == {"window_influence": max(aucs, key=aucs.get)}
    assert report["start"] == {"window_influence": 0.176}
    assert all(set(t["aucs"]) == {"alpha", "gamma"} for t in report["trials"])
    table = (out / "tune.md").read_text()
    assert '| {"window_influence": 0.176} (start) | ' in table and " | +0.000 | [+0.000, +0.000] | " in table
    results = json.loads((out / "results.json").read_text())
    assert results["info"]["sequences"] == ["alpha", "gamma"]
    assert "best: " in capsys.readouterr().out


@pytest.fixture
def with_bad_video(dataset, tmp_path):
    """The three clips of ``dataset`` plus 'bad', whose video.mp4 is not a video (its ground truth is fine)."""
    import shutil
    root = tmp_path / "ds"
    shutil.copytree(dataset, root)
    shutil.copytree(dataset / "gamma", root / "bad")
    (root / "bad" / "video.mp4").write_bytes(b"not a video")
    return root


def test_cli_bench_reports_an_unreadable_sequence_and_scores_the_rest(with_bad_video, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["bench", str(with_bad_video), "--trackers", "kcf,csrt", "--out", str(out), "--no-progress"]) == 0
    closing = capsys.readouterr().out.splitlines()[-1]
    assert closing.startswith(f"wrote {out}/results.json") and "no result from" not in closing
    assert closing.endswith(f"; unreadable, not scored: bad (cannot open video {with_bad_video}/bad/video.mp4; "
                            "check the file exists and is a readable video)")
    results = json.loads((out / "results.json").read_text())
    assert list(results["info"]["unreadable"]) == ["bad"]
    for name in ("kcf", "csrt"):
        t = results["trackers"][name]
        assert t["scored_sequences"] == 3 and t["status"] == "ok"
        assert t["sequences"]["bad"]["status"] == "unreadable" and t["sequences"]["alpha"]["status"] == "ok"
    md = (out / "results.md").read_text()
    assert "Unreadable sequences, not run or scored: bad (cannot open video" in md and "| bad | unreadable |" in md


def test_cli_bench_where_every_sequence_is_unreadable_exits_2(with_bad_video, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["bench", str(with_bad_video), "--trackers", "kcf", "--sequences", "bad", "--out", str(out),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("siamtrack: error: no tracker produced a result: kcf (")
    assert "bad: unreadable" in err and (out / "results.md").is_file()


def test_cli_bench_out_under_proc_fails_before_any_work(dataset, capsys):
    assert main(["bench", str(dataset), "--trackers", "kcf", "--out", "/proc/nope", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("siamtrack: error: cannot write into --out /proc/nope") and len(err.splitlines()) == 1
