"""Ship a trained checkpoint: copy it into weights/ and register it (file sha256) in registry.json."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from ..errors import SiamTrackError
from ..model_zoo import REGISTRY
from ..models import load_checkpoint, save_checkpoint
from ..models.checkpoints import file_sha256

WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"


def publish(checkpoint: str | os.PathLike, name: str, description: str, tracker_config: dict[str, Any] | None = None,
            weights_dir: str | os.PathLike = WEIGHTS_DIR, default: bool = True) -> Path:
    """Re-save ``checkpoint`` as ``weights_dir/NAME.pth`` (with tracker-loop overrides) and register it."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise SiamTrackError(f"model name {name!r} may only use letters, digits, '_', '.' and '-'")
    net, overrides, meta = load_checkpoint(checkpoint)
    weights_dir = Path(weights_dir)
    path = weights_dir / f"{name}.pth"
    save_checkpoint(net, path, metadata={**meta, "name": name, "source_checkpoint": Path(checkpoint).name},
                    tracker_config={**overrides, **(tracker_config or {})})
    path.chmod(0o644)  # shipped files are read by every user
    registry_path = weights_dir / REGISTRY
    registry = json.loads(registry_path.read_text()) if registry_path.is_file() else {"default": name, "models": {}}
    registry["models"][name] = {"file": path.name, "sha256": file_sha256(path), "description": description}
    if default:
        registry["default"] = name
    tmp = registry_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(registry, indent=1) + "\n")
    os.replace(tmp, registry_path)
    return path
