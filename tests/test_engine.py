"""TorchEngine's inference tricks: separable max-pools, thread choice, the features/scores split."""
import numpy as np
import pytest
import torch
from torch import nn

from tracker.config import ModelConfig
from tracker.engine import (SeparableMaxPool, TorchEngine, default_threads, resolve_threads, running_elsewhere,
                           separable_pools, torch_threads)
from tracker.models import SiameseNet, inference_copy


@pytest.mark.parametrize("kernel,stride", [(3, 2), (2, 2), (3, 1), (5, 3)])
@pytest.mark.parametrize("size", [(123, 123), (124, 57), (10, 11), (5, 6)])
def test_separable_max_pool_equals_max_pool2d(kernel, stride, size):
    x = torch.randn(2, 4, *size)
    want = nn.MaxPool2d(kernel, stride)(x)
    got = SeparableMaxPool(kernel, stride)(x)
    assert got.shape == want.shape and torch.equal(got, want)
    cl = x.contiguous(memory_format=torch.channels_last)
    assert torch.equal(SeparableMaxPool(kernel, stride)(cl), want)


def test_only_plain_pools_are_swapped():
    net = nn.Sequential(nn.MaxPool2d(3, 2), nn.Sequential(nn.MaxPool2d(3, 2, padding=1), nn.MaxPool2d(2, 2, ceil_mode=True)))
    separable_pools(net)
    assert isinstance(net[0], SeparableMaxPool)
    assert all(isinstance(m, nn.MaxPool2d) for m in net[1])


def test_engine_output_equals_the_plain_network(device):
    torch.manual_seed(0)
    net = SiameseNet(ModelConfig(width=0.15)).eval()
    engine = TorchEngine(net, device)
    assert not any(isinstance(m, nn.MaxPool2d) for m in engine.net.modules())
    rng = np.random.default_rng(0)
    z = rng.integers(0, 255, (1, 127, 127, 3), dtype=np.uint8)
    x = rng.integers(0, 255, (3, 255, 255, 3), dtype=np.uint8)
    (got,) = engine.respond(engine.embed(z), x)
    ref = inference_copy(net, "bgr")
    with torch.no_grad():
        as_input = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).float()  # noqa: E731
        want = ref(as_input(z), as_input(x)).numpy()
    assert got.shape == (3, 1, 17, 17) and got.dtype == np.float32
    if engine.device.type == "cpu":
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    else:  # cuDNN convolutions run in TF32 by default (10-bit mantissa): ~1e-3 relative, not 1e-4
        assert np.linalg.norm(got - want) / np.linalg.norm(want) < 1e-2
    np.testing.assert_array_equal(engine.scores(engine.embed(z), engine.features(x))[0], got)


def test_default_threads_leaves_busy_cores_alone(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr("tracker.engine.running_elsewhere", lambda: None)  # no kernel count: the load average
    for load, want in ((0.0, 4), (1.2, 3), (2.6, 1), (9.0, 1)):
        monkeypatch.setattr("os.getloadavg", lambda load=load: (load, load, load))
        assert default_threads() == want
    monkeypatch.setattr("os.getloadavg", lambda: (2.6, 2.6, 2.6))  # a job that just ended still weighs here
    for now, want in ((0.0, 4), (1.0, 3), (5.0, 1)):
        monkeypatch.setattr("tracker.engine.running_elsewhere", lambda now=now: now)
        assert default_threads() == want


def test_running_elsewhere_reads_the_kernels_count_without_the_reader(tmp_path):
    path = tmp_path / "loadavg"
    path.write_text("0.80 0.98 1.34 3/83 27689\n")
    assert running_elsewhere(samples=3, path=str(path)) == 2.0
    path.write_text("garbage\n")
    assert running_elsewhere(samples=2, path=str(path)) is None
    assert running_elsewhere(path=str(tmp_path / "missing")) is None


def test_thread_counts_are_checked_and_scoped(monkeypatch):
    monkeypatch.setattr("tracker.engine.default_threads", lambda: 5)
    assert resolve_threads(3) == 3 and resolve_threads(None) == 5
    with pytest.raises(ValueError, match="threads must be >= 1, got 0"):
        resolve_threads(0)
    before = torch.get_num_threads()
    inside = 2 if before != 2 else 1
    with pytest.raises(RuntimeError, match="boom"):
        with torch_threads(inside):
            assert torch.get_num_threads() == inside
            raise RuntimeError("boom")  # an engine call that fails still gives the setting back
    assert torch.get_num_threads() == before


def test_auto_backend_is_onnxruntime_on_cpu():
    from tracker.tracking import build_engine
    net = SiameseNet(ModelConfig(width=0.15))
    auto = build_engine(net, "auto", "cpu")
    assert auto.name == "onnxruntime" and auto.device.type == "cpu"
    assert build_engine(net, "torch", "cpu").name == "torch"
    with pytest.raises(ValueError, match="unknown backend 'tf'; choose 'auto', 'torch' or 'onnxruntime'"):
        build_engine(net, "tf", "cpu")
