"""Centre-family losses against hand-computed values."""
import math

import pytest
import torch

from tracker.errors import SiamTrackError
from tracker.training.centre_losses import (CentreLossConfig, MapGrid, box_iou_loss, cell_boxes, centre_loss,
                                            centre_targets, focal_loss, gaussian_radius, to_student_grid)


def test_targets_put_the_centre_cell_offset_and_size_where_the_box_is():
    # 64 px crop, 4 x 4 cells of 16 px; box centre 10 px right of and 20 px above the crop centre (32, 32):
    # (42, 12) px = (2.625, 0.75) cells -> row 0, column 2; size 16 x 8 px = 0.25 x 0.125 of the crop
    t = centre_targets(torch.tensor([[10.0, -20.0, 16.0, 8.0], [0.0, 0.0, 16.0, 16.0]]), torch.tensor([True, False]), 4, 64)
    assert t.cell[0].tolist() == [0, 2]
    assert t.box[0].tolist() == pytest.approx([2.625 / 4, 0.75 / 4, 0.25, 0.125])
    assert t.heatmap[0, 0, 2] == 1.0 and t.heatmap[0].max() == 1.0 and 0 < t.heatmap[0, 1, 2] < 1
    assert t.heatmap[1].abs().sum() == 0 and t.positive.tolist() == [1.0, 0.0]  # a negative pair has no centre


def test_targets_and_cell_boxes_on_maps_half_a_cell_in():
    # the nanotrack head's 3 x 3 maps on a 64 px crop of 4 cells, beginning 8 px (1/8 of the crop) in: the centre
    # (42, 12) px is (42 - 8, 12 - 8) / 16 = (2.125, 0.25) cells from the first cell's corner -> row 0, column 2
    grid = MapGrid.centred(3, 4)
    assert grid == MapGrid(4.0, 0.125) and MapGrid.centred(4, 4) == MapGrid(4.0, 0.0)
    t = centre_targets(torch.tensor([[10.0, -20.0, 16.0, 8.0]]), torch.tensor([True]), 3, 64, grid=grid)
    assert t.cell[0].tolist() == [0, 2] and t.heatmap.shape == (1, 3, 3) and t.heatmap[0, 0, 2] == 1.0
    assert t.box[0].tolist() == pytest.approx([42 / 64, 12 / 64, 0.25, 0.125])
    size, offset = torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 3)
    size[0, :, 0, 2], offset[0, :, 0, 2] = torch.tensor([0.25, 0.125]), torch.tensor([0.125, 0.25])
    torch.testing.assert_close(cell_boxes(size, offset, t.cell, grid), t.box)


def test_gaussian_radius_is_centernets():
    # h = w = 4, min overlap 0.7: r1 = (8 + sqrt(64 - 4 * 16 * 0.3 / 1.7)) / 2, r2 = (16 + sqrt(256 - 16 * 4.8)) / 2,
    # r3 = (-11.2 + sqrt(125.44 + 4 * 2.8 * 4.8)) / 2 = 0.9955 (the smallest)
    r3 = (-11.2 + math.sqrt(11.2 ** 2 + 4 * 2.8 * 4.8)) / 2
    assert float(gaussian_radius(torch.tensor(4.0), torch.tensor(4.0), 0.7)) == pytest.approx(r3, rel=1e-6)


def test_focal_loss_by_hand():
    # 1 x 2 map: centre cell p = 0.8 (heat 1), other cell p = 0.3 (heat 0.5)
    # pos = -ln 0.8 * 0.2^2; neg = -ln 0.7 * 0.3^2 * 0.5^4; divided by one centre
    score = torch.tensor([[[0.8, 0.3]]])
    heat = torch.tensor([[[1.0, 0.5]]])
    want = -math.log(0.8) * 0.04 - math.log(0.7) * 0.09 * 0.0625
    assert float(focal_loss(score, heat)) == pytest.approx(want, rel=1e-5)
    # a negative pair: only background, divided by 1
    assert float(focal_loss(score, torch.zeros_like(heat))) == pytest.approx(-math.log(0.2) * 0.64 - math.log(0.7) * 0.09, rel=1e-5)


def test_box_losses_by_hand():
    pred = torch.tensor([[0.5, 0.5, 0.2, 0.2]])    # [0.4, 0.6]^2
    target = torch.tensor([[0.6, 0.5, 0.2, 0.2]])  # [0.5, 0.7] x [0.4, 0.6]: overlap 0.1 x 0.2
    iou = 0.02 / (0.04 + 0.04 - 0.02)
    assert float(box_iou_loss(pred, target, "iou")) == pytest.approx(1 - iou, rel=1e-5)
    enclose = 0.3 * 0.2
    assert float(box_iou_loss(pred, target, "giou")) == pytest.approx(1 - (iou - (enclose - 0.06) / enclose), rel=1e-5)
    assert float(box_iou_loss(pred, target, "wiou")) == pytest.approx((1 - iou) * math.exp(0.01 / (0.09 + 0.04)), rel=1e-5)
    assert float(box_iou_loss(target, target, "wiou")) == pytest.approx(0, abs=1e-6)


def test_cell_boxes_read_lightfcs_decode():
    size, offset = torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4)
    size[0, :, 1, 3] = torch.tensor([0.3, 0.4])
    offset[0, :, 1, 3] = torch.tensor([0.5, 0.25])
    box = cell_boxes(size, offset, torch.tensor([[1, 3]]))
    assert box[0].tolist() == pytest.approx([3.5 / 4, 1.25 / 4, 0.3, 0.4])


def _maps(seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(2, 1, 4, 4, generator=g).clamp(0.01, 0.99), torch.rand(2, 2, 4, 4, generator=g),
            torch.rand(2, 2, 4, 4, generator=g))


def test_distillation_is_zero_for_the_teachers_own_maps_and_pulls_towards_them():
    targets = centre_targets(torch.tensor([[0.0, 0.0, 16.0, 16.0]] * 2), torch.tensor([True, True]), 4, 64)
    only = CentreLossConfig(score_weight=0, box_weight=0, l1_weight=0, distill_feature=0)
    teacher = _maps(0)
    _, same = centre_loss(teacher, targets, only, teacher)
    student = tuple(m.clone().requires_grad_(True) for m in _maps(1))
    loss, other = centre_loss(student, targets, only, teacher)
    assert same["distill_box"] == pytest.approx(0, abs=1e-7) and other["distill_box"] > 0.01
    assert other["distill_score"] > same["distill_score"]  # BCE's minimum is the teacher's entropy, reached at its maps
    loss.backward()
    step = [s - 0.5 * s.grad for s in student]
    assert float(centre_loss(tuple(s.detach() for s in step), targets, only, teacher)[0]) < float(loss.detach())


def test_a_teachers_finer_grid_reaches_the_student_as_the_same_boxes_over_the_same_crop():
    # a teacher's 16 x 16 grid pointing everywhere at one centre (0.37, 0.61 of the crop), size 0.2 x 0.3,
    # its score a linear ramp; the student's 12 x 12 grid over the same crop reads the same box in every cell
    m, n, centre = 16, 12, torch.tensor([0.37, 0.61])
    cells = torch.arange(m, dtype=torch.float32)
    offset = torch.stack([centre[0] * m - cells.view(1, m).expand(m, m), centre[1] * m - cells.view(m, 1).expand(m, m)])
    size = torch.tensor([0.2, 0.3]).view(2, 1, 1).expand(2, m, m)
    ramp = ((cells.view(1, m) + 0.5) / m).expand(m, m)  # the crop fraction of each column's centre
    score, size_n, offset_n = to_student_grid((ramp[None, None], size[None], offset[None]), n)
    assert score.shape == (1, 1, n, n) and offset_n.shape == (1, 2, n, n)
    every = torch.tensor([[r, c] for r in range(n) for c in range(n)])
    boxes = cell_boxes(size_n.expand(len(every), -1, -1, -1), offset_n.expand(len(every), -1, -1, -1), every)
    torch.testing.assert_close(boxes, torch.tensor([0.37, 0.61, 0.2, 0.3]).expand(len(every), 4))
    inner = (torch.arange(1, n - 1, dtype=torch.float32) + 0.5) / n  # a linear ramp stays itself (edges clamp)
    torch.testing.assert_close(score[0, 0, 0, 1:-1], inner)
    same = (ramp[None, None], size[None], offset[None])
    assert to_student_grid(same, m) is same


def test_a_teachers_tiling_grid_reaches_cells_half_a_cell_in_as_the_same_boxes():
    # LightFC's 16 x 16 cells tile the crop; the nanotrack head's 15 x 15 centres sit on their shared corners, so
    # its score is the mean of the 4 teacher cells around each, and every cell reads the teacher's one box
    m, n, centre = 16, 15, torch.tensor([0.37, 0.61])
    cells = torch.arange(m, dtype=torch.float32)
    offset = torch.stack([centre[0] * m - cells.view(1, m).expand(m, m), centre[1] * m - cells.view(m, 1).expand(m, m)])
    size = torch.tensor([0.2, 0.3]).view(2, 1, 1).expand(2, m, m)
    score = torch.rand(1, 1, m, m, generator=torch.Generator().manual_seed(0))
    grid = MapGrid.centred(n, m)
    s, size_n, offset_n = to_student_grid((score, size[None], offset[None]), n, grid)
    torch.testing.assert_close(s, torch.nn.functional.avg_pool2d(score, 2, stride=1))
    every = torch.tensor([[r, c] for r in range(n) for c in range(n)])
    boxes = cell_boxes(size_n.expand(len(every), -1, -1, -1), offset_n.expand(len(every), -1, -1, -1), every, grid)
    torch.testing.assert_close(boxes, torch.tensor([0.37, 0.61, 0.2, 0.3]).expand(len(every), 4))


def test_distillation_across_grids_is_zero_for_the_teachers_own_maps_resampled():
    targets = centre_targets(torch.tensor([[0.0, 0.0, 16.0, 16.0]] * 2), torch.tensor([True, True]), 4, 64)
    only = CentreLossConfig(score_weight=0, box_weight=0, l1_weight=0, distill_feature=0)
    fine = tuple(torch.nn.functional.interpolate(x, size=8, mode="bilinear") for x in _maps(0))
    _, same = centre_loss(to_student_grid(fine, 4), targets, only, fine)
    _, other = centre_loss(_maps(1), targets, only, fine)
    assert same["distill_box"] == pytest.approx(0, abs=1e-6) and other["distill_box"] > 0.01


def test_all_zero_weights_and_unknown_box_losses_are_refused():
    targets = centre_targets(torch.tensor([[0.0, 0.0, 16.0, 16.0]] * 2), torch.tensor([True, True]), 4, 64)
    with pytest.raises(SiamTrackError, match="every centre loss weight is 0"):
        centre_loss(_maps(1), targets, CentreLossConfig(score_weight=0, box_weight=0, l1_weight=0))
    with pytest.raises(ValueError, match="box_loss must be one of giou, iou, wiou"):
        CentreLossConfig(box_loss="l2")
