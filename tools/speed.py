#!/usr/bin/env python
"""Speed benchmark (same as `siamtrack bench --speed`): siamtrack vs CSRT, KCF and NanoTrack in one run.

Writes a JSON report and a Markdown table; see tracker/evaluation/speed.py for the method.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tracker.evaluation.speed import SpeedOptions, write_speed_report

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def add_speed_arguments(p: argparse.ArgumentParser) -> None:
    """The speed run's command-line options."""
    p.add_argument("--sequence", type=Path, default=SHARED / "data" / "sequences" / "vot_car1",
                   help="sequence folder (video.mp4 + groundtruth.txt) to time on")
    p.add_argument("--frames", type=int, default=300, help="frames to track per pass")
    p.add_argument("--passes", type=int, default=5, help="repeated passes; medians are reported")
    p.add_argument("--trackers", default="",
                   help="comma-separated `siamtrack bench` names: siamtrack[:WEIGHTS][@key=value], nanotrack, csrt, "
                        "kcf (default: every shipped model + nanotrack,csrt,kcf)")
    p.add_argument("--tracker", action="append", default=[],
                   help="one more tracker name, commas allowed (siamtrack:siamtrack_small@scale_num=1,instance_size=223); repeatable")
    p.add_argument("--backend", dest="backends", action="append", choices=("torch", "onnxruntime"),
                   help="siamtrack backend(s) to time (repeatable; default: onnxruntime and torch)")
    p.add_argument("--nano-backbone", type=Path, default=SHARED / "reference" / "nanotrack_v2" / "nanotrack_backbone_sim.onnx")
    p.add_argument("--nano-neckhead", type=Path, default=SHARED / "reference" / "nanotrack_v2" / "nanotrack_head_sim.onnx")
    p.add_argument("--threads", type=int, default=1,
                   help="compute threads for every tracker; 0 = each library's default (siamtrack: cores minus "
                        "load; OpenCV: all cores)")
    p.add_argument("--device", default="cpu", help="siamtrack's device: cpu, cuda, cuda:N or auto (the peers run on CPU)")
    p.add_argument("--memory-frames", type=int, default=0, help="also run the first model this many frames and track RSS")
    p.add_argument("--json", type=Path, default=Path("speed.json"), help="JSON report path")
    p.add_argument("--markdown", type=Path, default=Path("speed.md"), help="Markdown table path")


def options_from(args: argparse.Namespace) -> SpeedOptions:
    names = [n for n in args.trackers.split(",") if n] + args.tracker
    return SpeedOptions(sequence=args.sequence, trackers=names, frames=args.frames, passes=args.passes,
                        backends=tuple(args.backends or ("onnxruntime", "torch")),
                        nano_backbone=args.nano_backbone, nano_neckhead=args.nano_neckhead,
                        threads=args.threads, memory_frames=args.memory_frames, device=args.device)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_speed_arguments(parser)
    args = parser.parse_args(argv)
    print(write_speed_report(options_from(args), args.json, args.markdown, log=lambda m: print(m, file=sys.stderr)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
