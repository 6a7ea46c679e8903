"""The teacher ensemble of box distillation: the confidence-weighted combination (hand-computed), LightTrack's
maps re-expressed on the student's grid (against its own loop's decoding, and the target it sees), and a
training run with NanoTrack-v3 + LightTrack as teachers."""
import math

import numpy as np
import pytest
import torch

from conftest import SHARED, nanotrack_files
from test_trainer import data, run_in_process, setup_of, tiny_args  # noqa: F401 (data is a fixture)
from tracker.crops import crop
from tracker.datasets import load_dataset
from tracker.errors import SiamTrackError
from tracker.evaluation.onnx_peers.scoring import grid_points as peer_grid
from tracker.models import load_checkpoint
from tracker.training.box_targets import grid_points
from tracker.training.ensemble import LightTrackTeacher, combine, pad_to
from tracker.training.trainer import Trainer

LIGHTTRACK = SHARED / "reference" / "lighttrack"


@pytest.fixture(scope="module")
def lighttrack(shared_dir) -> LightTrackTeacher:
    if not (LIGHTTRACK / "lighttrack_head.onnx").is_file():
        pytest.skip(f"LightTrack graphs not found in {LIGHTTRACK} (CI provides ../shared)")
    return LightTrackTeacher(LIGHTTRACK)


def test_combine_weights_each_teacher_by_its_peak_and_each_box_by_its_probability():
    a = torch.tensor([[[0.8, 0.2], [0.1, 0.0]]])  # peak 0.8
    b = torch.tensor([[[0.0, 0.4], [0.2, 0.1]]])  # peak 0.4
    la, lb = torch.full((1, 4, 2, 2), 10.0), torch.full((1, 4, 2, 2), 40.0)
    logits, loc = combine([a, b], [la, lb])
    wa, wb = 0.8 / 1.2, 0.4 / 1.2
    prob = torch.softmax(logits, 1)[:, 1]
    assert torch.allclose(prob, (wa * a + wb * b).clamp(1e-6, 1 - 1e-6), atol=1e-6)
    # top-right point: a says 0.2, b says 0.4 there, so the box is (wa*0.2*10 + wb*0.4*40) / (wa*0.2 + wb*0.4)
    want = (wa * 0.2 * 10 + wb * 0.4 * 40) / (wa * 0.2 + wb * 0.4)
    assert loc[0, :, 0, 1].tolist() == pytest.approx([want] * 4)
    assert loc[0, :, 0, 0].tolist() == pytest.approx([10.0] * 4)  # b sees nothing at the top-left point


def test_crops_grow_by_repeating_the_last_row_and_column():
    crops = np.arange(2 * 3 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3, 3)
    grown = pad_to(crops, 4)
    assert grown.shape == (2, 4, 4, 3) and np.array_equal(grown[:, :3, :3], crops)
    assert np.array_equal(grown[:, 3, :3], crops[:, 2]) and np.array_equal(grown[:, :3, 3], crops[:, :, 2])
    with pytest.raises(ValueError, match="larger than the teacher's 2 px input"):
        pad_to(crops, 2)


def test_lighttrack_boxes_on_the_students_grid_are_its_own_boxes_and_find_the_target(lighttrack):
    (seq,) = load_dataset(SHARED / "data" / "sequences", names=["Crossing"])
    frames = seq.frames()
    first, later = next(frames), [next(frames) for _ in range(5)][-1]
    x, y, w, h = seq.boxes[0]
    cx, cy = x + (w - 1) / 2, y + (h - 1) / 2
    z_side = math.sqrt((w + (w + h) / 2) * (h + (w + h) / 2))
    colour = tuple(float(v) for v in first.mean(axis=(0, 1)))
    z = crop(first, cx, cy, z_side, 127, colour)[None]
    s = crop(later, cx, cy, 2 * z_side, 255, colour)[None]
    prob, loc = lighttrack(z, s)
    assert prob.shape == (1, 16, 16) and loc.shape == (1, 4, 16, 16)
    # decoded from the student's grid (points at 127 + (i - 8) * 16) = decoded from LightTrack's (128 + ...)
    ours = grid_points(16) + 127
    theirs = peer_grid(16, 16, 256)
    assert np.allclose(theirs - ours.numpy(), 1.0)
    r, c = np.unravel_index(int(prob[0].argmax()), (16, 16))
    l, t, rr, b = loc[0, :, r, c].tolist()
    box = (ours[c] - l, ours[r] - t, ours[c] + rr, ours[r] + b)
    reg = (loc[0, :, r, c] + torch.tensor([1.0, 1.0, -1.0, -1.0])).tolist()  # LightTrack's raw l, t, r, b
    assert box == pytest.approx((theirs[c] - reg[0], theirs[r] - reg[1], theirs[c] + reg[2], theirs[r] + reg[3]))
    # the target of frame 5, in crop pixels, is where LightTrack's peak box is (IoU > 0.6)
    scale = 255 / (2 * z_side)
    gx, gy, gw, gh = seq.boxes[5]
    truth = (127 + (gx - cx) * scale, 127 + (gy - cy) * scale, 127 + (gx + gw - cx) * scale, 127 + (gy + gh - cy) * scale)
    inter = max(0, min(box[2], truth[2]) - max(box[0], truth[0])) * max(0, min(box[3], truth[3]) - max(box[1], truth[1]))
    union = (box[2] - box[0]) * (box[3] - box[1]) + (truth[2] - truth[0]) * (truth[3] - truth[1]) - inter
    assert prob[0, r, c] > 0.5 and inter / union > 0.6


def test_training_with_nanotrack_v3_and_lighttrack_as_teachers(data, tmp_path, lighttrack):  # noqa: F811
    state_dict = nanotrack_files("v3")[0]
    got, imgs = data
    base = ["--family", "box", "--sequences", str(got), "--split", "", "--images", str(imgs),
            "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "nt"), "--epochs", "1", "--pairs-per-epoch", "8",
            "--batch-size", "4", "--threads", "1", "--progress", "false", "--lr", "1e-4", "--freeze", "4",
            "--init", str(state_dict)]
    argv = base + ["--teacher", str(state_dict), "--teacher-lighttrack", str(LIGHTTRACK)]
    trainer = Trainer(setup_of(argv)[0])
    batch = next(iter(trainer._loaders(0)[0]))
    loss, parts = trainer.loss(batch)
    assert {"distill_cls", "distill_box", "distill_feature"} <= set(parts) and torch.isfinite(loss)
    out = run_in_process(argv)
    _, _, meta = load_checkpoint(out / "epoch_001.pth")
    assert meta["setup"]["train"]["teacher_lighttrack"] == str(LIGHTTRACK)
    with pytest.raises(SiamTrackError, match="--teacher-lighttrack joins a box-family --teacher"):
        Trainer(setup_of(base + ["--teacher-lighttrack", str(LIGHTTRACK)])[0])
    with pytest.raises(SiamTrackError, match="not used by --family siamfc: --teacher-lighttrack"):
        setup_of(tiny_args(data, tmp_path, "fc", "--teacher-lighttrack", str(LIGHTTRACK)))
