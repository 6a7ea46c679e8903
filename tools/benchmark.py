#!/usr/bin/env python
"""Benchmark trackers side by side on a dataset (same as `siamtrack bench`; see README, section Benchmarks).

Examples:
  python tools/benchmark.py ../shared/data/sequences --split val --trackers siamtrack,csrt,kcf --out bench_val
  python tools/benchmark.py OTB100/ --trackers siamtrack,siamtrack:FDSiamfc_30.pth,nanotrack \\
      --nano-backbone nanotrack_backbone_sim.onnx --nano-neckhead nanotrack_head_sim.onnx --workers 2 --resume
"""
from __future__ import annotations

import sys

from tracker.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
