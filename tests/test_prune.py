"""Narrower box-family students by channel selection: exact at width 1, strict shapes at 0.75 / 0.5 for
every NanoTrack preset, one index set per channel group (residual streams, correlation projections,
depth-wise layers, SE gates), chosen by summed |BN gamma| and kept in order."""
import pytest
import torch

from test_box_models import random_net
from tracker.models import BoxSiameseNet
from tracker.models.nanotrack import PRESETS
from tracker.models.prune import narrow_box_net

Z, X = torch.rand(2, 3, 127, 127) * 255, torch.rand(2, 3, 255, 255) * 255


def tagged(net):
    """Every BatchNorm's running_mean and every SE gate bias holds its channel index, so a narrowed
    copy shows which source channels each of its layers kept."""
    with torch.no_grad():
        for name, m in net.named_modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.arange(m.num_features, dtype=torch.float32))
            elif name.endswith(".fc"):
                m[2].bias.copy_(torch.arange(m[2].out_features, dtype=torch.float32))
    return net


@pytest.mark.parametrize("version", sorted(PRESETS))
def test_width_one_is_the_source_exactly(version):
    source = random_net(PRESETS[version], seed=1)
    same = narrow_box_net(source, 1.0)
    assert same.config == source.config and not same.training
    want, got = source.state_dict(), same.state_dict()
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)
    for a, b in zip(source(Z, X), same(Z, X)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("width", [0.75, 0.5])
@pytest.mark.parametrize("version", sorted(PRESETS))
def test_narrowed_weights_load_strict_into_the_scaled_architecture(version, width):
    source = random_net(PRESETS[version], seed=2)
    student = narrow_box_net(source, width)
    assert student.config == source.config.scaled(width)
    BoxSiameseNet(source.config.scaled(width)).load_state_dict(student.state_dict(), strict=True)
    params = sum(p.numel() for p in student.parameters())
    assert params < (0.75 if width == 0.5 else 0.8) * sum(p.numel() for p in source.parameters())
    cls, loc = student(Z, X)
    assert cls.shape == source(Z, X)[0].shape and torch.isfinite(cls).all() and torch.isfinite(loc).all()
    # every tensor is a selection of the source's: whole weights of the head's exemplar-cell layers,
    # a first row of the stem that is some row of the source's
    key = "head.cls_corr.attention.fc1.weight" if not source.head.shared else "head.corr.attention.fc1.weight"
    assert torch.equal(student.state_dict()[key], source.state_dict()[key])
    stem, src_stem = student.state_dict()["backbone.features.0.0.weight"], source.state_dict()["backbone.features.0.0.weight"]
    assert any(torch.equal(stem[0], row) for row in src_stem)


def test_a_residual_stream_keeps_one_index_set_chosen_by_its_summed_gammas():
    source = tagged(random_net(PRESETS["nanotrack_v3"], seed=3))
    f = source.backbone.features
    stream = [f[4].conv[8], f[5].conv[8], f[6].conv[8]]   # the 40-channel stream: block 4's output + 2 skips
    with torch.no_grad():
        for bn in stream:
            bn.weight.uniform_(0.5, 1.0)
            bn.weight[5] = 0.01
        f[4].conv[8].weight[5] = 0.01
        f[5].conv[8].weight[5] = 50.0    # important in one block only: the group's sum keeps it
        f[6].conv[8].weight[7] = -40.0   # |gamma| counts
        for bn in stream:
            bn.weight[11] = 0.0          # unimportant everywhere: dropped
    student = narrow_box_net(source, 0.5)
    g = student.backbone.features
    kept = g[4].conv[8].running_mean.long()
    assert len(kept) == 24 and {5, 7} <= set(kept.tolist()) and 11 not in kept
    assert torch.equal(kept, kept.sort().values)                                  # order preserved
    for i in (5, 6):
        assert torch.equal(g[i].conv[8].running_mean.long(), kept)
    for i in (5, 6, 7):                                                          # the next 1x1s read those channels
        assert torch.equal(g[i].conv[0].weight, f[i].conv[0].weight[:, kept][g[i].conv[1].running_mean.long()])
    stream_gamma = sum(bn.weight.detach().abs() for bn in stream)
    assert torch.equal(kept, stream_gamma.topk(24).indices.sort().values)


def test_depthwise_layers_se_gates_and_correlation_projections_follow_their_groups():
    source = tagged(random_net(PRESETS["nanotrack_v3"], seed=4))
    student = narrow_box_net(source, 0.75)
    for block in student.backbone.features[2:]:
        hidden = block.conv[1].running_mean                    # expand BN
        assert torch.equal(block.conv[4].running_mean, hidden)  # depth-wise BN
        if hasattr(block.conv[5], "fc"):
            assert torch.equal(block.conv[5].fc[2].bias, hidden)
    first = student.backbone.features[1].conv                   # no expansion: its depth-wise runs on the stem's
    assert torch.equal(first[1].running_mean, student.backbone.features[0][1].running_mean)
    head = student.head
    for corr in (head.cls_corr, head.loc_corr, head.cls_dw, head.loc_dw):
        assert torch.equal(corr.project_z[1].running_mean, corr.project_x[1].running_mean)
        assert len(corr.project_z[1].running_mean) == student.config.channels
    # fuse input: the 64 exemplar cells whole, then the depth-wise branch's kept channels
    cells = source.config.exemplar_cells
    dw = head.cls_dw.project_z[1].running_mean.long()
    rows = head.cls_tower[1].running_mean.long()
    want = source.head.cls_fuse[0].weight[rows][:, torch.cat((torch.arange(cells), cells + dw))]
    assert torch.equal(head.cls_fuse[0].weight, want)
    assert torch.equal(head.cls_corr.refine[1].running_mean, source.head.cls_corr.refine[1].running_mean)


def test_widths_the_selection_cannot_serve_are_refused():
    source = random_net(PRESETS["nanotrack_v3"])
    with pytest.raises(ValueError, match=r"width in \(0, 1\]"):
        narrow_box_net(source, 1.5)
    with pytest.raises(ValueError, match="layer layout differs"):   # 72 hidden -> 8 = its input: no expansion
        narrow_box_net(source, 0.1)
