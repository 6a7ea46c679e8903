"""Box-regression networks: shapes, one shared backbone, the correlations against plain references,
batch independence, inference folding."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tracker.config import BoxModelConfig
from tracker.models import BoxSiameseNet, inference_copy
from tracker.models.box_head import depthwise_correlate, pixelwise_correlate
from tracker.models.nanotrack import PRESETS


def random_net(config: BoxModelConfig, seed: int = 0) -> BoxSiameseNet:
    """A net with random weights and non-trivial BatchNorm statistics (so folding is really tested)."""
    torch.manual_seed(seed)
    net = BoxSiameseNet(config)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    return net.eval()


@pytest.mark.parametrize("version,n", [("nanotrack_v1", 16), ("nanotrack_v2", 16), ("nanotrack_v3", 15)])
def test_output_shapes_and_stride(version, n):
    net = random_net(PRESETS[version])
    z = net.embed(torch.rand(2, 3, 127, 127) * 255)
    x = net.embed(torch.rand(2, 3, 255, 255) * 255)
    channels = 96 if version == "nanotrack_v3" else 48
    assert z.shape == (2, channels, 8, 8) and x.shape == (2, channels, 16, 16)
    cls, loc = net.outputs(z, x)
    assert cls.shape == (2, 2, n, n) and loc.shape == (2, 4, n, n)
    assert (loc > 0).all()  # l, t, r, b are distances
    bigger = net.embed(torch.rand(1, 3, 383, 383) * 255)
    assert bigger.shape[-1] == 24  # total stride 16
    assert net.outputs(z[:1], bigger)[0].shape[-1] == n + 8


def test_both_crops_go_through_one_backbone():
    net = random_net(BoxModelConfig())
    sizes = []
    net.backbone.register_forward_hook(lambda m, i, o: sizes.append(i[0].shape[-1]))
    net(torch.rand(1, 3, 127, 127), torch.rand(1, 3, 255, 255))
    assert sizes == [127, 255]
    assert not any("template" in k or "search" in k for k in net.state_dict() if k.startswith("backbone"))


@pytest.mark.parametrize("version", ["nanotrack_v1", "nanotrack_v3"])
def test_narrower_students_keep_the_grid(version):
    preset = PRESETS[version]
    assert preset.scaled(1.0) == preset
    half = preset.scaled(0.5)
    for b, h in zip(preset.blocks, half.blocks):      # hidden, out, SE: the nearest multiple of 8 of half
        assert all(c % 8 == 0 and abs(c - a / 2) <= 4 for a, c in zip(b[1:4], h[1:4]) if a)
        assert (b[3] == 0) == (h[3] == 0)
    assert half.cls_channels == preset.cls_channels // 2 and half.channels == preset.channels // 2
    assert [b[0] for b in half.blocks] == [b[0] for b in preset.blocks]          # kernels
    assert [b[5] for b in half.blocks] == [b[5] for b in preset.blocks]          # strides
    wide, narrow = random_net(preset), random_net(half)
    z, x = torch.rand(1, 3, 127, 127) * 255, torch.rand(1, 3, 255, 255) * 255
    assert wide(z, x)[0].shape == narrow(z, x)[0].shape
    assert narrow.embed(z).shape[1] == half.channels
    assert sum(p.numel() for p in narrow.parameters()) < 0.5 * sum(p.numel() for p in wide.parameters())
    with pytest.raises(ValueError, match="width multiplier"):
        preset.scaled(0)


def test_pixelwise_correlation_is_every_cell_against_every_cell():
    z, x = torch.randn(2, 5, 3, 3), torch.randn(2, 5, 6, 7)
    want = torch.einsum("nchw,ncij->nhwij", z, x).reshape(2, 9, 6, 7)
    torch.testing.assert_close(pixelwise_correlate(z, x), want)


def test_depthwise_correlation_equals_a_grouped_convolution():
    z, x = torch.randn(3, 4, 4, 4), torch.randn(3, 4, 16, 16)
    want = torch.cat([F.conv2d(x[i:i + 1], z[i].unsqueeze(1), padding=1, groups=4) for i in range(3)])
    got = depthwise_correlate(z, x)
    assert got.shape == (3, 4, 15, 15)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("version", sorted(PRESETS))
def test_batched_head_equals_one_target_at_a_time(version):
    net = random_net(PRESETS[version])
    z, x = net.embed(torch.rand(3, 3, 127, 127) * 255), net.embed(torch.rand(3, 3, 255, 255) * 255)
    with torch.no_grad():
        cls, loc = net.outputs(z, x)
        for i in range(3):
            c1, l1 = net.outputs(z[i:i + 1], x[i:i + 1])
            torch.testing.assert_close(c1, cls[i:i + 1], rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(l1, loc[i:i + 1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("version", sorted(PRESETS))
def test_inference_copy_folds_batchnorm_and_takes_bgr(version):
    net = random_net(PRESETS[version])
    net.config = type(net.config)(**{**net.config.to_dict(), "input_order": "rgb"})
    fast = inference_copy(net, "bgr")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    rgb_z, rgb_x = torch.rand(1, 3, 127, 127) * 255, torch.rand(1, 3, 255, 255) * 255
    with torch.no_grad():
        want = net(rgb_z, rgb_x)
        got = fast(rgb_z.flip(1), rgb_x.flip(1))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-3, atol=1e-3)


def test_bad_architectures_are_refused():
    with pytest.raises(ValueError, match="16 px apart; these blocks give total stride 4"):
        BoxSiameseNet(BoxModelConfig(blocks=((3, 16, 16, 0, False, 2),)))
    with pytest.raises(ValueError, match="tower_block"):
        BoxModelConfig(tower_block="fancy")
    with pytest.raises(ValueError, match="exemplar features are 9x9"):
        net = BoxSiameseNet()
        net.outputs(torch.zeros(1, 96, 9, 9), torch.zeros(1, 96, 16, 16))
