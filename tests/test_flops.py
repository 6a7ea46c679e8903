"""FLOP counter: exact counts on hand-computed layers, whole AlexNets and ONNX graphs."""
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from tracker.config import ModelConfig, TrackerConfig
from tracker.evaluation.flops import count_flops, model_flops, onnx_flops
from tracker.models import SiameseNet, inference_copy


def test_plain_and_grouped_convolutions():
    conv = nn.Conv2d(3, 8, 3, stride=2)  # 9x9 -> 4x4; each output: 3*3*3 = 27 MACs
    assert count_flops(lambda: conv(torch.zeros(1, 3, 9, 9))) == 2 * 16 * 8 * 27
    grouped = nn.Conv2d(4, 6, 3, groups=2)  # 5x5 -> 3x3; each output sees 4/2 input channels: 18 MACs
    assert count_flops(lambda: grouped(torch.zeros(2, 4, 5, 5))) == 2 * 2 * 9 * 6 * 18


def test_matmuls_linear_and_functional_convs():
    assert count_flops(lambda: torch.matmul(torch.zeros(2, 3, 4), torch.zeros(2, 4, 5))) == 2 * 2 * 3 * 5 * 4
    assert count_flops(lambda: nn.Linear(10, 5)(torch.zeros(7, 10))) == 2 * 7 * 5 * 10
    f = torch.nn.functional
    assert count_flops(lambda: f.conv2d(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4))) == 2 * 2 * 16
    assert count_flops(lambda: torch.relu(torch.zeros(100))) == 0  # element-wise ops are not counted


def test_inference_tensors_are_counted_the_same():
    conv = nn.Conv2d(3, 8, 3)
    with torch.inference_mode():
        x = torch.zeros(1, 3, 9, 9)
        assert count_flops(lambda: conv(x)) == 2 * 49 * 8 * 27


def _alexnet_macs(channels, size):
    """Hand count for SiamFC's AlexNet: (kernel, stride, groups) per conv, 3/2 max-pools after conv1-2."""
    c1, c2, c3, c4, c5 = channels
    layers = [(3, c1, 11, 2, 1, True), (c1, c2, 5, 1, 2, True), (c2, c3, 3, 1, 1, False),
              (c3, c4, 3, 1, 2, False), (c4, c5, 3, 1, 2, False)]
    macs = 0
    for cin, cout, k, stride, groups, pool in layers:
        size = (size - k) // stride + 1
        macs += size * size * cout * (cin // groups) * k * k
        if pool:
            size = (size - 3) // 2 + 1
    return macs, size


def test_alexnet_tracking_step_by_hand():
    net = SiameseNet(ModelConfig(width=0.3))
    cfg = TrackerConfig()
    channels = (28, 76, 114, 114, 76)
    x_macs, x_side = _alexnet_macs(channels, 255)
    z_macs, z_side = _alexnet_macs(channels, 127)
    assert (x_side, z_side) == (22, 6)
    cost = model_flops(net, cfg)
    assert cost.backbone == 2 * 3 * x_macs
    assert cost.exemplar == 2 * z_macs
    # xcorr as run: a (36 x 76) @ (76 x 484) matmul per scale, then a 36-channel 6x6 one-hot conv to 17x17
    assert cost.head == 2 * 3 * (36 * 484 * 76 + 17 * 17 * 36 * 36)
    assert cost.per_frame == cost.backbone + cost.head
    assert cost.per_frame / 1e9 == pytest.approx(2.08, abs=0.01)  # the issue's 0.69 GFLOP per 255 crop
    one_scale = model_flops(net, TrackerConfig(scale_num=1))
    assert one_scale.backbone * 3 == cost.backbone


def test_folding_batchnorm_keeps_the_count():
    net = SiameseNet(ModelConfig(width=0.15))
    assert model_flops(inference_copy(net), TrackerConfig()) == model_flops(net, TrackerConfig())


def test_onnx_graph_conv_and_gemm(tmp_path):
    w = numpy_helper.from_array(torch.zeros(8, 3, 3, 3).numpy(), "w")
    g = numpy_helper.from_array(torch.zeros(8 * 4 * 4, 5).numpy(), "g")
    shape = numpy_helper.from_array(torch.tensor([1, -1]).numpy(), "shape")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], strides=[2, 2]),
             helper.make_node("Reshape", ["c", "shape"], ["f"]),
             helper.make_node("Gemm", ["f", "g"], ["y"])]
    graph = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 9, 9])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], [w, g, shape])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph), path)
    assert onnx_flops(path) == 2 * (16 * 8 * 27 + 5 * 128)


def test_nanotrack_v2_costs_what_the_issue_says(shared_dir):
    ref = shared_dir / "reference" / "nanotrack_v2"
    backbone, head = onnx_flops(ref / "nanotrack_backbone_sim.onnx"), onnx_flops(ref / "nanotrack_head_sim.onnx")
    assert backbone / 1e9 == pytest.approx(0.09, abs=0.005) and head / 1e9 == pytest.approx(0.06, abs=0.006)
