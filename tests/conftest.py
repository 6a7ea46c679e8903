"""Shared fixtures: where the development data lives, which weights the tracker tests use, the device
the backend tests run on ($SIAMTRACK_TEST_DEVICE, cpu unless set: tools/gpu_check.sh sets cuda), and what
keeps each test independent of the machine: its own empty working folder, one thread per tracker, a graph
cache folder of the run's own."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

# $SIAMTRACK_SHARED: a copy elsewhere (tools/gpu_check.sh carries a few sequences to the GPU machine)
SHARED = Path(os.environ.get("SIAMTRACK_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
TEST_DEVICE = "SIAMTRACK_TEST_DEVICE"
SEQUENCES = SHARED / "data" / "sequences"
FDSIAMFC_30 = SHARED / "reference" / "fdsiamfc" / "FDSiamfc_30.pth"


def pytest_configure(config: pytest.Config) -> None:
    """Registers the `device` marker. Hypothesis keeps its example database and caches in a folder of
    this run instead of ./.hypothesis (it writes there while test modules are collected): an earlier
    run's saved examples must not change this one, and no test writes into the current folder."""
    config.addinivalue_line("markers", f"device: runs its tracker on ${TEST_DEVICE} (cpu unless set); "
                                       "every test using the `device` fixture has it (-m device selects them)")
    from hypothesis.configuration import set_hypothesis_home_dir
    folder = tempfile.mkdtemp(prefix="siamtrack-hypothesis-")
    config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))
    set_hypothesis_home_dir(folder)


@pytest.fixture(scope="session", autouse=True)
def one_thread_by_default() -> Iterator[None]:
    """Trackers built without ``threads=`` use one thread instead of the cores the 1-minute load average
    leaves free: that count changes as the suite loads the machine, and 1 and 2 threads give results
    that differ in the last digits, so two trackers a test compares exactly would disagree."""
    import tracker.engine
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tracker.engine, "default_threads", lambda: 1)
        yield


@pytest.fixture(scope="session", autouse=True)
def own_graph_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Exported ONNX graphs go to a folder of this run ($SIAMTRACK_CACHE, inherited by the CLI and worker
    processes tests start), never into the user's cache; shared by the whole run, as a user's would be."""
    folder = tmp_path_factory.mktemp("siamtrack-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIAMTRACK_CACHE", str(folder))
        yield folder


@pytest.fixture(autouse=True)
def own_working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in its own empty folder: what a user left in theirs (the demo.mp4 that
    `siamtrack demo` writes, a bench/ folder) must not change a result, and no test writes there."""
    monkeypatch.chdir(tmp_path)


def shipped_default_exists() -> bool:
    from tracker.model_zoo import shipped_models
    return "" in shipped_models()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SEQUENCES.is_dir():
        pytest.skip(f"development data not found at {SHARED} (CI provides ../shared beside the repo)")
    return SHARED


@pytest.fixture(scope="session")
def weights():
    """SiamFC weights for the tests of that family's loop: the shipped siamtrack_small, else FDSiamfc_30
    (the shipped default is a box-regression model; the box family's tests name their weights)."""
    from tracker.model_zoo import shipped_models
    if "siamtrack_small" in shipped_models():
        return "siamtrack_small"
    if FDSIAMFC_30.is_file():
        return str(FDSIAMFC_30)
    pytest.skip("no shipped siamtrack_small in weights/ and no ../shared/reference checkpoint")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "device" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.device)


@pytest.fixture(scope="session")
def device() -> str:
    """The torch device of the backend, engine and multi-target tests: cpu, or cuda[:N] when asked for."""
    name = os.environ.get(TEST_DEVICE) or "cpu"
    if name.startswith("cuda"):
        import torch
        if not torch.cuda.is_available():
            pytest.skip(f"{TEST_DEVICE}={name} but no CUDA GPU is available")
    return name


NANOTRACK_ONNX = {"v1": ("nanotrack_backbone_sim.onnx", "nanotrack_head_sim.onnx"),
                  "v2": ("nanotrack_backbone_sim.onnx", "nanotrack_head_sim.onnx"),
                  "v3": ("nanotrack_v3_backbone.onnx", "nanotrack_v3_head.onnx")}


def nanotrack_files(version: str) -> tuple[Path, Path, Path]:
    """(state dict, backbone ONNX, head ONNX) of a NanoTrack version in ../shared/reference (skip if absent)."""
    folder = SHARED / "reference" / f"nanotrack_{version}"
    files = (folder / f"nanotrack_{version}_state_dict.pth", *(folder / n for n in NANOTRACK_ONNX[version]))
    if not all(f.is_file() for f in files):
        pytest.skip(f"NanoTrack {version} reference files not found in {folder} (CI provides ../shared)")
    return files
