"""Teacher-labelled targets (training.mining, tools/mine_targets.py): the proposals' constraints, the window
spread (hand-computed), the forward-backward rule on a scripted tracker (a confident track is kept with its
boxes, a score dip or a drift onto another object is dropped), a real mining run on a written clip whose
folders train like any sequence, and validation pieces left out of training by name."""
import json
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np

from test_training_data import write_got10k
from tracker import MultiTracker
from tracker.datasets import load_dataset, write_sequence
from tracker.splits import load_splits
from tracker.synthetic import demo_clip
from tracker.training.data import training_sequences
from tracker.training.mining import MiningConfig, iou, mine, mine_window, propose, window_starts

ROOT = Path(__file__).resolve().parents[1]


def test_window_starts_spread_evenly_and_need_a_whole_window():
    cfg = MiningConfig(windows=3, length=20)
    assert window_starts(100, cfg) == [0, 40, 80]
    assert window_starts(20, cfg) == [0]
    assert window_starts(19, cfg) == []


def test_proposals_are_textured_inside_the_frame_of_a_target_size_and_overlap_nothing():
    rng = np.random.default_rng(0)
    frame = np.full((240, 320, 3), 128, np.uint8)
    frame[:, :160] = rng.integers(0, 256, (240, 160, 3), dtype=np.uint8)  # texture on the left, flat on the right
    target = np.array([20.0, 20.0, 60.0, 60.0])
    cfg = MiningConfig(proposals=8, min_side=0.1, max_side=0.25)
    boxes = propose(frame, [target], np.random.default_rng(1), cfg)
    assert len(boxes) == 8
    for k, (x, y, w, h) in enumerate(boxes):
        assert x >= 0 and y >= 0 and x + w <= 320 and y + h <= 240
        assert 24 - 1e-9 <= np.sqrt(w * h) <= 60 + 1e-9 and max(w / h, h / w) <= 2 + 1e-9
        assert x < 160 - 0.3 * w  # a box mostly on the flat half has too little contrast
        assert iou(boxes[k], target) <= 0.1
        assert all(iou(boxes[k], other) <= 0.1 for other in boxes[:k])
    flat = np.full((240, 320, 3), 90, np.uint8)
    assert propose(flat, [], np.random.default_rng(1), cfg) == []


class Scripted:
    """A stand-in teacher on frames whose pixel (0, 0, 0) holds the frame index: objects move on scripted
    trajectories; a target started on one follows it (or, from frame ``switch[name][0]`` on, another object
    ``switch[name][1]``, a drift) and scores ``score[name](t)``."""

    def __init__(self, tracks, score, switch):
        self.tracks, self.score, self.switch, self.targets = tracks, score, switch, []

    def add(self, frame, box):
        t = int(frame[0, 0, 0])
        name = min(self.tracks, key=lambda n: np.abs(self.tracks[n][t] - np.asarray(box)).sum())
        self.targets.append(name)
        return len(self.targets) - 1

    def update(self, frame):
        t = int(frame[0, 0, 0])
        out = {}
        for tid, name in enumerate(self.targets):
            shown = self.switch[name][1] if name in self.switch and t >= self.switch[name][0] else name
            out[tid] = type("Result", (), {"box": tuple(self.tracks[shown][t]), "score": self.score[name](t),
                                           "lost": False})()
        return out


def test_the_teacher_must_stay_sure_and_come_back_to_the_proposal():
    length = 12
    t = np.arange(length)[:, None]
    tracks = {"a": np.hstack([10 + 2 * t, 0 * t + 10, 0 * t + 20, 0 * t + 20]).astype(float),
              "b": np.hstack([100 + 0 * t, 10 + t, 0 * t + 30, 0 * t + 30]).astype(float),
              "c": np.hstack([10 + 0 * t, 100 + 0 * t, 0 * t + 20, 0 * t + 40]).astype(float),
              "d": np.hstack([60 + 3 * t, 120 + 0 * t, 0 * t + 20, 0 * t + 40]).astype(float)}
    score = {"a": lambda i: 0.9, "b": lambda i: 0.3 if i == 5 else 0.9, "c": lambda i: 0.8, "d": lambda i: 0.8}
    teacher = partial(Scripted, tracks, score, {"c": (6, "d")})  # c's track slides onto d at frame 6
    frames = [np.full((4, 4, 3), i, np.uint8) for i in range(length)]
    cfg = MiningConfig(length=length, min_score=0.5, min_return_iou=0.7)
    kept = mine_window(teacher, frames, [tracks[n][0] for n in "abc"], cfg)
    assert len(kept) == 1 and np.array_equal(kept[0], tracks["a"])  # b dips to 0.3; c comes back as d, far away
    assert mine_window(teacher, frames, [tracks["b"][0]], MiningConfig(length=length, min_score=0.25)) != []
    assert mine_window(teacher, frames, [], cfg) == []


def test_mining_a_clip_writes_sequences_that_train_and_validation_pieces_are_left_out(tmp_path):
    clip = demo_clip(seed=3, n_frames=40)
    source = write_sequence(tmp_path / "data" / "clip", iter(clip), clip.boxes)
    (seq,) = load_dataset(source.parent)
    cfg = MiningConfig(windows=2, length=10, proposals=4, min_side=0.15, max_side=0.3, min_score=0.3)
    out = tmp_path / "mined"
    summary = mine([seq], partial(MultiTracker, None, device="cpu", threads=1), cfg, out, "siamtrack_box", log=None)
    written = sorted(p for p in out.iterdir() if p.is_dir())
    assert summary["total"] == len(written) == summary["targets"]["clip"] > 0
    assert json.loads((out / "mined.json").read_text())["config"]["length"] == 10
    mined = load_dataset(out)
    for piece in mined:
        name, first, k = piece.name.split("~")
        assert name == "clip" and int(first) in (0, 30) and len(piece) == 10
        assert np.isfinite(piece.boxes).all()
        assert iou(piece.boxes[0], clip.boxes[int(first)]) <= 0.1  # never the annotated target
    # a piece cut from a validation sequence never trains, whatever folder holds it
    val_name = sorted(load_splits().validation_names)[0]
    (out / written[0].name).rename(out / f"{val_name}~00000~0")
    kept = training_sequences("", "", [str(out)], log=None)
    assert f"{val_name}~00000~0" not in {s.name for s in kept} and len(kept) == len(written) - 1


def test_the_tool_refuses_a_validation_split_and_a_bad_teacher_in_one_line(tmp_path):
    got = write_got10k(tmp_path / "got", n_seq=1, n_frames=4)
    tool = [sys.executable, str(ROOT / "tools" / "mine_targets.py")]
    run = partial(subprocess.run, capture_output=True, text=True, cwd=tmp_path)
    bad = run(tool + [str(got), "--split", "", "--teacher", str(tmp_path / "nothing.pth"), "--out", str(tmp_path / "o")])
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and len(bad.stderr.strip().splitlines()) == 1
    val = run(tool + [str(got), "--split", "validation", "--teacher", "siamtrack_box", "--out", str(tmp_path / "o")])
    assert val.returncode == 2 and "validation sequences, which are never trained on" in val.stderr
    assert not (tmp_path / "o").exists()
