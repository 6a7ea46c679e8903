"""ONNX / TorchScript export equals the torch network; the onnxruntime backend gives the torch backend's boxes."""
import json

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from tracker import DeviceError, SiamTracker
from tracker.cli import main
from tracker.config import ModelConfig
from tracker.errors import OutputError
from tracker.export import export, onnx_models, torchscript_module
from tracker.models import SiameseNet, save_checkpoint
from tracker.models.checkpoints import file_sha256
from tracker.models.heads import HEADS
from tracker.graph_cache import session_options
from tracker.onnx_backend import providers_for
from tracker.synthetic import demo_clip

MAX_BOX_DIFF = 0.5  # px, the acceptance bound between backends
PARITY_SEQUENCE, PARITY_FRAMES = "Bolt", 30


def random_net(head="xcorr", seed=0):
    """Random weights with non-trivial BatchNorm statistics, so folding and channel flips are exercised."""
    torch.manual_seed(seed)
    net = SiameseNet(ModelConfig(width=0.15, head=head))
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    net.head.bias.data.fill_(0.3)
    return net.eval()


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "random.pth"
    save_checkpoint(random_net(), path)
    return str(path)


def reference(net, z_crops, x_crops):
    """The trained network on RGB float input, as in training: what every export must reproduce."""
    def rgb(c):
        return torch.from_numpy(np.ascontiguousarray(c[..., ::-1])).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        return net.head(net.embed(rgb(z_crops)), net.embed(rgb(x_crops))).numpy()


def crops(n, size, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


@pytest.mark.parametrize("head", sorted(HEADS))
def test_onnx_and_torchscript_equal_the_network(head):
    net = random_net(head)
    backbone, head_model = onnx_models(net)
    sb, sh = (ort.InferenceSession(m, providers=["CPUExecutionProvider"]) for m in (backbone, head_model))
    script = torchscript_module(net)
    # batch and search sizes other than the traced ones (2 exemplars, 6 searches of 255 px)
    for z_crops, x_crops in [(crops(3, 127, 1), crops(3, 159, 2)), (crops(1, 127, 3), crops(2, 183, 4))]:
        want = reference(net, z_crops, x_crops)
        z = sb.run(None, {"crops": z_crops})[0]
        got = sh.run(None, {"exemplar": z, "search": sb.run(None, {"crops": x_crops})[0]})[0]
        with torch.no_grad():
            scripted = script(script.embed(torch.from_numpy(z_crops)), script.embed(torch.from_numpy(x_crops)))[0].numpy()
        n = (x_crops.shape[1] - 127) // 8 + 1
        assert got.shape == scripted.shape == want.shape == (len(x_crops), 1, n, n)
        tol = 1e-4 * np.abs(want).max()
        assert np.abs(got - want).max() < tol and np.abs(scripted - want).max() < tol


@pytest.mark.parametrize("weights", ["siamtrack_small", "siamtrack_box"])
def test_the_fused_frame_graph_equals_backbone_then_head(weights):
    """One target's normal frame runs one fused graph: a pure speed lever, so its outputs must be the
    split graphs' (the static pair and the dynamic pair) to 1e-4."""
    tracker = SiamTracker(weights, device="cpu", backend="onnxruntime")
    engine = tracker._multi.engine
    (shape,) = engine.frame_shapes
    z = engine.embed(crops(1, tracker.config.exemplar_size, 5))
    x = crops(shape[0], shape[1], 6)
    fused = engine.respond(z, x)
    static = engine.scores(z, engine.features(x))
    dynamic = engine.head.run(None, {"exemplar": z, "search": engine.backbone.run(None, {"crops": x})[0]})
    assert engine._backbones and len(fused) == len(static) == len(dynamic) == len(engine.output_names)
    for got, *refs in zip(fused, static, dynamic):
        for ref in refs:
            assert got.shape == ref.shape
            np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    two = engine.respond(np.concatenate([z, z]), np.concatenate([x, x]))  # two targets: the dynamic graphs
    np.testing.assert_allclose(two[0][:shape[0]], fused[0], rtol=1e-4, atol=1e-4 * np.abs(fused[0]).max())


def boxes(tracker, frames, box):
    tracker.init(frames[0], box)
    return np.array([tracker.update(f).box for f in frames[1:]])


def test_backends_agree_on_a_generated_clip(random_weights, device):
    """torch on the test device (cpu, or cuda when asked) against onnxruntime on CPU."""
    clip = demo_clip(n_frames=20)
    frames = list(clip)
    torch_boxes = boxes(SiamTracker(random_weights, device=device, backend="torch"), frames, clip.truth(0))
    onnx_boxes = boxes(SiamTracker(random_weights, device="cpu", backend="onnxruntime"), frames, clip.truth(0))
    assert np.abs(torch_boxes - onnx_boxes).max() < MAX_BOX_DIFF
    assert np.ptp(torch_boxes[:, 0]) > 5  # the boxes moved: the comparison is not between two static answers


def test_backends_agree_on_a_real_sequence(weights, shared_dir, device):
    folder = shared_dir / "data" / "sequences" / PARITY_SEQUENCE
    capture = cv2.VideoCapture(str(folder / "video.mp4"))
    frames = [capture.read()[1] for _ in range(PARITY_FRAMES)]
    first = np.genfromtxt(folder / "groundtruth.txt", delimiter=",", max_rows=1)
    torch_boxes = boxes(SiamTracker(weights, device=device, backend="torch"), frames, first)
    onnx_boxes = boxes(SiamTracker(weights, device="cpu", backend="onnxruntime"), frames, first)
    assert np.abs(torch_boxes - onnx_boxes).max() < MAX_BOX_DIFF


def test_cli_writes_loadable_onnx_and_torchscript(random_weights, tmp_path, capsys):
    assert main(["export", "--format", "onnx", "--output", str(tmp_path / "o"), "--weights", random_weights]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "o" / n) for n in ("backbone.onnx", "head.onnx", "siamtrack.json")]
    for name in ("backbone.onnx", "head.onnx"):
        onnx.checker.check_model(str(tmp_path / "o" / name))
    info = json.loads((tmp_path / "o" / "siamtrack.json").read_text())
    assert info["format"] == "siamtrack-onnx" and info["model_config"]["input_order"] == "bgr"
    assert info["tracker_config"]["exemplar_size"] == 127

    assert main(["export", "--format", "torchscript", "--output", str(tmp_path / "t"), "--weights", random_weights]) == 0
    script = torch.jit.load(str(tmp_path / "t" / "siamtrack.pt"))
    z_crops, x_crops = crops(2, 127, 5), crops(4, 255, 6)
    with torch.no_grad():
        got = script(script.embed(torch.from_numpy(z_crops)), script.embed(torch.from_numpy(x_crops)))[0].numpy()
    want = reference(random_net(), z_crops, x_crops)
    assert np.abs(got - want).max() < 1e-4 * np.abs(want).max()


def test_cli_errors_are_one_line(random_weights, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["export", "--format", "onnx", "--output", str(blocker / "sub"), "--weights", random_weights]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"siamtrack: error: cannot write the export to {blocker / 'sub'}") and "\n" not in err
    assert main(["export", "--format", "onnx", "--output", str(tmp_path / "o"), "--weights", "nosuchmodel"]) == 2
    assert "unknown model 'nosuchmodel'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", "--format", "tflite", "--output", str(tmp_path / "o")])


@pytest.mark.parametrize("fmt,name,writes", [
    ("onnx", "model.onnx", "(backbone.onnx, head.onnx, siamtrack.json)"),
    ("torchscript", "model.pt", "(siamtrack.pt, siamtrack.json)"),
    ("torchscript", "model.PTH", "(siamtrack.pt, siamtrack.json)"),
])
def test_an_output_named_like_a_file_is_refused_before_any_work(fmt, name, writes, tmp_path, capsys):
    out = tmp_path / name
    assert main(["export", "--format", fmt, "--output", str(out), "--weights", "nosuchmodel"]) == 2
    assert capsys.readouterr().err == (f"siamtrack: error: --output {out} looks like a file name, but export writes a "
                                       f"folder {writes}; pass a folder such as --output {tmp_path / 'model'}_{fmt}/\n")
    assert not out.exists()  # refused before the model was even looked up (the unknown one would fail later)


def test_an_existing_file_as_output_is_refused_and_kept(random_weights, tmp_path):
    taken = tmp_path / "notes"
    taken.write_text("keep me")
    with pytest.raises(OutputError, match=f"--output {taken} is an existing file, but export writes a folder"):
        export(random_weights, "onnx", taken)
    assert taken.read_text() == "keep me"


def test_sessions_are_configurable_and_cuda_is_checked():
    opts = session_options(3)
    assert opts.intra_op_num_threads == 3
    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert providers_for("cpu") == ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(DeviceError, match="cuda"):
            providers_for("cuda")


def test_models_command_lists_the_registry_and_names_resolve(random_weights, tmp_path, monkeypatch, capsys):
    entry = {"file": random_weights, "sha256": file_sha256(random_weights), "description": "tiny random net"}
    (tmp_path / "registry.json").write_text(json.dumps({"default": "tiny", "models": {"tiny": entry, "other": entry}}))
    monkeypatch.setenv("SIAMTRACK_WEIGHTS", str(tmp_path))
    assert main(["models"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"other: tiny random net [{random_weights}]",
                                                    f"tiny (default): tiny random net [{random_weights}]"]
    assert SiamTracker("other", device="cpu").metadata["name"] == "other"
