#!/usr/bin/env python
"""GPU check of siamtrack in one call on a lent CUDA machine: the driver of tools/gpu_check.sh (read its header).

The check is tracker/evaluation/gpu_check.py, run from its file instead of imported as a package module:
importing the package would import torch, cv2 and numba first, and the check must still report where those fail.
Subcommands: run --out DIR [--dry-run] | env --json PATH | transfer --json PATH [--device cuda].
"""
import runpy
from pathlib import Path

if __name__ == "__main__":
    runpy.run_path(str(Path(__file__).resolve().parents[1] / "tracker" / "evaluation" / "gpu_check.py"),
                   run_name="__main__")
