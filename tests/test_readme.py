"""Every ```python block of README.md runs as written: in a scratch folder, with the default model."""
import json
import re
from pathlib import Path

import pytest

from conftest import FDSIAMFC_30, SHARED, shipped_default_exists
from tracker.models.checkpoints import file_sha256

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def snippets():
    text = README.read_text()
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in BLOCK.finditer(text)]


SNIPPETS = snippets()


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """Until a default model ships, register the fallback checkpoint as the default (conftest runs every
    test in an empty folder). NanoTrack-v3's state dict is put beside the snippet where ../shared has it
    (snippets that name it check for it, so they also run, trivially, without)."""
    v3 = SHARED / "reference" / "nanotrack_v3" / "nanotrack_v3_state_dict.pth"
    if v3.is_file():
        (tmp_path / v3.name).symlink_to(v3)
    if not shipped_default_exists():
        if not FDSIAMFC_30.is_file():
            pytest.skip("no shipped default model and no ../shared/reference checkpoint")
        weights = FDSIAMFC_30
        folder = tmp_path / "weights"
        folder.mkdir()
        entry = {"file": str(Path(weights).resolve()), "sha256": file_sha256(weights), "description": "test default"}
        (folder / "registry.json").write_text(json.dumps({"default": "readme", "models": {"readme": entry}}))
        monkeypatch.setenv("SIAMTRACK_WEIGHTS", str(folder))


def test_the_python_api_section_has_its_snippets():
    section = README.read_text().split("<!-- section:python-api")[1].split("<!-- /section:python-api")[0]
    assert len(BLOCK.findall(section)) >= 5  # stream, frame by frame, multi-target, OpenCV drop-in, export


@pytest.mark.parametrize("line,code", SNIPPETS, ids=[f"README.md:{line}" for line, _ in SNIPPETS])
def test_snippet_runs(line, code, scratch):
    exec(compile(code, f"README.md:{line}", "exec"), {"__name__": "__readme__"})
