"""Training losses against values computed by hand."""
import math

import pytest
import torch

from tracker.training import losses

LN = math.log


def test_siamfc_labels_disk_of_radius_16_follows_the_target():
    centred = losses.siamfc_labels(torch.tensor([[0.0, 0.0]]), torch.tensor([True]))
    assert centred.shape == (1, 1, 17, 17)
    # cells within 2 cells (16 px / stride 8) of the centre: i^2 + j^2 <= 4 -> 13 cells
    assert int(centred.sum()) == 13
    assert centred[0, 0, 8, 8] == 1 and centred[0, 0, 8, 10] == 1 and centred[0, 0, 9, 10] == 0
    moved = losses.siamfc_labels(torch.tensor([[8.0, -16.0]]), torch.tensor([True]))
    assert torch.equal(moved[0, 0, 6, 9], torch.tensor(1.0)) and moved[0, 0, 8, 8] == 0
    assert torch.equal(moved[0, 0], torch.roll(centred[0, 0], shifts=(-2, 1), dims=(0, 1)))


def test_siamfc_labels_are_all_zero_for_negative_pairs():
    labels = losses.siamfc_labels(torch.zeros(2, 2), torch.tensor([False, True]))
    assert labels[0].sum() == 0 and labels[1].sum() == 13


def test_balanced_logistic_hand_computed():
    # positive logit ln 3 -> -ln(3/4); negatives 0, -ln 3, ln 3 -> ln 2, ln(4/3), ln 4
    logits = torch.tensor([[[[LN(3), 0.0], [-LN(3), LN(3)]]]])
    labels = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    expected = 0.5 * LN(4 / 3) + (0.5 / 3) * (LN(2) + LN(4 / 3) + LN(4))
    assert losses.balanced_logistic(logits, labels).item() == pytest.approx(expected, rel=1e-6)


def test_balanced_logistic_all_negative_sample_and_batch_mean():
    logits = torch.tensor([[[[0.0, LN(3)]]], [[[LN(3), 0.0]]]])
    labels = torch.tensor([[[[0.0, 0.0]]], [[[1.0, 0.0]]]])
    first = 0.5 * (LN(2) + LN(4))                 # no positive: negatives share all the weight
    second = 0.5 * LN(4 / 3) + 0.5 * LN(2)
    assert losses.balanced_logistic(logits, labels).item() == pytest.approx((first + second) / 2, rel=1e-6)


def test_losses_are_per_sample_means_so_ddp_splits_are_exact():
    torch.manual_seed(0)
    logits = torch.randn(4, 1, 17, 17)
    labels = losses.siamfc_labels(torch.randn(4, 2) * 10, torch.tensor([True, False, True, True]))
    whole = losses.balanced_logistic(logits, labels)
    halves = (losses.balanced_logistic(logits[:2], labels[:2]) + losses.balanced_logistic(logits[2:], labels[2:])) / 2
    assert whole.item() == pytest.approx(halves.item(), rel=1e-6)


def test_contrastive_hand_computed():
    d = torch.tensor([[[[0.5, 1.5], [0.2, 0.0]]]])
    y = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    # positive: 0.5^2 (weight 1/2); negatives: max(0, 1 - d)^2 = 0, 0.64, 1 (weight 1/6 each)
    expected = 0.5 * 0.25 + (0.64 + 1.0) / 6
    assert losses.contrastive(d, y, margin=1.0).item() == pytest.approx(expected, rel=1e-6)


def test_triplet_hand_computed_and_masked():
    d_pos = torch.tensor([0.3, 0.9])
    d_neg = torch.tensor([[0.4, 0.6, 0.1], [0.0, 0.0, 0.0]])
    # sample 0: relu(0.3 - [0.4, 0.6, 0.1] + 0.2) = 0.1, 0, 0.4; sample 1 has no valid negative
    mask = torch.tensor([[True, True, True], [False, False, False]])
    assert losses.triplet(d_pos, d_neg, 0.2, mask).item() == pytest.approx(0.5 / 3, rel=1e-6)
    assert losses.triplet(d_pos, d_neg, 0.2).item() == pytest.approx((0.5 / 3 + 1.1) / 2, rel=1e-6)


def test_window_triplet_uses_closest_target_window_and_other_objects():
    distance = torch.tensor([[[[0.5, 0.2], [1.0, 1.4]]]])
    labels = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])
    cross = torch.tensor([[[[0.1, 2.0]]]])
    # d_pos = 0.2; negatives 1.0, 1.4 (own) and 0.1, 2.0 (other object); margin 0.2
    expected = (0.0 + 0.0 + 0.3 + 0.0) / 4
    assert losses.window_triplet(distance, labels, cross, 0.2).item() == pytest.approx(expected, abs=1e-6)


def test_cosine_distance_zero_at_the_matching_window_and_two_at_the_opposite():
    z = torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)
    x = torch.stack([z.view(3), 2 * z.view(3), -z.view(3)], dim=1).view(1, 3, 1, 3)
    d = losses.cosine_distance(z, x)
    assert d.shape == (1, 1, 1, 3)
    assert d.flatten().tolist() == pytest.approx([0.0, 0.0, 2.0], abs=1e-3)  # sqrt amplifies float32 rounding near 0


def test_distillation_losses():
    teacher = torch.tensor([[1.0, -2.0]])
    assert losses.relative_mse(2 * teacher, teacher).item() == pytest.approx(1.0)
    assert losses.relative_mse(10 * teacher, 10 * teacher).item() == 0.0
    assert losses.response_mse(torch.tensor([[1.0, 3.0]]), torch.tensor([[0.0, 0.0]])).item() == pytest.approx(5.0)
