"""Shared fixtures: where the development data lives, which weights the tracker tests use, and what
keeps each test independent of the machine: its own empty working folder, one thread per tracker."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SEQUENCES = SHARED / "data" / "sequences"
FDSIAMFC_30 = SHARED / "reference" / "fdsiamfc" / "FDSiamfc_30.pth"


def pytest_configure(config: pytest.Config) -> None:
    """Hypothesis keeps its example database and caches in a folder of this run instead of ./.hypothesis
    (it writes there while test modules are collected): an earlier run's saved examples must not
    change this one, and no test writes into the current folder."""
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
    """Weights argument for SiamTracker: the shipped default (None) when present, else FDSiamfc_30."""
    if shipped_default_exists():
        return None
    if FDSIAMFC_30.is_file():
        return str(FDSIAMFC_30)
    pytest.skip("no shipped default model in weights/ and no ../shared/reference checkpoint")
