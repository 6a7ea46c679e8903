#!/usr/bin/env python
"""Export a model to ONNX (backbone.onnx + head.onnx) or TorchScript (siamtrack.pt); same as `siamtrack export`.

Examples (see README, section Python API / Export):
  python tools/export.py --format onnx --output exported/
  python tools/export.py --format torchscript --output exported/ --weights path/to/checkpoint.pth
"""
from __future__ import annotations

import sys

from tracker.cli import main

if __name__ == "__main__":
    sys.exit(main(["export", *sys.argv[1:]]))
