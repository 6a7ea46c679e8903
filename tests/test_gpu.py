"""GPU readiness: the CUDA choices with a mocked torch.cuda (any machine), and the engine's host<->device copies
on the test device (cpu, or cuda with SIAMTRACK_TEST_DEVICE=cuda as tools/gpu_check.sh runs them)."""
import numpy as np
import pytest
import torch

from tracker import DeviceError
from tracker import onnx_backend, tracking
from tracker.config import ModelConfig
from tracker.engine import resolve_device
from tracker.evaluation.speed import machine_info
from tracker.models import SiameseNet
from tracker.transfer import DeviceIO

CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"


@pytest.fixture
def gpus(monkeypatch):
    """Pretend torch sees ``n`` CUDA GPUs (0: none)."""
    def have(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
    return have


def test_auto_picks_cuda_when_a_gpu_is_present(gpus):
    gpus(2)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(DeviceError, match="device 'cuda:2' requested but only 2 GPU\\(s\\) exist"):
        resolve_device("cuda:2")
    gpus(0)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(DeviceError, match="no CUDA GPU is available"):
        resolve_device("cuda")


def test_onnxruntime_uses_its_cuda_provider_only_where_it_has_one(gpus, monkeypatch):
    gpus(1)
    monkeypatch.setattr(onnx_backend.ort, "get_available_providers", lambda: [CUDA, CPU])
    assert onnx_backend.providers_for("auto") == [CUDA, CPU]
    assert onnx_backend.providers_for("cuda:0") == [(CUDA, {"device_id": 0}), CPU]
    assert onnx_backend.providers_for("cpu") == [CPU]
    monkeypatch.setattr(onnx_backend.ort, "get_available_providers", lambda: [CPU])  # the CPU-only wheel
    assert onnx_backend.providers_for("auto") == [CPU]
    with pytest.raises(DeviceError, match="this onnxruntime has no CUDA provider; install onnxruntime-gpu"):
        onnx_backend.providers_for("cuda")


def test_auto_backend_is_torch_on_a_gpu_and_onnxruntime_on_cpu(gpus, monkeypatch):
    built = []

    class FakeTorchEngine:
        name = "torch"

        def __init__(self, net, device, threads):
            built.append(device)

    monkeypatch.setattr(tracking, "TorchEngine", FakeTorchEngine)
    net = SiameseNet(ModelConfig(width=0.15))
    gpus(1)
    assert tracking.build_engine(net, "auto", "auto").name == "torch"
    assert tracking.build_engine(net, "auto", "cuda:0").name == "torch"
    assert built == ["auto", "cuda:0"]  # TorchEngine resolves 'auto' itself, to cuda here
    gpus(0)
    monkeypatch.setattr(onnx_backend.ort, "get_available_providers", lambda: [CPU])
    engine = tracking.build_engine(net, "auto", "auto")
    assert engine.name == "onnxruntime" and engine.device.type == "cpu" and len(built) == 2


def test_speed_report_names_the_gpu(gpus, monkeypatch):
    gpus(1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H200")
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    assert machine_info("cuda")["gpu"] == "NVIDIA H200 (CUDA 13.0)"
    assert machine_info("cpu")["gpu"] == "not measured (CPU run)"


def _expected(crops: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(crops).permute(0, 3, 1, 2).float()


def test_uploads_are_float_channels_last_and_never_mixed_up(device):
    """Interleaved shapes, and same-shape uploads back to back: on CUDA the pinned staging buffer is refilled
    while the previous copy may still be in flight, so each result is cloned on the device and checked after."""
    io = DeviceIO(resolve_device(device))
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, 256, shape, dtype=np.uint8)
               for shape in [(64, 255, 255, 3), (64, 255, 255, 3), (1, 127, 127, 3), (64, 255, 255, 3), (1, 127, 127, 3)]]
    kept = []
    for crops in batches:
        out = io.upload(crops)
        assert out.dtype == torch.float32 and out.device.type == io.device.type and out.shape == _expected(crops).shape
        assert out.is_contiguous(memory_format=torch.channels_last)
        kept.append(out.clone())
    assert io.upload(batches[0]).data_ptr() == io.upload(batches[1]).data_ptr()  # one buffer per shape, reused
    for crops, got in zip(batches, kept):
        assert torch.equal(got.cpu(), _expected(crops))


def test_downloads_belong_to_the_caller(device):
    io = DeviceIO(resolve_device(device))
    first, second = (torch.randn(3, 17, 17, device=io.device) for _ in range(2))
    a = io.download(first)
    b = io.download(second)  # same shape: on CUDA the same pinned buffer
    assert a.dtype == np.float32 and a.shape == (3, 17, 17)
    np.testing.assert_array_equal(a, first.cpu().numpy())
    np.testing.assert_array_equal(b, second.cpu().numpy())
