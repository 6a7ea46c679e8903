"""Box-family training targets against hand-computed grids and SiamBAN's own ellipse formula."""
import argparse
import math

import pytest
import torch

from tracker.training.box_targets import BoxTargetConfig, align_grids, box_targets, centerness, grid_points
from tracker.training.options import add_arguments, from_args

SHRINK = BoxTargetConfig(region="shrink")


def test_grid_points_follow_nanotrack_convention():
    assert grid_points(16).tolist() == [-128 + 16 * j for j in range(16)]
    assert grid_points(15).tolist() == [-112 + 16 * j for j in range(15)]
    assert grid_points(3, stride=8).tolist() == [-8, 0, 8]


def test_three_by_three_square_box_one_positive():
    # 32 x 32 box at the centre, points at -16, 0, 16: u = x / 16, v = y / 16
    t = box_targets(torch.tensor([[0.0, 0.0, 32.0, 32.0]]), torch.tensor([True]), size=3)
    assert t.cls.dtype == torch.int64 and t.cls.shape == (1, 3, 3)
    # centre d = 0 -> positive; edges d = 1 (not > 1) -> ignore; corners d = sqrt 2 -> negative
    assert t.cls[0].tolist() == [[0, -1, 0], [-1, 1, -1], [0, -1, 0]]
    # the shrunken box: corners max(|u|, |v|) = 1 is not outside the box -> ignore
    assert box_targets(torch.tensor([[0.0, 0.0, 32.0, 32.0]]), torch.tensor([True]), 3, config=SHRINK).cls[0].tolist() \
        == [[-1, -1, -1], [-1, 1, -1], [-1, -1, -1]]
    assert t.loc.shape == (1, 4, 3, 3)
    assert t.loc[0, :, 1, 1].tolist() == [16, 16, 16, 16]
    # point (x 16, y -16) is the box's top-right corner: l = 32, t = 0, r = 0, b = 32
    assert t.loc[0, :, 0, 2].tolist() == [32, 0, 0, 32]
    assert t.centerness[0, 1, 1].item() == 1.0 and t.centerness[0, 0, 2].item() == 0.0


def test_off_centre_box_regression_and_shrink_scales():
    # box (cx 20, cy -10, w 64, h 32) = x in [-12, 52], y in [-26, 6] on a 5 x 5 grid of stride 16
    box = torch.tensor([[20.0, -10.0, 64.0, 32.0]])
    t = box_targets(box, torch.tensor([True]), 5, config=BoxTargetConfig("shrink", 0.5, 1.5))
    x = grid_points(5)
    assert t.loc[0, 0, 2].tolist() == (x + 12).tolist()       # l = x - x1 along the middle row
    assert t.loc[0, 3, :, 1].tolist() == (6 - x).tolist()     # b = y2 - y along a column
    # u = (x - 20) / 32 = -1.625, -1.125, -0.625, -0.125, 0.375; v = (y + 10) / 16 = -1.375, -0.375, 0.625, ...
    pos = (t.cls[0] == 1).nonzero().tolist()
    assert pos == [[1, 3], [1, 4]]
    # negatives: max(|u|, |v|) > 1.5 in column 0 (u -1.625) and rows 3, 4 (v 1.625, 2.625); the rest ignored
    neg = t.cls[0] == 0
    assert neg[:, 0].all() and neg[3].all() and neg[4].all()
    assert not neg[:3, 1:].any() and (t.cls[0, :3, 1:] == -1).sum() == 12 - 2


def _siamban_reference(box: torch.Tensor, size: int) -> torch.Tensor:
    """SiamBAN point_target.py, written out point by point with its squared ellipse formula."""
    cx, cy, w, h = box.tolist()
    pts = grid_points(size).tolist()
    out = torch.full((size, size), -1, dtype=torch.long)
    for i, y in enumerate(pts):
        for j, x in enumerate(pts):
            if (cx - x) ** 2 / (w / 2) ** 2 + (cy - y) ** 2 / (h / 2) ** 2 > 1:
                out[i, j] = 0
            if (cx - x) ** 2 / (w / 4) ** 2 + (cy - y) ** 2 / (h / 4) ** 2 < 1:
                out[i, j] = 1
    return out


def test_ellipse_labels_match_siamban_on_random_boxes():
    g = torch.Generator().manual_seed(0)
    boxes = torch.cat([torch.rand(20, 2, generator=g) * 120 - 60, torch.rand(20, 2, generator=g) * 150 + 20], 1)
    t = box_targets(boxes, torch.ones(20, dtype=torch.bool), 16)
    for k in range(20):
        assert torch.equal(t.cls[k], _siamban_reference(boxes[k], 16)), k
    assert (t.cls == 1).sum() > 20 and (t.cls == -1).sum() > 20


def test_negative_pairs_are_all_negative():
    boxes = torch.tensor([[0.0, 0.0, 80.0, 80.0], [0.0, 0.0, 80.0, 80.0]])
    t = box_targets(boxes, torch.tensor([False, True]), 16)
    assert (t.cls[0] == 0).all()
    # u = x / 40: the centre and its 4 neighbours (d = 0.4) are inside the 0.5 ellipse
    assert (t.cls[1] == 1).sum() == 5 and (t.cls[1] == -1).sum() > 0


def test_centerness_hand_values():
    loc = torch.tensor([[1.0, 2.0, 3.0, 8.0], [5.0, 5.0, 5.0, 5.0], [-1.0, 2.0, 3.0, 8.0]]).view(3, 4, 1)
    c = centerness(loc).flatten().tolist()
    assert c == pytest.approx([math.sqrt(1 / 3 * 2 / 8), 1.0, 0.0])


def test_align_grids_pairs_the_same_points():
    coords16 = grid_points(16).view(1, 16).expand(16, 16)
    coords15 = grid_points(15).view(1, 15).expand(15, 15)
    a, b = align_grids(coords15, coords16)
    assert a.shape == b.shape == (15, 15) and torch.equal(a, b)
    b, a = align_grids(coords16, coords15)
    assert torch.equal(a, b) and torch.equal(a, coords15)
    same = torch.randn(2, 4, 16, 16)
    assert all(torch.equal(m, same) for m in align_grids(same, same))


def test_config_rejects_bad_regions_and_scales():
    with pytest.raises(ValueError, match="region"):
        BoxTargetConfig(region="circle")
    with pytest.raises(ValueError, match="pos_scale"):
        BoxTargetConfig(pos_scale=1.2, neg_scale=2.0)
    with pytest.raises(ValueError, match="neg_scale"):
        BoxTargetConfig(pos_scale=0.5, neg_scale=0.4)


def test_config_is_a_cli_option_group():
    parser = argparse.ArgumentParser()
    add_arguments(parser, BoxTargetConfig, "box")
    cfg = from_args(parser.parse_args(["--box-region", "shrink", "--box-pos-scale", "0.3"]), BoxTargetConfig, "box")
    assert cfg == BoxTargetConfig("shrink", 0.3, 1.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_targets_on_cuda_equal_cpu():
    boxes = torch.tensor([[3.0, -7.0, 90.0, 50.0], [0.0, 0.0, 40.0, 40.0]])
    pos = torch.tensor([True, False])
    cpu = box_targets(boxes, pos, 15)
    gpu = box_targets(boxes.cuda(), pos.cuda(), 15)
    assert gpu.cls.is_cuda and torch.equal(gpu.cls.cpu(), cpu.cls)
    assert torch.allclose(gpu.loc.cpu(), cpu.loc) and torch.allclose(gpu.centerness.cpu(), cpu.centerness)
