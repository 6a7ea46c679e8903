"""Backbone architecture, weight sharing, inference folding and channel-order flip."""
import pytest
import torch

from tracker.config import ModelConfig
from tracker.models import SiameseNet, inference_copy
from tracker.models.backbones import AlexNet, scaled_channels


def test_alexnet_channels_and_stride():
    assert scaled_channels(1.0) == (96, 256, 384, 384, 256)
    assert scaled_channels(0.3) == (28, 76, 114, 114, 76)
    assert scaled_channels(0.15) == (14, 38, 56, 56, 38)
    net = AlexNet(0.3).eval()
    assert net(torch.zeros(1, 3, 127, 127)).shape == (1, 76, 6, 6)
    assert net(torch.zeros(1, 3, 255, 255)).shape == (1, 76, 22, 22)
    assert net(torch.zeros(1, 3, 263, 263)).shape[-1] == 23  # total stride 8
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size[0] for c in convs] == [11, 5, 3, 3, 3]
    assert [c.groups for c in convs] == [1, 2, 1, 2, 2]
    assert all(c.padding == (0, 0) for c in convs)
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 4


def test_both_branches_share_one_backbone():
    net = SiameseNet(ModelConfig(width=0.15))
    calls = []
    net.backbone.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[-1]))
    net(torch.rand(1, 3, 127, 127) * 255, torch.rand(2, 3, 255, 255) * 255)
    assert calls == [127, 255]
    names = [n for n, _ in net.named_parameters()]
    assert sum(n.startswith("backbone.conv1.0.weight") for n in names) == 1


def test_inference_copy_is_equivalent_and_takes_bgr():
    torch.manual_seed(0)
    net = SiameseNet(ModelConfig(width=0.3))
    net.train()
    net(torch.rand(4, 3, 127, 127) * 255, torch.rand(4, 3, 255, 255) * 255)  # move BN statistics
    net.eval()
    rgb_z, rgb_x = torch.rand(1, 3, 127, 127) * 255, torch.rand(3, 3, 255, 255) * 255
    fast = inference_copy(net, "bgr")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    with torch.no_grad():
        want = net(rgb_z, rgb_x)
        got = fast(rgb_z.flip(1), rgb_x.flip(1))
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * want.abs().max().item())
    assert net.backbone.conv1[1].__class__ is torch.nn.BatchNorm2d  # original untouched


def test_dropout_position_and_validation():
    net = AlexNet(0.15, dropout=0.5, dropout_after=3)
    assert isinstance(net.dropout, torch.nn.Dropout2d) and net.dropout_after == 3
    with pytest.raises(ValueError, match="dropout_after"):
        AlexNet(0.15, dropout=0.5, dropout_after=7)
    with pytest.raises(ValueError, match="unknown backbone 'resnet'"):
        SiameseNet(ModelConfig(backbone="resnet"))
