"""NanoTrack importers: architecture read from the weights, keys renamed, ONNX pairs rebuilt, and the
torch forward equal to the published ONNX graphs on real crops."""
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from conftest import SEQUENCES, nanotrack_files
from tracker import SiamTracker
from tracker.crops import crop, mean_colour
from tracker.errors import WeightsError
from tracker.models import BoxSiameseNet, load_checkpoint
from tracker.models.nanotrack import LOOP_PARAMS, PRESETS, _rename, config_from_state, version_of
from tracker.onnx_backend import OnnxEngine
from tracker.engine import TorchEngine

VERSIONS = ("v1", "v2", "v3")


def test_keys_are_renamed_onto_our_modules():
    assert _rename("ban_head.corr_pw_cls.conv_kernel.0.weight") == "head.cls_corr.project_z.0.weight"
    assert _rename("ban_head.corr_pw_reg.CA_layer.fc1.bias") == "head.loc_corr.attention.fc1.bias"
    assert _rename("ban_head.corr_pw_cls.conv.3.weight") == "head.cls_corr.refine.3.weight"
    assert _rename("ban_head.corr_pw.CA_layer.fc2.weight") == "head.corr.attention.fc2.weight"
    assert _rename("ban_head.corr_dw_reg.conv_search.1.running_var") == "head.loc_dw.project_x.1.running_var"
    assert _rename("ban_head.down_cls.0.weight") == "head.cls_fuse.0.weight"
    assert _rename("ban_head.cls_pw_tower.4.weight") == "head.cls_tower.4.weight"
    assert _rename("ban_head.bbox_tower.12.weight") == "head.loc_tower.12.weight"
    assert _rename("ban_head.cls_logits.0.bias") == "head.cls_out.0.bias"
    assert _rename("ban_head.cls_pred.0.bias") == "head.cls_out.0.bias"
    assert _rename("ban_head.bbox_pred.0.weight") == "head.loc_out.0.weight"
    assert _rename("backbone.features.3.conv.7.weight") == "backbone.features.3.conv.7.weight"


@pytest.mark.parametrize("version", sorted(PRESETS))
def test_architecture_is_read_back_from_the_weights(version):
    state = BoxSiameseNet(PRESETS[version]).state_dict()
    config = config_from_state(state, Path("x.pth"))
    assert config == PRESETS[version] and version_of(config) == version


def _crops(frame_no: int = 0):
    """An exemplar and a shifted search crop from a real development sequence (uint8 BGR)."""
    import cv2
    seq = SEQUENCES / "Crossing"
    cap = cv2.VideoCapture(str(seq / "video.mp4"))
    for _ in range(frame_no + 1):
        ok, frame = cap.read()
    x, y, w, h = map(float, (seq / "groundtruth.txt").read_text().splitlines()[frame_no].split(","))
    cx, cy = x + (w - 1) / 2, y + (h - 1) / 2
    ctx = 0.5 * (w + h)
    z_sz = np.sqrt((w + ctx) * (h + ctx))
    border = mean_colour(frame)
    return crop(frame, cx, cy, z_sz, 127, border), crop(frame, cx + 6, cy - 4, z_sz * 255 / 127, 255, border)


def _assert_matches(got, want):
    """cls within 1e-4 absolute; loc (exp of the regression, up to ~1e4 px for far points) within 1e-4
    relative: the ONNX graph itself is that far from a float64 run of the same weights."""
    (cls, loc), (ref_cls, ref_loc) = got, want
    assert cls.shape == ref_cls.shape and loc.shape == ref_loc.shape
    assert np.abs(cls - ref_cls).max() < 1e-4
    np.testing.assert_allclose(loc, ref_loc, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("version", VERSIONS)
def test_torch_and_onnxruntime_backends_match_the_published_graphs(version, shared_dir):
    state_dict, backbone_onnx, head_onnx = nanotrack_files(version)
    z_crop, x_crop = _crops()
    backbone = ort.InferenceSession(str(backbone_onnx), providers=["CPUExecutionProvider"])
    head = ort.InferenceSession(str(head_onnx), providers=["CPUExecutionProvider"])
    net, overrides, meta = load_checkpoint(state_dict)
    assert meta["source"] == f"nanotrack_{version}" and overrides == LOOP_PARAMS[f"nanotrack_{version}"]
    as_input = lambda c: c.transpose(2, 0, 1)[None].astype(np.float32)  # noqa: E731  (BGR 0-255, as OpenCV feeds it)
    with torch.no_grad():
        z = net.embed(torch.from_numpy(as_input(z_crop)))
    x = backbone.run(None, {backbone.get_inputs()[0].name: as_input(x_crop)})[0]
    names = [i.name for i in head.get_inputs()]
    want = head.run(None, {names[0]: z.numpy(), names[1]: x})
    with torch.no_grad():
        torch_out = [o.numpy() for o in net(torch.from_numpy(as_input(z_crop)), torch.from_numpy(as_input(x_crop)))]
    _assert_matches(torch_out, want)
    for engine in (TorchEngine(net, "cpu"), OnnxEngine(net, "cpu")):
        _assert_matches(engine.respond(engine.embed(z_crop[None]), x_crop[None]), want)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_onnx_pair_loads_as_the_same_network(version, shared_dir, tmp_path):
    state_dict, backbone_onnx, head_onnx = nanotrack_files(version)
    from_state, overrides, _ = load_checkpoint(state_dict)
    z, x = (torch.from_numpy(c.transpose(2, 0, 1)[None].astype(np.float32)) for c in _crops())
    with torch.no_grad():
        want = [o.numpy() for o in from_state(z, x)]
    folder = tmp_path / "pair"
    folder.mkdir()
    (folder / "a.onnx").write_bytes(head_onnx.read_bytes())  # names say nothing: roles are read from the graphs
    (folder / "b.onnx").write_bytes(backbone_onnx.read_bytes())
    for source in ([head_onnx, backbone_onnx], folder):
        net, pair_overrides, meta = load_checkpoint(source)
        assert meta["source"] == f"nanotrack_{version}" and pair_overrides == overrides
        with torch.no_grad():
            _assert_matches([o.numpy() for o in net(z, x)], want)
    tracker = SiamTracker(f"{backbone_onnx},{head_onnx}", device="cpu")  # the one-line switch from cv2.TrackerNano
    assert tracker.config.window_influence == LOOP_PARAMS[f"nanotrack_{version}"]["window_influence"]


def test_onnx_pair_errors_say_what_to_pass(tmp_path, shared_dir):
    _, backbone_onnx, head_onnx = nanotrack_files("v2")
    with pytest.raises(WeightsError, match="pair of files .* got 1"):
        load_checkpoint(backbone_onnx)
    with pytest.raises(WeightsError, match="expected one backbone graph .* and one head graph"):
        load_checkpoint([backbone_onnx, backbone_onnx])
    (tmp_path / "junk.onnx").write_bytes(b"not onnx at all")
    with pytest.raises(WeightsError, match="cannot read .*junk.onnx as an ONNX model"):
        load_checkpoint([backbone_onnx, tmp_path / "junk.onnx"])
    _, v3_backbone, _ = nanotrack_files("v3")
    with pytest.raises(WeightsError, match="match none of the NanoTrack v1/v2/v3 architectures"):
        load_checkpoint([v3_backbone, head_onnx])


def test_a_nanotrack_state_dict_with_a_missing_tensor_is_refused(tmp_path, shared_dir):
    state_dict, _, _ = nanotrack_files("v3")
    state = torch.load(state_dict, weights_only=True)
    del state["ban_head.cls_logits.0.weight"]
    torch.save(state, tmp_path / "cut.pth")
    with pytest.raises(WeightsError, match="does not fit the box-regression .* missing head.cls_out.0.weight"):
        load_checkpoint(tmp_path / "cut.pth")
