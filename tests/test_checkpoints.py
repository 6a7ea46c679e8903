"""Checkpoint round trip, siamfc-pytorch import, and clear errors for every bad file."""
import os
from collections import OrderedDict

import pytest
import torch

from tracker.config import ModelConfig
from tracker.errors import WeightsError
from tracker.models import SiameseNet, load_checkpoint, save_checkpoint
from tracker.models.checkpoints import FORMAT, file_sha256, read_file


def _net(width=0.15, head="xcorr"):
    torch.manual_seed(0)
    return SiameseNet(ModelConfig(width=width, head=head))


def test_round_trip_keeps_config_weights_and_metadata(tmp_path):
    net = _net(head="cosine")
    path = tmp_path / "m.pth"
    digest = save_checkpoint(net, path, metadata={"epoch": 3}, tracker_config={"window_influence": 0.3})
    loaded, overrides, meta = load_checkpoint(path)
    assert loaded.config == net.config and overrides == {"window_influence": 0.3} and meta == {"epoch": 3}
    for (k, a), (_, b) in zip(net.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    assert read_file(path)["sha256"] == digest and not list(tmp_path.glob(".*tmp"))


def _siamfc_state(width, prefix=""):
    net = _net(width)
    state = OrderedDict((prefix + k, v) for k, v in net.state_dict().items() if k.startswith("backbone."))
    return net, state


@pytest.mark.parametrize("width,prefix", [(0.3, ""), (0.15, "module."), (1.0, "")])
def test_siamfc_pytorch_import_any_width(tmp_path, width, prefix):
    net, state = _siamfc_state(width, prefix)
    torch.save(state, tmp_path / "siamfc.pth")
    loaded, overrides, meta = load_checkpoint(tmp_path / "siamfc.pth")
    assert loaded.config.width == width and loaded.config.head == "xcorr" and loaded.head.out_scale == 1e-3
    assert meta["source"] == "siamfc-pytorch" and overrides == {}
    assert torch.equal(loaded.backbone.conv3[0].weight, net.backbone.conv3[0].weight)


def test_missing_and_directory(tmp_path):
    with pytest.raises(WeightsError, match="checkpoint not found: .*nope.pth; pass a shipped model name"):
        load_checkpoint(tmp_path / "nope.pth")
    with pytest.raises(WeightsError, match="is a directory"):
        load_checkpoint(tmp_path)


def test_truncated_file_is_reported(tmp_path):
    path = tmp_path / "m.pth"
    save_checkpoint(_net(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="corrupt, truncated or not a PyTorch weights file"):
        load_checkpoint(path)
    path.write_bytes(b"hello, not a checkpoint")
    with pytest.raises(WeightsError, match="corrupt, truncated"):
        load_checkpoint(path)


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"format": FORMAT, "payload": os.getcwd, "state_dict": {}}, path)
    with pytest.raises(WeightsError, match="corrupt, truncated or not a PyTorch weights file"):
        load_checkpoint(path)


def test_edited_weights_fail_the_checksum(tmp_path):
    path = tmp_path / "m.pth"
    save_checkpoint(_net(), path)
    obj = read_file(path)
    obj["state_dict"]["backbone.conv1.0.weight"][0, 0, 0, 0] += 1.0
    torch.save(obj, path)
    with pytest.raises(WeightsError, match="do not match their stored sha256"):
        load_checkpoint(path)


def test_other_architecture_lists_expected_and_found_shapes(tmp_path):
    path = tmp_path / "m.pth"
    save_checkpoint(_net(0.15), path)
    obj = read_file(path)
    obj["model_config"]["width"] = 0.3
    from tracker.models.checkpoints import weights_digest
    obj["sha256"] = weights_digest(obj["state_dict"])
    torch.save(obj, path)
    with pytest.raises(WeightsError, match=r"does not fit the alexnet \(width 0.3\) architecture: shape mismatch "
                                           r"backbone.conv1.0.weight: expected \(28, 3, 11, 11\), found \(14, 3, 11, 11\); backbone.conv1.0.bias"):
        load_checkpoint(path)


def test_foreign_state_dict_names_what_was_expected(tmp_path):
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "x.pth")
    with pytest.raises(WeightsError, match="neither a siamtrack checkpoint nor a siamfc-pytorch or NanoTrack state dict .*backbone.conv1.0.weight .*ban_head"):
        load_checkpoint(tmp_path / "x.pth")


def test_file_sha256(tmp_path):
    (tmp_path / "a").write_bytes(b"abc")
    assert file_sha256(tmp_path / "a") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def _poison(tensor: torch.Tensor, value: float = float("nan")) -> torch.Tensor:
    out = tensor.clone()
    out.view(-1)[0] = value
    return out


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_at_load(tmp_path, capsys, value):
    from tracker.cli import main
    net = _net()
    with torch.no_grad():
        net.backbone.conv1[0].weight.copy_(_poison(net.backbone.conv1[0].weight, value))
    save_checkpoint(net, tmp_path / "nanw.pth")  # a consistent checksum: the file is intact, the weights are not
    with pytest.raises(WeightsError, match=r"nanw.pth: 1 weight tensor\(s\) hold NaN or infinite values \(backbone.conv1"):
        load_checkpoint(tmp_path / "nanw.pth")
    assert main(["export", "--weights", str(tmp_path / "nanw.pth"), "--format", "onnx", "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("siamtrack: error: ") and "NaN or infinite" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_non_finite_siamfc_pytorch_state_dict_is_refused(tmp_path):
    _, state = _siamfc_state(0.15)
    state["backbone.conv5.0.weight"] = _poison(state["backbone.conv5.0.weight"])
    torch.save(state, tmp_path / "siamfc.pth")
    with pytest.raises(WeightsError, match="NaN or infinite"):
        load_checkpoint(tmp_path / "siamfc.pth")


def test_non_finite_nanotrack_weights_are_refused(tmp_path):
    """A NanoTrack state dict and an ONNX pair, each with one NaN weight (other importers, the same check)."""
    import onnx
    from onnx import numpy_helper

    from conftest import nanotrack_files
    state_path, backbone, head = nanotrack_files("v3")
    state = torch.load(state_path, map_location="cpu", weights_only=True)
    key = next(k for k, v in state.items() if k.endswith("weight") and v.dim() == 4)
    state[key] = _poison(state[key])
    torch.save(state, tmp_path / "nano.pth")
    with pytest.raises(WeightsError, match="NaN or infinite"):
        load_checkpoint(tmp_path / "nano.pth")
    model = onnx.load(str(head))
    init = next(i for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT and len(i.dims) == 4)
    init.CopyFrom(numpy_helper.from_array(_poison(torch.from_numpy(numpy_helper.to_array(init).copy())).numpy(), init.name))
    onnx.save(model, str(tmp_path / "head.onnx"))
    with pytest.raises(WeightsError, match="NaN or infinite"):
        load_checkpoint([backbone, tmp_path / "head.onnx"])
