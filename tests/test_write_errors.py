"""Writes that fail (disk full, /proc, an oversized --threads) end a command with one line and exit 2, before
any work where that can be known, keeping what was already written where it cannot."""
from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from test_cli import _rows, _run, _weights_args, clip_video  # noqa: F401 - the module's video fixture
from tracker import SiamTracker
from tracker.engine import usable_cores

ROOT = Path(__file__).resolve().parents[1]


def _one_line(err: str) -> None:
    assert err.startswith("siamtrack: error: ") and err.count("\n") == 1 and "Traceback" not in err, err


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_boxes_on_a_full_disk_is_one_line(clip_video, weights, capfd):  # noqa: F811
    video, box = clip_video
    code, _, err = _run(capfd, "track", video, "--box", box, "--boxes", "/dev/full", "--overwrite", "--device", "cpu",
                        *_weights_args(weights))
    assert code == 2
    _one_line(err)
    assert "cannot write /dev/full (No space left on device); no row was written" in err


def _file_size_limit(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_disk_filling_mid_run_keeps_the_rows_written(clip_video, weights, tmp_path):  # noqa: F811
    video, box = clip_video
    SiamTracker(weights, device="cpu", threads=1)  # the graph cache is warm: the child writes only the CSV
    csv = tmp_path / "o.csv"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "tracker", "track", str(video), "--box", box, "--boxes", str(csv),
                           "--device", "cpu", "--threads", "1", *_weights_args(weights)], capture_output=True,
                          text=True, env=env, cwd=tmp_path, preexec_fn=_file_size_limit(400), timeout=300, check=False)
    assert done.returncode == 2
    _one_line(done.stderr)
    assert "o.csv (File too large)" in done.stderr
    kept = int(done.stderr.split("frames 0-")[1].split(" ")[0]) + 1
    assert 3 < kept < 24
    whole = csv.read_text().splitlines(keepends=True)
    assert len(_rows(csv)) >= kept and all(line.endswith("\n") for line in whole[:kept + 1])


def test_train_out_under_proc_fails_before_any_work(capfd):
    code, _, err = _run(capfd, "train", "--out", "/proc/nope", "--sequences", "/nonexistent/data")
    assert code == 2
    _one_line(err)
    assert "--out /proc/nope" in err


def test_export_under_proc_is_one_line(capfd):
    code, _, err = _run(capfd, "export", "--format", "onnx", "--output", "/proc/nope")
    assert code == 2
    _one_line(err)
    assert "/proc/nope" in err


def test_threads_above_the_cores_are_refused_before_any_work(clip_video, tmp_path, capfd):  # noqa: F811
    video, box = clip_video
    csv = tmp_path / "o.csv"
    code, _, err = _run(capfd, "track", video, "--box", box, "--boxes", csv, "--threads", 999, "--device", "cpu")
    assert code == 2
    assert err == (f"siamtrack: error: --threads 999 is more than the {usable_cores()} CPU cores this process may use; "
                   f"pass --threads {usable_cores()} or fewer (or leave it out: the cores other processes leave free)\n")
    assert not csv.exists()
