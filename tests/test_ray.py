"""The Ray engine of `siamtrack bench --ray` on a local Ray of 2 CPUs: the boxes of a serial run, --resume across
the engines, a killed worker retried, a sequence that keeps killing its worker reported, an unreadable dataset
named; and Ray stays optional (a one-line error without it, never imported by tracking)."""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tracker.cli import main
from tracker.datasets import load_dataset, write_sequence
from tracker.errors import SiamTrackError
from tracker.evaluation.bench import BenchOptions, run_bench
from tracker.evaluation.peers import OpenCVPeer, TrackerSpec, parse_trackers
from tracker.evaluation.report import build_results, without_result
from tracker.evaluation.runner import box_paths, evaluate, is_done, run_benchmark
from tracker.synthetic import demo_clip

@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("seqs")
    for seed, n in enumerate((9, 7, 6)):
        clip = demo_clip(seed, n_frames=n, width=160, height=120)
        write_sequence(root / f"clip{seed}", list(clip), clip.boxes)
    return root


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory: pytest.TempPathFactory):
    """A local Ray of 2 CPUs for this module's tests (run_benchmark uses a Ray this process initialised), started
    outside the repository; this module's functions travel to the workers by value (workers do not import tests)."""
    ray = pytest.importorskip("ray")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("ray"))
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    ray.shutdown()


def _box_files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted((out / "boxes").rglob("*.txt"))}


def test_ray_bench_writes_the_boxes_and_scores_of_a_serial_run(dataset, weights, local_ray, tmp_path):
    trackers = [f"siamtrack:{weights}", "kcf"]
    serial = run_bench(BenchOptions(dataset, tmp_path / "serial", trackers, progress=False))
    on_ray = run_bench(BenchOptions(dataset, tmp_path / "ray", trackers, progress=False, ray="local"))
    files = _box_files(tmp_path / "serial")
    assert len(files) == 12 and files == _box_files(tmp_path / "ray")  # boxes and score/lost files, 2 trackers x 3 clips
    for name, row in serial["trackers"].items():
        assert row["status"] == "ok" and on_ray["trackers"][name]["auc"] == row["auc"]
        assert on_ray["trackers"][name]["sequences"].keys() == row["sequences"].keys()
    assert all((tmp_path / "ray" / f).is_file() for f in ("results.md", "success.png", "precision.png"))


def test_evaluate_on_ray_gives_the_scores_of_a_serial_run(dataset, local_ray):
    seqs = load_dataset(dataset)
    factory = functools.partial(OpenCVPeer, "kcf")
    serial, on_ray = evaluate(factory, seqs), evaluate(factory, seqs, ray="local")
    assert list(on_ray) == list(serial) == [s.name for s in seqs]
    assert all(on_ray[k].to_dict(curves=True) == serial[k].to_dict(curves=True) for k in serial)


def test_resume_works_across_the_two_engines(dataset, local_ray, tmp_path):
    seqs = load_dataset(dataset)
    specs = parse_trackers("kcf")
    records = lambda: {s.name: box_paths(tmp_path, "kcf", s.name)[1].read_text() for s in seqs  # noqa: E731
                       if box_paths(tmp_path, "kcf", s.name)[1].is_file()}
    run_benchmark(specs, seqs[:1], tmp_path, progress=False, ray="local")
    first = records()
    run_benchmark(specs, seqs[:2], tmp_path, resume=True, progress=False)  # processes resume a Ray run
    second = records()
    assert second.keys() == {seqs[0].name, seqs[1].name} and second[seqs[0].name] == first[seqs[0].name]
    run_benchmark(specs, seqs, tmp_path, resume=True, progress=False, ray="local")  # and Ray resumes theirs
    third = records()
    assert len(third) == 3 and all(third[k] == v for k, v in second.items())


class _ThreadProbe:
    """Answers every frame with the compute threads of the process it runs in: torch, OpenCV, OMP_NUM_THREADS."""

    def init(self, frame, box):
        pass

    def update(self, frame):
        import cv2
        import torch
        return (float(torch.get_num_threads()), float(cv2.getNumThreads()), float(os.environ["OMP_NUM_THREADS"]), 1.0)


def test_a_ray_task_tracks_on_one_compute_thread_as_a_worker_process_does(dataset, local_ray, tmp_path):
    seqs = load_dataset(dataset)[:1]
    run_benchmark([TrackerSpec("probe", _ThreadProbe, identity="p")], seqs, tmp_path, progress=False, ray="local")
    boxes = box_paths(tmp_path, "probe", seqs[0].name)[0].read_text().splitlines()
    assert boxes[1:] == ["1.0000,1.0000,1.0000,1.0000"] * (len(seqs[0]) - 1)


def _dies_first(marker: Path, times: int) -> OpenCVPeer:
    """A kcf tracker, once the process building it has died ``times`` times (counted in marker files)."""
    for i in range(times):
        if not (died := marker.with_suffix(f".{i}")).exists():
            died.touch()
            os._exit(1)
    return OpenCVPeer("kcf")


def test_a_task_whose_worker_dies_is_retried_by_ray(dataset, local_ray, tmp_path):
    seqs = load_dataset(dataset)[:1]
    marker = tmp_path / "died"
    dies = TrackerSpec("dies-once", functools.partial(_dies_first, marker, 1), identity="x")
    run_benchmark([dies], seqs, tmp_path / "ray", progress=False, ray="local")
    run_benchmark(parse_trackers("kcf"), seqs, tmp_path / "serial", progress=False)
    assert marker.with_suffix(".0").exists()  # it did die once
    assert (box_paths(tmp_path / "ray", "dies-once", seqs[0].name)[0].read_bytes()
            == box_paths(tmp_path / "serial", "kcf", seqs[0].name)[0].read_bytes())


def test_a_sequence_whose_worker_keeps_dying_is_listed_with_its_reason_and_rerun_on_resume(
        dataset, local_ray, tmp_path, monkeypatch):
    from tracker.evaluation import ray_engine
    monkeypatch.setattr(ray_engine, "MAX_RETRIES", 1)
    seqs = load_dataset(dataset)[:1]
    dies = TrackerSpec("dies", functools.partial(_dies_first, tmp_path / "died", 5), identity="x")
    run_benchmark([dies], seqs, tmp_path, progress=False, ray="local")
    record = json.loads(box_paths(tmp_path, "dies", seqs[0].name)[1].read_text())
    assert record["error"].startswith("Ray task failed (after 1 retries): ") and "\n" not in record["error"]
    assert not is_done(tmp_path, dies, seqs[0].name)  # --resume runs it again
    assert (tmp_path / "died.1").exists() and not (tmp_path / "died.2").exists()  # 1 run + 1 retry
    report = build_results([dies], seqs, tmp_path)
    assert "dies" in without_result(report) and "Ray task failed" in report["trackers"]["dies"]["errors"][0]


def test_a_dataset_a_node_cannot_read_is_one_line_naming_the_node_and_the_path(dataset, local_ray, tmp_path):
    copy = tmp_path / "copy"
    write_sequence(copy / "only", list(demo_clip(0, 4, 96, 72)), demo_clip(0, 4, 96, 72).boxes)
    seqs = load_dataset(copy)
    (copy / "only" / "video.mp4").unlink()  # read here when loaded, missing where the tasks run
    node = local_ray.nodes()[0]["NodeManagerAddress"]
    with pytest.raises(SiamTrackError) as err:
        run_benchmark(parse_trackers("kcf"), seqs, tmp_path / "out", progress=False, ray="local")
    assert f"Ray node {node} cannot read {copy / 'only' / 'video.mp4'}" in str(err.value)
    assert "\n" not in str(err.value) and not (tmp_path / "out").exists()


def test_cli_bench_on_ray_prints_the_table(dataset, local_ray, tmp_path, capsys):
    code = main(["bench", str(dataset), "--trackers", "kcf", "--out", str(tmp_path), "--no-progress", "--ray"])
    assert code == 0 and "| kcf |" in capsys.readouterr().out
    assert json.loads((tmp_path / "results.json").read_text())["info"]["ray"] == "local"


def test_without_ray_installed_ray_runs_are_a_one_line_error_saying_what_to_install(dataset, tmp_path, capsys,
                                                                                      monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where Ray is not installed
    monkeypatch.delitem(sys.modules, "tracker.evaluation.ray_engine", raising=False)
    code = main(["bench", str(dataset), "--trackers", "kcf", "--out", str(tmp_path / "b"), "--no-progress", "--ray"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == "siamtrack: error: --ray needs Ray, which is not installed: pip install 'siamtrack[ray]'\n"


def test_tracking_never_imports_ray(dataset, tmp_path):
    script = ("import sys, tracker, tracker.cli\n"
              f"code = tracker.cli.main(['track', {str(dataset / 'clip0' / 'video.mp4')!r}, '--box', '60,40,30,30',"
              f" '--max-frames', '3', '--boxes', {str(tmp_path / 'b.csv')!r}, '--device', 'cpu'])\n"
              "assert code == 0, code\n"
              "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]" and (tmp_path / "b.csv").is_file()


def test_an_address_where_no_cluster_listens_is_one_line_at_once(monkeypatch):
    pytest.importorskip("ray")
    from tracker.evaluation import ray_engine
    monkeypatch.setattr(ray_engine.ray, "is_initialized", lambda: False)  # as in a fresh `siamtrack bench`
    with pytest.raises(SiamTrackError, match=r"^cannot reach a Ray cluster at '127.0.0.1:1' \(.*refused\); start"):
        with ray_engine.connected("127.0.0.1:1"):
            pass


def _tune(*args: str, status: int = 0) -> None:
    """tools/tune.py with ``args``; it must exit with ``status``."""
    import runpy
    old, sys.argv = sys.argv, ["tune.py", *args]
    try:
        with pytest.raises(SystemExit) as code:
            runpy.run_path(str(Path(__file__).parents[1] / "tools" / "tune.py"), run_name="__main__")
    finally:
        sys.argv = old
    assert code.value.code == status


def test_tune_on_ray_tune_reports_what_the_process_search_does_and_resumes(dataset, local_ray, tmp_path):
    search = [str(dataset), "--split", "", "--sequences", "clip0,clip2", "--param", "window_influence=0.176,0.9"]
    _tune(*search, "--out", str(tmp_path / "processes"))
    _tune(*search, "--out", str(tmp_path / "ray"), "--ray")
    table = (tmp_path / "ray" / "tune.md").read_text()
    assert table == (tmp_path / "processes" / "tune.md").read_text() and "(start) | " in table
    assert _box_files(tmp_path / "ray") == _box_files(tmp_path / "processes")
    assert any((tmp_path / "ray" / "ray_tune").iterdir())  # the trials ran in Ray Tune
    records = {p: p.read_text() for p in (tmp_path / "ray" / "boxes").rglob("*.json")}
    assert len(records) == 4
    _tune(*search, "--out", str(tmp_path / "ray"), "--ray")  # resumed: no trial tracks anything again
    assert {p: p.read_text() for p in (tmp_path / "ray" / "boxes").rglob("*.json")} == records
    assert (tmp_path / "ray" / "tune.md").read_text() == table


def test_tune_without_ray_installed_is_a_one_line_error_saying_what_to_install(dataset, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    for module in ("tracker.evaluation.ray_engine", "tracker.evaluation.tune_ray"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    _tune(str(dataset), "--split", "", "--param", "window_influence=0.176,0.9", "--out", str(tmp_path), "--ray",
          status=2)
    err = capsys.readouterr().err
    assert err == "tune: error: --ray needs Ray, which is not installed: pip install 'siamtrack[ray]'\n"
    assert not (tmp_path / "boxes").exists()


def test_ray_progress_bars_count_finished_tasks(dataset, local_ray, tmp_path, capsys):
    run_benchmark(parse_trackers("kcf"), load_dataset(dataset), tmp_path, ray="local")
    err = capsys.readouterr().err
    # the sequence bar ends at 3/3; the frame bar counts the 9 + 7 + 6 frames (its last redraw is up to tqdm's
    # refresh interval, and it clears on close, so its final 22/22 need not reach the terminal)
    assert "sequences: 100%" in err and "3/3" in err and "/22 " in err
