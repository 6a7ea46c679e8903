"""`siamtrack track` / `siamtrack demo` end to end: playable outputs, one-line errors, exit codes."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from test_io import write_video  # importing tracker.io quiets FFmpeg before the fixtures use it, as the CLI does
from tracker.cli import main
from tracker.synthetic import gap_clip

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def _count_frames(path):
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.grab():
        n += 1
    return n


def _rows(csv):
    lines = Path(csv).read_text().splitlines()
    assert lines[0] == "frame,x,y,w,h,score,lost"
    return [line.split(",") for line in lines[1:]]


@pytest.fixture(scope="module")
def clip_video(tmp_path_factory):
    """A 24-frame mp4 of a generated clip (the object leaves and returns) and its first truth box."""
    clip = gap_clip("leave", gap=3, width=160, height=120, speed=8.0, lead=2, tail=0)
    frames = list(clip)[:24]
    path = write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", frames)
    return path, ",".join(f"{v:g}" for v in clip.truth(0))


def _weights_args(weights):
    return [] if weights is None else ["--weights", weights]


def _run(capfd, *argv):
    """Run the CLI in-process; return (exit code, stdout, stderr) with fd-level capture."""
    code = main([str(a) for a in argv])
    out, err = capfd.readouterr()
    return code, out, err


def test_track_writes_a_playable_video_and_one_csv_row_per_frame(clip_video, weights, tmp_path, capfd):
    video, box = clip_video
    out, csv = tmp_path / "out.mp4", tmp_path / "out.csv"
    code, stdout, err = _run(capfd, "track", video, "--box", box, "--output", out, "--boxes", csv, "--device", "cpu",
                             *_weights_args(weights))
    assert code == 0, err
    assert stdout.startswith("tracked 24 frames in ") and f"wrote {out}, {csv}" in stdout
    assert _count_frames(out) == 24
    cap = cv2.VideoCapture(str(out))
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (160, 120)
    rows = _rows(csv)
    assert [int(r[0]) for r in rows] == list(range(24))
    assert [float(v) for v in rows[0][1:5]] == [float(v) for v in box.split(",")]
    assert rows[0][5:] == ["1.0000", "0"]
    assert all(np.isfinite([float(v) for v in r[1:6]]).all() and r[6] in ("0", "1") for r in rows)


def test_track_image_folder_with_max_frames(clip_video, weights, tmp_path, capfd):
    video, box = clip_video
    cap = cv2.VideoCapture(str(video))
    for i in range(6):
        cv2.imwrite(str(tmp_path / f"{i}.png"), cap.read()[1])
    csv = tmp_path / "b.csv"
    code, stdout, err = _run(capfd, "track", tmp_path, "--box", box, "--boxes", csv, "--max-frames", 4,
                             "--device", "cpu", *_weights_args(weights))
    assert code == 0, err
    assert len(_rows(csv)) == 4 and stdout.startswith("tracked 4 frames")


def test_track_on_a_real_sequence(weights, tmp_path, capfd):
    seq = SHARED / "data" / "sequences" / "Basketball"
    if not seq.is_dir():
        pytest.skip(f"development data not found at {SHARED}")
    box = (seq / "groundtruth.txt").read_text().splitlines()[0]
    out, csv = tmp_path / "b.mp4", tmp_path / "b.csv"
    code, _, err = _run(capfd, "track", seq / "video.mp4", "--box", box, "--output", out, "--boxes", csv,
                        "--max-frames", 30, "--device", "cpu", *_weights_args(weights))
    assert code == 0, err
    assert _count_frames(out) == 30 and len(_rows(csv)) == 30
    truth = np.loadtxt(seq / "groundtruth.txt", delimiter=",")[:30]
    got = np.array([[float(v) for v in r[1:5]] for r in _rows(csv)])
    centre_error = np.hypot(*(got[:, :2] + got[:, 2:] / 2 - truth[:, :2] - truth[:, 2:] / 2).T)
    assert np.median(centre_error) < 15  # on the player, not just "some numbers"


def test_truncated_video_keeps_the_frames_before_and_exits_2(clip_video, weights, tmp_path, capfd):
    video, box = clip_video
    cap = cv2.VideoCapture(str(video))
    data = write_video(tmp_path / "v.avi", [cap.read()[1] for _ in range(24)]).read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    out, csv = tmp_path / "o.mp4", tmp_path / "o.csv"
    code, _, err = _run(capfd, "track", cut, "--box", box, "--output", out, "--boxes", csv, "--device", "cpu",
                        *_weights_args(weights))
    n = len(_rows(csv))
    assert code == 2 and 3 < n < 20
    assert err == (f"siamtrack: error: {cut}: frame {n} of 24 could not be decoded (file truncated or corrupt); "
                   f"frames 0-{n - 1} were processed, frames {n}-23 are missing\n")
    assert _count_frames(out) == n


def test_partly_outside_box_is_clipped_with_a_one_line_warning(clip_video, weights, tmp_path, capfd):
    video, _ = clip_video
    csv = tmp_path / "b.csv"
    code, _, err = _run(capfd, "track", video, "--box=-10,40,50,30", "--boxes", csv, "--max-frames", 2,
                        "--device", "cpu", *_weights_args(weights))
    assert code == 0
    assert err == "siamtrack: warning: box -10,40,50,30 extends past the 160x120 frame; clipped to 0,40,40,30\n"
    assert _rows(csv)[0][1:5] == ["0.00", "40.00", "40.00", "30.00"]


def _bad_inputs(tmp_path, video):
    """(name, argv, expected stderr line) for every bad input the CLI refuses before tracking."""
    empty = tmp_path / "empty"
    empty.mkdir()
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x01 not a video" * 300)
    zero = tmp_path / "zero.avi"
    cv2.VideoWriter(str(zero), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48)).release()
    taken = tmp_path / "taken.mp4"
    taken.write_bytes(b"x")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"PK\x03\x04 truncated zip")
    other = tmp_path / "other.pth"
    torch.save({"backbone.conv1.0.weight": torch.zeros(8, 3, 3, 3)}, other)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    cv2.imwrite(str(mixed / "1.png"), np.zeros((48, 64, 3), np.uint8))
    cv2.imwrite(str(mixed / "2.png"), np.zeros((40, 40, 3), np.uint8))
    t = ["track", video, "--box", "40,40,30,30"]
    out = ["--output", tmp_path / "o.mp4"]
    return [
        ("missing input", ["track", tmp_path / "nope.mp4", "--box", "1,2,3,4"],
         f"input {tmp_path / 'nope.mp4'} does not exist; give a video file, a folder of images or a webcam index"),
        ("empty folder", ["track", empty, "--box", "1,2,3,4"], f"folder {empty} contains no images"),
        ("unreadable file", ["track", garbage, "--box", "1,2,3,4"],
         f"cannot open video {garbage}: not a video OpenCV/FFmpeg can decode"),
        ("zero-frame file", ["track", zero, "--box", "1,2,3,4"], f"{zero} contains no decodable frames"),
        ("webcam that does not open", ["track", "97", "--box", "1,2,3,4"], "cannot open webcam 97; check the index"),
        ("folder of mixed sizes", ["track", mixed, "--box", "1,2,30,30"], "is 40x40 but the first image is 64x48"),
        ("box: 3 values", ["track", video, "--box", "1,2,3"], "box must have 4 values x,y,w,h; got 3 ('1,2,3')"),
        ("box: not numbers", ["track", video, "--box", "a,b,c,d"], "box values must be numbers x,y,w,h; got 'a,b,c,d'"),
        ("box: NaN", ["track", video, "--box", "1,2,nan,4"], "box values must be finite numbers; got '1,2,nan,4'"),
        ("box: inf", ["track", video, "--box", "1,2,inf,4"], "box values must be finite numbers"),
        ("box: zero size", ["track", video, "--box", "1,2,0,4"], "box width and height must be positive; got w=0, h=4"),
        ("box: negative size", ["track", video, "--box", "1,2,5,-4"], "box width and height must be positive"),
        ("box: outside the frame", ["track", video, "--box", "500,500,20,20"],
         "box 500,500,20,20 lies entirely outside the 160x120 frame; give a box on the target"),
        ("box: under 2 px", ["track", video, "--box", "10,10,1.5,8"], "box 1.5x8 px is too small to track"),
        ("no box", ["track", video], "give the target box with --box x,y,w,h or pick it with --select (one of the two)"),
        ("box and --select", [*t, "--select"], "give the target box with --box x,y,w,h or pick it with --select"),
        ("--select without display", ["track", video, "--select"],
         "--select needs a display but none was found ($DISPLAY is not set); pass --box x,y,w,h instead"),
        ("--show without display", [*t, "--show"], "--show needs a display but none was found"),
        ("output exists", [*t, "--output", taken], f"{taken} already exists; pass --overwrite to replace it"),
        ("output folder missing", [*t, "--boxes", tmp_path / "no" / "b.csv"],
         f"cannot write {tmp_path / 'no' / 'b.csv'}: folder {tmp_path / 'no'} does not exist; create it first"),
        ("output not a video name", [*t, "--output", tmp_path / "o.mkv"], "must end in .mp4 or .avi"),
        ("output is the input", [*t, "--output", video, "--overwrite"], f"output {video} is the input video"),
        ("output = boxes", [*t, *out, "--boxes", tmp_path / "o.mp4"], "--output and --boxes are the same file"),
        ("weights: missing file", [*t, "--weights", tmp_path / "none.pth"], "none.pth"),
        ("weights: corrupt file", [*t, "--weights", corrupt], "corrupt.pth"),
        ("weights: foreign state dict", [*t, "--weights", other], "other.pth is neither a siamtrack checkpoint"),
        ("device: CUDA without GPU", [*t, "--device", "cuda"], "device 'cuda' requested but no CUDA GPU is available"),
        ("device: unknown", [*t, "--device", "tpu"], "device 'tpu'"),
        ("--threads 0", [*t, "--threads", "0"], "--threads must be at least 1, got 0"),
        ("--max-frames 0", [*t, "--max-frames", "0"], "--max-frames must be at least 1, got 0"),
        ("demo: input without truth", ["demo", empty, "--output", tmp_path / "d.mp4"],
         f"demo input {empty} must be a sequence folder"),
        ("demo: output exists", ["demo", "--output", taken], f"{taken} already exists; pass --overwrite"),
        ("demo: --frames 1", ["demo", "--frames", "1"], "--frames must be at least 2, got 1"),
    ]


def _check_bad_inputs(capfd, monkeypatch, weights, tmp_path, video):
    """Run every bad input; each must exit 2 with its own one-line error and write nothing."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if torch.cuda.is_available():
        pytest.skip("the CUDA-without-GPU case needs a machine without a GPU")
    failures = []
    for name, argv, expected in _bad_inputs(tmp_path, video):
        if weights is not None and "--weights" not in argv:
            argv = [*argv, "--weights", weights]
        code, stdout, err = _run(capfd, *argv)
        ok = (code == 2 and err.startswith("siamtrack: error: ") and err.endswith("\n") and err.count("\n") == 1
              and expected in err and not stdout)
        if not ok:
            failures.append(f"{name}: exit {code}, stderr {err!r}")
    assert not failures, "\n".join(failures)
    assert not (tmp_path / "o.mp4").exists() and (tmp_path / "taken.mp4").read_bytes() == b"x"  # nothing written


def test_every_bad_input_is_one_line_and_exit_2(clip_video, weights, tmp_path, capfd, monkeypatch):
    _check_bad_inputs(capfd, monkeypatch, weights, tmp_path, clip_video[0])


def test_bad_inputs_get_their_own_errors_where_the_demo_left_demo_mp4(clip_video, weights, tmp_path, capfd,
                                                                      monkeypatch):
    """The README's order: `siamtrack demo` writes demo.mp4 into the current folder, then the tests run there."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    monkeypatch.chdir(checkout)
    code, _, err = _run(capfd, "demo", "--frames", 3, "--device", "cpu", *_weights_args(weights))
    assert code == 0, err
    assert (checkout / "demo.mp4").is_file()
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    _check_bad_inputs(capfd, monkeypatch, weights, inputs, clip_video[0])


def test_demo_generates_tracks_and_reports_iou(weights, tmp_path, capfd):
    out = tmp_path / "demo.mp4"
    code, stdout, err = _run(capfd, "demo", "--output", out, "--frames", 40, "--device", "cpu", *_weights_args(weights))
    assert code == 0, err
    lines = stdout.splitlines()
    assert lines[0].startswith("tracked 40 frames in ") and lines[0].endswith(f"wrote {out}")
    assert lines[1].startswith("mean IoU against the known truth: ") and lines[1].endswith("over 39 frames after the first")
    assert float(lines[1].split(": ")[1].split()[0]) > 0.5  # a lost tracker scores < 0.2
    assert _count_frames(out) == 40


def test_demo_on_a_sequence_folder(weights, tmp_path, capfd):
    clip = gap_clip("occlude", gap=2, width=160, height=120, lead=1, tail=0)
    seq = tmp_path / "seq"
    seq.mkdir()
    write_video(seq / "video.mp4", list(clip))
    np.savetxt(seq / "groundtruth.txt", clip.boxes, delimiter=",", fmt="%g")
    code, stdout, err = _run(capfd, "demo", seq, "--output", tmp_path / "d.mp4", "--device", "cpu",
                             *_weights_args(weights))
    assert code == 0, err
    assert f"over {len(clip) - 1} frames after the first" in stdout


def test_ctrl_c_leaves_a_playable_video_and_a_complete_csv(weights, tmp_path):
    """A real process, a real SIGINT: exit 130, and the video and the CSV end on the same frame."""
    clip = gap_clip("leave", gap=5, width=96, height=96, speed=4.0)
    video = write_video(tmp_path / "long.mp4", list(clip) * 4)
    out, csv = tmp_path / "o.mp4", tmp_path / "o.csv"
    argv = [sys.executable, "-m", "tracker", "track", str(video), "--box", ",".join(map(str, clip.truth(0))),
            "--output", str(out), "--boxes", str(csv), "--device", "cpu", "--threads", "1", *_weights_args(weights)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not csv.exists() or len(csv.read_text().splitlines()) < 4):
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    rows = _rows(csv)
    assert proc.returncode == 130
    assert f"siamtrack: interrupted after {len(rows)} frames; {out}, {csv} hold them" in err
    assert 3 <= len(rows) < 4 * len(clip)
    assert _count_frames(out) == len(rows)
