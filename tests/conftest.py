"""Shared fixtures: where the development data lives and which weights the tracker tests use."""
from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SEQUENCES = SHARED / "data" / "sequences"
FDSIAMFC_30 = SHARED / "reference" / "fdsiamfc" / "FDSiamfc_30.pth"


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
