"""tools/gpu_check.sh and its driver (tracker/evaluation/gpu_check.py), on CPU: the dry run's report, step
timeouts and the time budget, the summaries it reads back from pytest, tools/speed.py and tools/multi_bench.py."""
import ast
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from test_imports import top_level_imports
from tracker.config import ModelConfig
from tracker.datasets import write_sequence
from tracker.evaluation import gpu_check
from tracker.evaluation.speed import SpeedOptions, run_speed
from tracker.evaluation.speed_worker import run_job
from tracker.models import SiameseNet, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "gpu_check.sh"
STEPS = ["install", "imports", "tests", "speed_siamfc", "speed_box", "multi", "transfer"]


def _script(*args, env=None, cwd):
    env = {**os.environ, "PYTHON": sys.executable, **(env or {})}
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_dry_run_writes_the_report_with_every_step(tmp_path):
    out = tmp_path / "out"
    proc = _script("--dry-run", "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing written into the cwd
    assert sorted(p.name for p in out.iterdir()) == ["gpu_check.json", "gpu_check.md"]
    report = json.loads((out / "gpu_check.json").read_text())
    assert report["schema"] == "siamtrack-gpu-check/1" and report["mode"] == "dry-run"
    assert [s["name"] for s in report["steps"]] == STEPS and {s["status"] for s in report["steps"]} == {"dry-run"}
    commands = {s["name"]: s["command"] for s in report["steps"]}
    for name in ("speed_siamfc", "speed_box", "multi"):
        assert "--device cuda --backend torch" in commands[name]
    assert "siamtrack:siamtrack_small" in commands["speed_siamfc"] and "--targets 1 64" in commands["multi"]
    assert "-m device" in commands["tests"] and "--no-index --no-deps" in commands["install"]
    env = report["environment"]
    assert env["torch"] == torch.__version__ and env["cuda_available"] == torch.cuda.is_available()
    assert env["gpu"] == (torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
    assert report["run_call"] == {"command": "PYTHONUNBUFFERED=1 bash tools/gpu_check.sh", "carry": [".gpu_carry"],
                                  "timeout_s": 360}
    assert report["tests"] is None and report["multi"] == [] and report["transfer"] is None
    md = (out / "gpu_check.md").read_text()
    assert md == proc.stdout.rstrip("\n") + "\n"
    assert md.startswith("# siamtrack GPU check\n") and f"torch {torch.__version__}, CUDA {torch.version.cuda}" in md
    assert [line.split("|")[1].strip() for line in md.splitlines() if "| dry-run" in line] == STEPS
    assert 'run(command="PYTHONUNBUFFERED=1 bash tools/gpu_check.sh", carry=[".gpu_carry"], timeout_s=360)' in md


@pytest.mark.parametrize("path", [ROOT / "tools" / "gpu_check.py", Path(gpu_check.__file__)])
def test_the_tool_and_its_driver_import_only_the_standard_library(path):
    """The tool runs the driver from its file, not through the package, and the driver imports torch, cv2
    and the package only inside the steps that need them: a machine where those fail still gets a report."""
    found = {alias.name if isinstance(node, ast.Import) else "." * node.level + (node.module or "")
             for node in top_level_imports(ast.parse(path.read_text())) for alias in node.names}
    assert {name.partition(".")[0] for name in found} <= sys.stdlib_module_names


def test_a_real_run_needs_somewhere_to_write(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "OUT"}
    proc = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr == "gpu_check: set OUT or pass --out DIR for the report\n"


def _step(name, code, timeout_s=30, reason=""):
    return gpu_check.Step(name, f"{name} step", [sys.executable, "-c", code], timeout_s, reason=reason)


def test_steps_report_ok_failed_timeout_and_skipped_and_the_report_follows_each(tmp_path):
    steps = [_step("ok", "print('hello')"), _step("bad", "raise SystemExit(3)"),
             _step("slow", "import subprocess; subprocess.run(['sleep', '60'])", timeout_s=1),
             _step("absent", "", reason="wheels not in .gpu_carry/")]
    seen = []
    t0 = time.monotonic()
    results = gpu_check.run_all(steps, 100, False, tmp_path, lambda done: seen.append([r.status for r in done]))
    assert time.monotonic() - t0 < 20  # the sleeping grandchild was killed with its group
    assert [(r.status, r.rc) for r in results] == [("ok", 0), ("failed", 3), ("timeout", None), ("skipped", None)]
    assert results[0].log_tail == "hello\n" and results[3].log_tail == "wheels not in .gpu_carry/"
    assert seen == [["ok", "pending", "pending", "pending"], ["ok", "failed", "pending", "pending"],
                    ["ok", "failed", "timeout", "pending"], ["ok", "failed", "timeout", "skipped"]]


def test_steps_past_the_budget_are_skipped_not_started(tmp_path):
    marker = tmp_path / "ran"
    steps = [_step("late", f"open({str(marker)!r}, 'w')")]
    budget = gpu_check.REPORT_RESERVE_S + gpu_check.MIN_STEP_S - 1
    (result,) = gpu_check.run_all(steps, budget, False, tmp_path, lambda done: None)
    assert result.status == "skipped" and result.log_tail.startswith("no time left") and not marker.exists()


def test_pytest_results_are_counted(tmp_path):
    (tmp_path / "test_sample.py").write_text(
        "import pytest\n\ndef test_a():\n    pass\n\ndef test_b():\n    assert 1 == 2, 'one is not two'\n\n"
        "def test_c():\n    pytest.skip('no gpu')\n")
    junit = tmp_path / "pytest.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml", str(junit),
                    str(tmp_path / "test_sample.py")], cwd=tmp_path, capture_output=True, timeout=120)
    summary = gpu_check.junit_summary(junit)
    assert (summary["passed"], summary["failed"], summary["skipped"]) == (1, 1, 1)
    assert summary["failures"] == [{"test": "test_sample::test_b", "message": "AssertionError: one is not two"}]
    assert gpu_check.junit_summary(tmp_path / "missing.xml") is None


def test_speed_and_multi_reports_are_summarised(tmp_path):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (96, 128, 3), dtype=np.uint8) for _ in range(4)]
    write_sequence(tmp_path / "seqs" / "clip", frames, np.array([(40.0, 30.0, 30.0, 24.0)] * 4))
    torch.manual_seed(0)
    save_checkpoint(SiameseNet(ModelConfig(width=0.15)), tmp_path / "w.pth")
    opts = SpeedOptions(sequence=tmp_path / "seqs" / "clip", trackers=f"siamtrack:{tmp_path / 'w.pth'},kcf", frames=4,
                        passes=1, rounds=1, regimes=("default",), backends=("torch",), stage_repeats=1)
    rows = gpu_check.speed_rows(json.loads(run_speed(opts, log=lambda m: None, runner=run_job).to_json()))
    assert [r["tracker"] for r in rows] == ["siamtrack:w [torch]", "kcf"]
    assert rows[0]["tracker_fps"] > 0 and set(rows[0]["stages_wall_ms"]) >= {"crop", "backbone", "head", "post"}
    assert rows[1]["stages_wall_ms"] == {} and rows[1]["error"] is None
    multi = gpu_check.multi_rows({"rows": [{"targets": 64, "batched_ms": 32.0, "independent_ms": 128.0, "speedup": 4.0,
                                            "batched_ms_per_target": 0.5, "max_box_diff_px": 0.0}]})
    assert multi[0]["target_updates_per_s"] == 2000 and multi[0]["independent_target_updates_per_s"] == 500
    report = gpu_check.build_report("run", {"gpu": "NVIDIA H200"}, [], tmp_path, time.monotonic(), 270)
    report["multi"], report["speed"]["siamfc"] = multi, rows
    md = gpu_check.render_markdown(report)
    assert "| 64 | 32.0 | 2000 | 128.0 | 500 | 4.0 | 0.0 |" in md and "| siamfc | siamtrack:w [torch] |" in md
    assert md.count("not run") == 3  # steps, tests and copies


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_is_the_header(flag, tmp_path):
    proc = _script(flag, cwd=tmp_path)
    assert proc.returncode == 0 and "bash tools/gpu_check.sh --prepare" in proc.stdout
    assert 'run(command="PYTHONUNBUFFERED=1 bash tools/gpu_check.sh", carry=[".gpu_carry"], timeout_s=360)' in proc.stdout
