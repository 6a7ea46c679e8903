"""The teacher ensemble of box distillation: the confidence-weighted combination (hand-computed), LightTrack's
maps re-expressed on the student's grid (against its own loop's decoding, and the target it sees), a
centre-family teacher's maps read at the box grid through the image (hand-computed; LightFC on a real
pair), and training runs with NanoTrack-v3 + LightTrack and with a centre teacher joining."""
import math

import numpy as np
import pytest
import torch

from conftest import SHARED, nanotrack_files
from test_trainer import data, run_in_process, setup_of, tiny_args  # noqa: F401 (data is a fixture)
from tracker.training.data import collate
from tracker.training.distill import to_input
from tracker.crops import crop
from tracker.datasets import load_dataset
from tracker.errors import SiamTrackError
from tracker.evaluation.onnx_peers.scoring import grid_points as peer_grid
from tracker.models import load_checkpoint
from tracker.training.box_targets import grid_points
from tracker.training.ensemble import CentreMapTeacher, LightTrackTeacher, centre_maps_on_box_grid, combine, pad_to
from tracker.training.trainer import Trainer

LIGHTTRACK = SHARED / "reference" / "lighttrack"
LIGHTFC = SHARED / "reference" / "lightfc"


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


def crossing_pair() -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """Box-family crops (127 / 255 px) of Crossing's frames 0 and 5 around frame 0's box, and frame 5's box in
    search-crop pixels (x1, y1, x2, y2)."""
    (seq,) = load_dataset(SHARED / "data" / "sequences", names=["Crossing"])
    frames = seq.frames()
    first, later = next(frames), [next(frames) for _ in range(5)][-1]
    x, y, w, h = seq.boxes[0]
    cx, cy = x + (w - 1) / 2, y + (h - 1) / 2
    z_side = math.sqrt((w + (w + h) / 2) * (h + (w + h) / 2))
    colour = tuple(float(v) for v in first.mean(axis=(0, 1)))
    z = crop(first, cx, cy, z_side, 127, colour)[None]
    s = crop(later, cx, cy, 2 * z_side, 255, colour)[None]
    scale = 255 / (2 * z_side)
    gx, gy, gw, gh = seq.boxes[5]
    return z, s, (127 + (gx - cx) * scale, 127 + (gy - cy) * scale, 127 + (gx + gw - cx) * scale,
                  127 + (gy + gh - cy) * scale)


def peak_box(prob: torch.Tensor, loc: torch.Tensor) -> tuple[float, tuple[float, ...]]:
    """(probability, x1, y1, x2, y2 in crop px) at the peak of one pair's 16 x 16 maps on the student's grid."""
    ours = grid_points(16) + 127
    r, c = np.unravel_index(int(prob[0].argmax()), (16, 16))
    l, t, rr, b = loc[0, :, r, c].tolist()
    return float(prob[0, r, c]), (float(ours[c] - l), float(ours[r] - t), float(ours[c] + rr), float(ours[r] + b))


def box_iou(a, b) -> float:
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_lighttrack_boxes_on_the_students_grid_are_its_own_boxes_and_find_the_target(lighttrack):
    z, s, truth = crossing_pair()
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
    peak, found = peak_box(prob, loc)
    assert found == pytest.approx(tuple(float(v) for v in box))
    assert peak > 0.5 and box_iou(found, truth) > 0.6


def test_a_centre_teachers_boxes_and_score_are_read_at_the_box_grid_through_the_image():
    m, side, n = 16, 255, 16
    cells = torch.arange(m, dtype=torch.float32)
    # every cell points at one centre (crop fractions 0.6, 0.45) with one size (0.2, 0.3 of the crop)
    offset = torch.stack([(0.6 * m - cells.view(1, m)).expand(m, m), (0.45 * m - cells.view(m, 1)).expand(m, m)])[None]
    size = torch.tensor([0.2, 0.3]).view(1, 2, 1, 1).expand(1, 2, m, m)
    score = ((cells.view(1, m) + 0.5) / m).expand(m, m)[None, None]  # each cell scores its own centre's x fraction
    prob, loc = centre_maps_on_box_grid(score, size, offset, side, n)
    assert prob.shape == (1, n, n) and loc.shape == (1, 4, n, n)
    # by hand: centre (0.1 * 255, -0.05 * 255) = (25.5, -12.75) px from the crop centre, half sizes 25.5 and 38.25;
    # point (0, 0) sits at (-128, -128): l = -128 - 0, t = -128 - (-51), r = 51 + 128, b = 25.5 + 128
    assert loc[0, :, 0, 0].tolist() == pytest.approx([-128.0, -77.0, 179.0, 153.5], abs=1e-3)
    # point (8, 9) at (16, 0): l = 16 - 0, t = 0 + 51, r = 51 - 16, b = 25.5 - 0 (its box is the same box)
    assert loc[0, :, 8, 9].tolist() == pytest.approx([16.0, 51.0, 35.0, 25.5], abs=1e-3)
    # the score ramp reads back as each point's own x fraction, the border cells repeated beyond their centres
    want = (grid_points(n) / side + 0.5).clamp(0.5 / m, 1 - 0.5 / m)
    assert torch.allclose(prob[0], want.view(1, n).expand(n, n), atol=1e-5)


@pytest.fixture(scope="module")
def lightfc(shared_dir) -> CentreMapTeacher:
    if not (LIGHTFC / "lightfc_weights.bin").is_file():
        pytest.skip(f"LightFC's graphs not found in {LIGHTFC} (CI provides ../shared)")
    return CentreMapTeacher(LIGHTFC, torch.device("cpu"))


def test_lightfc_on_box_crops_finds_the_target_and_keeps_its_own_peak(lightfc, lighttrack):
    z, s, truth = crossing_pair()
    prob, loc = lightfc(z, s)
    assert prob.shape == (1, 16, 16) and loc.shape == (1, 4, 16, 16)
    raw = lightfc.network(*(to_input(a, torch.device("cpu"), "rgb") for a in (z, s))).maps[0]
    peak, found = peak_box(prob, loc)
    assert peak == pytest.approx(float(raw.max()), abs=1e-6)
    assert box_iou(found, truth) > 0.6
    # both teachers agree on the target (LightTrack's own box, same crops)
    assert box_iou(found, peak_box(*lighttrack(z, s))[1]) > 0.6


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


def test_training_the_box_family_with_a_centre_teacher_joining_the_ensemble(data, tmp_path):  # noqa: F811
    centre = run_in_process(tiny_args(data, tmp_path, "centre", "--epochs", "1", family="centre"))  # 64 / 128 px
    box = run_in_process(tiny_args(data, tmp_path, "box", "--epochs", "1", family="box"))            # 63 / 127 px
    argv = tiny_args(data, tmp_path, "student", "--epochs", "1", "--teacher", str(box / "epoch_001.pth"),
                     "--teacher-centre", str(centre / "epoch_001.pth"), family="box")
    trainer = Trainer(setup_of(argv)[0])
    (member,) = trainer.teacher.members
    batch = collate([trainer.dataset[i] for i in range(4)])
    prob, loc = member(*batch[:2])
    assert prob.shape == (4, 8, 8) and loc.shape == (4, 4, 8, 8)  # 127 px: points -64 ... 48, the student's 7 x 7 and one
    raw = member.network(*(to_input(a, trainer.device, "bgr") for a in batch[:2])).maps[0]
    assert torch.allclose(prob.flatten(1).amax(1), raw.flatten(1).amax(1), rtol=0, atol=1e-6)
    taught = trainer.teacher(*(to_input(a, trainer.device, "bgr") for a in batch[:2]), *batch[:2])
    assert taught.maps[0].shape == (4, 2, 7, 7) and taught.maps[1].shape == (4, 4, 7, 7)
    loss, parts = trainer.loss(batch)
    assert {"distill_cls", "distill_box", "distill_feature"} <= set(parts) and torch.isfinite(loss)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in trainer.model.parameters() if p.grad is not None)
    out = run_in_process(argv)
    assert load_checkpoint(out / "epoch_001.pth")[2]["setup"]["train"]["teacher_centre"] == str(centre / "epoch_001.pth")
    without = [a for a in argv if a not in ("--teacher", str(box / "epoch_001.pth"))]
    with pytest.raises(SiamTrackError, match="--teacher-centre joins a box-family --teacher"):
        Trainer(setup_of(without)[0])
    with pytest.raises(SiamTrackError, match=r"--teacher-centre .* is a box network but --teacher-centre takes a "
                                             "centre-family network"):
        Trainer(setup_of(argv[:-1] + [str(box / "epoch_001.pth")])[0])
    with pytest.raises(SiamTrackError, match="not used by --family centre: --teacher-centre"):
        setup_of(tiny_args(data, tmp_path, "c", "--teacher-centre", str(centre / "epoch_001.pth"), family="centre"))
