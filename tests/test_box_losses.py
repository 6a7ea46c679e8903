"""Box-family losses against values computed by hand."""
import argparse
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tracker.errors import SiamTrackError
from tracker.training import box_losses as bl
from tracker.training.box_targets import BoxTargets, box_targets
from tracker.training.options import add_arguments, from_args

LN = math.log


def two_class(p1: torch.Tensor) -> torch.Tensor:
    """(N, n, n) target probabilities -> (N, 2, n, n) logits (0, logit p)."""
    return torch.stack([torch.zeros_like(p1), torch.log(p1 / (1 - p1))], dim=1)


def one_positive_3x3(positive: bool = True) -> BoxTargets:
    """3 x 3 grid, 32 x 32 box at the centre: one positive, 4 ignored, 4 negatives (see test_box_targets)."""
    return box_targets(torch.tensor([[0.0, 0.0, 32.0, 32.0]]), torch.tensor([positive]), 3)


def test_balanced_cross_entropy_hand_computed():
    # positive p1 = 3/4 -> ln(4/3); negatives p1 = 1/2, 1/4 -> ln 2, ln(4/3); the ignored point is absurd
    logits = two_class(torch.tensor([[[0.75, 0.5], [0.25, 1 - 1e-6]]]))
    labels = torch.tensor([[[1, 0], [0, -1]]])
    expected = 0.5 * LN(4 / 3) + 0.5 * (LN(2) + LN(4 / 3)) / 2
    assert bl.balanced_cross_entropy(logits, labels).item() == pytest.approx(expected, rel=1e-6)


def test_cross_entropy_sample_without_positive_weights_negatives_fully():
    logits = two_class(torch.tensor([[[0.5, 0.25]], [[0.75, 0.5]]]))
    labels = torch.tensor([[[0, 0]], [[1, 0]]])
    first = (LN(2) + LN(4 / 3)) / 2
    second = 0.5 * LN(4 / 3) + 0.5 * LN(2)
    assert bl.balanced_cross_entropy(logits, labels).item() == pytest.approx((first + second) / 2, rel=1e-6)


def test_focal_hand_computed_and_gamma_zero_is_alpha_weighted_cross_entropy():
    logits = two_class(torch.tensor([[[0.75, 0.5], [0.25, 0.9]]]))
    labels = torch.tensor([[[1, 0], [0, -1]]])
    # -alpha_t (1 - p_t)^2 ln p_t: p_t = 3/4 (alpha), 1/2 and 3/4 (1 - alpha); one positive
    expected = 0.25 * (1 / 16) * LN(4 / 3) + 0.75 * (0.25 * LN(2) + (1 / 16) * LN(4 / 3))
    assert bl.focal_loss(logits, labels, 0.25, 2.0).item() == pytest.approx(expected, rel=1e-6)
    torch.manual_seed(0)
    logits = torch.randn(3, 2, 5, 5)
    labels = torch.randint(-1, 2, (3, 5, 5))
    labels[2] = labels[2].clamp_max(0)  # a sample without positive: divided by 1
    ce = F.cross_entropy(logits, labels, weight=torch.tensor([0.6, 0.4]), ignore_index=-1, reduction="none")
    expected = (ce.flatten(1).sum(1) / (labels == 1).flatten(1).sum(1).clamp_min(1)).mean()
    assert bl.focal_loss(logits, labels, alpha=0.4, gamma=0.0).item() == pytest.approx(expected.item(), rel=1e-5)


def test_ignored_points_do_not_contribute():
    targets = one_positive_3x3()
    logits = torch.randn(1, 2, 3, 3)
    changed = logits.clone()
    ignored = targets.cls[0] == -1
    changed[0, :, ignored] = torch.tensor([[5.0], [-7.0]])
    for fn in (bl.balanced_cross_entropy, bl.focal_loss):
        assert fn(changed, targets.cls).item() == pytest.approx(fn(logits, targets.cls).item(), rel=1e-6)
    changed[0, :, 0, 0] = torch.tensor([5.0, -7.0])  # a negative point does count
    assert bl.balanced_cross_entropy(changed, targets.cls).item() != pytest.approx(
        bl.balanced_cross_entropy(logits, targets.cls).item(), rel=1e-3)


def test_iou_and_giou_of_known_boxes():
    # from the same point: pred [-1, 1] x [-1, 1], target [0, 2] x [0, 2]: inter 1, union 7, hull 9
    pred, target = torch.tensor([[1.0, 1.0, 1.0, 1.0]]), torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    iou, giou = bl.ltrb_iou(pred, target)
    assert iou.item() == pytest.approx(1 / 7) and giou.item() == pytest.approx(1 / 7 - 2 / 9)
    assert bl.iou_loss(pred, target, "iou").item() == pytest.approx(6 / 7)
    assert bl.iou_loss(pred, target, "log_iou").item() == pytest.approx(LN(7))
    assert bl.iou_loss(pred, target, "giou").item() == pytest.approx(1 - 1 / 7 + 2 / 9)
    assert bl.iou_loss(target, target, "giou").item() == pytest.approx(0.0, abs=1e-7)


def test_giou_of_disjoint_boxes():
    # [0, 2] x [0, 2] and [3, 5] x [0, 2] (the second does not contain the point): hull 5 x 2, union 8
    a, b = torch.tensor([[0.0, 0.0, 2.0, 2.0]]), torch.tensor([[-3.0, 0.0, 5.0, 2.0]])
    iou, giou = bl.ltrb_iou(a, b)
    assert iou.item() == 0.0 and giou.item() == pytest.approx(-0.2)
    assert bl.iou_loss(a, b, "giou").item() == pytest.approx(1.2)
    assert bl.iou_loss(a, b, "log_iou").item() == pytest.approx(-LN(1e-7), rel=1e-4)


def test_loc_loss_only_on_positive_points():
    targets = one_positive_3x3()
    loc = torch.full((1, 4, 3, 3), 1000.0)           # absurd everywhere ...
    loc[0, :, 1, 1] = torch.tensor([8.0, 8.0, 8.0, 8.0])  # ... but at the positive: a centred 16 x 16 box
    cls = torch.zeros(1, 2, 3, 3)
    for kind, value in (("iou", 1 - 1 / 4), ("log_iou", LN(4)), ("giou", 1 - 1 / 4)):
        cfg = bl.BoxLossConfig(cls_weight=0.0, loc_weight=2.0, loc_loss=kind, l1_weight=0.5)
        _, parts = bl.box_loss(bl.BoxOutputs(cls, loc), targets, cfg)
        assert parts["loc"] == pytest.approx(2.0 * value, rel=1e-6), kind
        assert parts["l1"] == pytest.approx(0.5 * 8.0, rel=1e-6)  # |8 - 16| on each side


def test_all_negative_pairs_have_no_positive_and_zero_box_losses():
    targets = one_positive_3x3(positive=False)
    assert (targets.cls == 1).sum() == 0
    loc = torch.rand(1, 4, 3, 3, requires_grad=True)
    cfg = bl.BoxLossConfig(l1_weight=1.0, centerness_weight=1.0)
    out = bl.BoxOutputs(torch.randn(1, 2, 3, 3), loc, torch.randn(1, 1, 3, 3))
    total, parts = bl.box_loss(out, targets, cfg)
    assert parts["loc"] == 0.0 and parts["l1"] == 0.0 and parts["centerness"] == 0.0 and parts["cls"] > 0
    total.backward()
    assert torch.count_nonzero(loc.grad) == 0


def test_centerness_loss_is_bce_at_positives():
    targets = box_targets(torch.tensor([[4.0, 0.0, 48.0, 48.0]]), torch.tensor([True]), 3)
    # u = (x - 4) / 24 = -5/6, -1/6, 1/2 and v = y / 24: only the centre is inside the 0.5 ellipse
    assert (targets.cls == 1).nonzero().tolist() == [[0, 1, 1]]
    c = targets.centerness[0, 1, 1].item()  # l = 20, r = 28, t = b = 24
    assert c == pytest.approx(math.sqrt(20 / 28))
    logits = torch.full((1, 1, 3, 3), 50.0)  # absurd at the points that must not count
    logits[0, 0, 1, 1] = LN(3)                 # sigmoid 3/4 at the positive
    cfg = bl.BoxLossConfig(cls_weight=0.0, loc_weight=0.0, centerness_weight=3.0)
    _, parts = bl.box_loss(bl.BoxOutputs(torch.zeros(1, 2, 3, 3), torch.ones(1, 4, 3, 3), logits), targets, cfg)
    assert parts == {"centerness": pytest.approx(-3.0 * (c * LN(3 / 4) + (1 - c) * LN(1 / 4)), rel=1e-6)}


def test_classification_distillation_kl_mse_and_temperature():
    student = two_class(torch.tensor([[[0.5]]]))
    teacher = two_class(torch.tensor([[[0.75]]]))
    kl = 0.25 * LN(0.25 / 0.5) + 0.75 * LN(0.75 / 0.5)
    assert bl.cls_distillation(student, teacher, "kl", 1.0).item() == pytest.approx(kl, rel=1e-6)
    assert bl.cls_distillation(student, teacher, "mse", 1.0).item() == pytest.approx(1 / 16, rel=1e-6)
    # T = 2 softens logits 2 ln 3 to ln 3 (p = 3/4) and scales the KL by T^2
    assert bl.cls_distillation(student, 2 * teacher, "kl", 2.0).item() == pytest.approx(4 * kl, rel=1e-6)
    assert bl.cls_distillation(teacher, teacher, "kl", 2.0).item() == pytest.approx(0.0, abs=1e-7)


def test_box_distillation_weighted_by_teacher_confidence():
    teacher_cls = two_class(torch.tensor([[[0.75, 0.75], [0.25, 0.25]]]))  # sum 2: weights 3/8, 3/8, 1/8, 1/8
    teacher_loc = torch.tensor([0.0, 0.0, 2.0, 2.0]).view(1, 4, 1, 1).expand(1, 4, 2, 2)
    student_loc = teacher_loc.clone()
    student_loc[0, :, 1] = torch.tensor([1.0, 1.0, 1.0, 1.0]).view(4, 1)  # IoU 1/7 at the low-confidence points
    cfg = bl.BoxLossConfig(cls_weight=0.0, loc_weight=0.0, loc_loss="iou", distill_cls=0.0, distill_feature=0.0)
    targets = box_targets(torch.zeros(1, 4), torch.tensor([False]), 2)
    _, parts = bl.box_loss(bl.BoxOutputs(torch.zeros(1, 2, 2, 2), student_loc), targets, cfg,
                           teacher=bl.BoxOutputs(teacher_cls, teacher_loc))
    assert parts == {"distill_box": pytest.approx(2 * (1 / 8) * (6 / 7), rel=1e-6)}
    # a sample whose confidences sum below 1 is not renormalised: one point at 3/4 weighs 3/4
    w = bl.teacher_weights(two_class(torch.tensor([[[0.75]]])))
    assert w.item() == pytest.approx(0.75)


def test_teacher_on_the_larger_grid_is_cropped_to_the_students_points():
    torch.manual_seed(0)
    teacher = bl.BoxOutputs(torch.randn(2, 2, 16, 16), torch.rand(2, 4, 16, 16) * 40 + 1)
    aligned = bl.BoxOutputs(teacher.cls[..., 1:, 1:], teacher.loc[..., 1:, 1:])
    shifted = bl.BoxOutputs(teacher.cls[..., :15, :15], teacher.loc[..., :15, :15])
    targets = box_targets(torch.tensor([[0.0, 0.0, 60.0, 60.0]] * 2), torch.tensor([True, False]), 15)
    cfg = bl.BoxLossConfig(cls_weight=0.0, loc_weight=0.0, distill_feature=0.0)
    _, parts = bl.box_loss(aligned, targets, cfg, teacher)
    assert parts["distill_cls"] == pytest.approx(0.0, abs=1e-6) and parts["distill_box"] == pytest.approx(0.0, abs=1e-6)
    _, parts = bl.box_loss(shifted, targets, cfg, teacher)
    assert parts["distill_cls"] > 1e-3 and parts["distill_box"] > 1e-3


def test_features_are_compared_as_they_are_only_between_equal_embedding_architectures():
    from types import SimpleNamespace

    from tracker.config import BoxModelConfig
    from tracker.models.efficientnet_lite import BLOCKS, STEM
    from tracker.training.distill import matching_adapter

    v3 = BoxModelConfig()
    lite0 = BoxModelConfig(stem=STEM, blocks=BLOCKS, relu6=True, adjust=v3.channels)  # 96 channels, another space

    def net(config):
        return SimpleNamespace(config=config, channels=config.channels)

    assert lite0.channels == v3.channels
    assert isinstance(matching_adapter(net(v3), SimpleNamespace(net=net(v3), channels=96)), nn.Identity)
    adapter = matching_adapter(net(lite0), SimpleNamespace(net=net(v3), channels=96))
    assert isinstance(adapter, nn.Conv2d) and adapter.kernel_size == (1, 1) and adapter.out_channels == 96
    # an ensemble teacher embeds with its network
    ensemble = SimpleNamespace(network=SimpleNamespace(net=net(v3)), channels=96)
    assert isinstance(matching_adapter(net(v3), ensemble), nn.Identity)
    assert isinstance(matching_adapter(net(lite0), ensemble), nn.Conv2d)
    # a net without blocks (SiamFC's AlexNet) never matches
    narrow = matching_adapter(SimpleNamespace(config=None, channels=4), SimpleNamespace(net=net(v3), channels=96))
    assert isinstance(narrow, nn.Conv2d) and (narrow.in_channels, narrow.out_channels) == (4, 96)


def test_feature_distillation():
    t = (torch.randn(2, 8, 8, 8), torch.randn(2, 8, 16, 16))
    assert bl.feature_distillation((2 * t[0], t[1]), t).item() == pytest.approx(0.5)
    with pytest.raises(SiamTrackError, match="distill_feature 0"):
        bl.feature_distillation((), t)


def _batch(n: int = 4, size: int = 15):
    torch.manual_seed(1)
    boxes = torch.cat([torch.randn(n, 2) * 20, torch.rand(n, 2) * 80 + 40], 1)
    targets = box_targets(boxes, torch.tensor([True, False, True, True][:n]), size)
    student = bl.BoxOutputs(torch.randn(n, 2, size, size, requires_grad=True),
                            (torch.randn(n, 4, size, size) + 3).exp().requires_grad_(),
                            torch.randn(n, 1, size, size, requires_grad=True),
                            (torch.randn(n, 8, 8, 8, requires_grad=True), torch.randn(n, 8, 16, 16, requires_grad=True)))
    teacher = bl.BoxOutputs(torch.randn(n, 2, 16, 16), (torch.randn(n, 4, 16, 16) + 3).exp(), None,
                            (torch.randn(n, 8, 8, 8), torch.randn(n, 8, 16, 16)))
    return student, targets, teacher


def _take(o: bl.BoxOutputs, s: slice) -> bl.BoxOutputs:
    return bl.BoxOutputs(o.cls[s], o.loc[s], None if o.centerness is None else o.centerness[s],
                         tuple(f[s] for f in o.features))


EVERYTHING = bl.BoxLossConfig(l1_weight=0.1, centerness_weight=1.0)


@pytest.mark.parametrize("cfg", [EVERYTHING, bl.BoxLossConfig(cls_loss="focal", loc_loss="log_iou",
                                                               distill_cls_kind="mse", l1_weight=0.1)])
def test_per_sample_means_so_ddp_halves_give_the_whole_batch(cfg):
    student, targets, teacher = _batch()
    whole, parts = bl.box_loss(student, targets, cfg, teacher)
    halves = [bl.box_loss(_take(student, s), BoxTargets(targets.cls[s], targets.loc[s], targets.centerness[s]),
                          cfg, _take(teacher, s)) for s in (slice(0, 2), slice(2, 4))]
    assert whole.item() == pytest.approx((halves[0][0].item() + halves[1][0].item()) / 2, rel=1e-5)
    for k in parts:
        assert parts[k] == pytest.approx((halves[0][1][k] + halves[1][1][k]) / 2, rel=1e-5, abs=1e-7), k


def test_gradients_flow_to_every_student_output_and_not_into_the_teacher():
    student, targets, teacher = _batch()
    teacher.cls.requires_grad_()
    total, parts = bl.box_loss(student, targets, EVERYTHING, teacher)
    assert set(parts) == {"cls", "loc", "l1", "centerness", "distill_cls", "distill_box", "distill_feature"}
    assert total.item() == pytest.approx(sum(parts.values()), rel=1e-6)
    total.backward()
    for t in (student.cls, student.loc, student.centerness, *student.features):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0
    assert teacher.cls.grad is None


def test_box_loss_selects_and_weights_the_parts():
    student, targets, _ = _batch()
    _, parts = bl.box_loss(student, targets, bl.BoxLossConfig(cls_loss="focal", cls_weight=2.0, loc_weight=0.0))
    assert parts == {"cls": pytest.approx(2.0 * bl.focal_loss(student.cls, targets.cls).item(), rel=1e-6)}
    _, parts = bl.box_loss(student, targets, bl.BoxLossConfig(loc_weight=0.0))
    assert parts == {"cls": pytest.approx(bl.balanced_cross_entropy(student.cls, targets.cls).item(), rel=1e-6)}
    with pytest.raises(SiamTrackError, match="centerness output"):
        bl.box_loss(bl.BoxOutputs(student.cls, student.loc), targets, bl.BoxLossConfig(centerness_weight=1.0))
    with pytest.raises(SiamTrackError, match="every box loss weight is 0"):
        bl.box_loss(student, targets, bl.BoxLossConfig(cls_weight=0.0, loc_weight=0.0))


def test_loss_config_validates_and_is_a_cli_option_group():
    for bad in ({"cls_loss": "hinge"}, {"loc_loss": "diou"}, {"distill_cls_kind": "js"}, {"temperature": 0.0}):
        with pytest.raises(ValueError):
            bl.BoxLossConfig(**bad)
    parser = argparse.ArgumentParser()
    add_arguments(parser, bl.BoxLossConfig, "box")
    args = parser.parse_args(["--box-cls-loss", "focal", "--box-focal-gamma", "1.5", "--box-distill-box", "0"])
    assert from_args(args, bl.BoxLossConfig, "box") == bl.BoxLossConfig(cls_loss="focal", focal_gamma=1.5,
                                                                         distill_box=0.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_box_loss_on_cuda_equals_cpu():
    student, targets, teacher = _batch()
    cpu, _ = bl.box_loss(student, targets, EVERYTHING, teacher)
    move = lambda o: bl.BoxOutputs(o.cls.cuda(), o.loc.cuda(), None if o.centerness is None else o.centerness.cuda(),
                                   tuple(f.cuda() for f in o.features))
    gpu_targets = BoxTargets(targets.cls.cuda(), targets.loc.cuda(), targets.centerness.cuda())
    gpu, _ = bl.box_loss(move(student), gpu_targets, EVERYTHING, move(teacher))
    assert gpu.is_cuda and gpu.item() == pytest.approx(cpu.item(), rel=1e-4)
