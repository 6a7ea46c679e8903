#!/usr/bin/env python
"""Speed benchmark (same as `siamtrack bench --speed`): siamtrack vs cv2.TrackerNano, CSRT and KCF, every
tracker and thread regime in its own fresh process (1 thread each, 2 threads each, each library's default).

Writes a JSON report and a Markdown table; see tracker/evaluation/speed.py for the method.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tracker.errors import SiamTrackError
from tracker.evaluation.peers import PeerOptions
from tracker.evaluation.speed import SpeedOptions, write_speed_report
from tracker.evaluation.speed_worker import REGIMES, regime_threads

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def _regimes(text: str) -> tuple[str, ...]:
    items = tuple(r.strip() for r in text.split(",") if r.strip())
    try:
        for r in items:
            regime_threads(r)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return items


def add_speed_arguments(p: argparse.ArgumentParser) -> None:
    """The speed run's command-line options."""
    p.add_argument("--sequence", type=Path, default=SHARED / "data" / "sequences" / "vot_car1",
                   help="sequence folder (video.mp4 + groundtruth.txt) to time on")
    p.add_argument("--frames", type=int, default=300, help="frames to track per pass")
    p.add_argument("--passes", type=int, default=3, help="timed passes per process; the best counts")
    p.add_argument("--rounds", type=int, default=3, help="fresh processes per row, in rotated order; medians are reported")
    p.add_argument("--regimes", type=_regimes, default=REGIMES,
                   help="comma-separated thread regimes: counts and/or 'default' (default: 1,2,default)")
    p.add_argument("--trackers", default="",
                   help="comma-separated `siamtrack bench` names: siamtrack[:WEIGHTS][@key=value], nanotrack, vit, csrt, "
                        "kcf, lightfc, ... (default: every shipped model + nanotrack,csrt,kcf)")
    p.add_argument("--tracker", action="append", default=[],
                   help="one more tracker name, commas allowed (siamtrack:siamtrack_small@scale_num=1,instance_size=223); repeatable")
    p.add_argument("--backend", dest="backends", action="append", choices=("torch", "onnxruntime"),
                   help="siamtrack backend(s) to time (repeatable; default: onnxruntime)")
    p.add_argument("--targets", type=int, nargs="*", default=[],
                   help="also time N targets at once (MultiTracker vs N nanotrack instances), e.g. --targets 8 32")
    p.add_argument("--multi-frames", type=int, default=60, help="frames per pass of the N-target rows")
    p.add_argument("--nano-backbone", type=Path, default=SHARED / "reference" / "nanotrack_v2" / "nanotrack_backbone_sim.onnx")
    p.add_argument("--nano-neckhead", type=Path, default=SHARED / "reference" / "nanotrack_v2" / "nanotrack_head_sim.onnx")
    p.add_argument("--vit-model", type=Path, default=SHARED / "reference" / "vittrack_early" / "vitTracker_early.onnx",
                   help="cv2.TrackerVit's ONNX model (for the vit peer)")
    p.add_argument("--lighttrack-dir", type=Path, default=SHARED / "reference" / "lighttrack",
                   help="folder with lighttrack_*.onnx (for the lighttrack peers)")
    p.add_argument("--fear-dir", type=Path, default=SHARED / "reference" / "fear_xs",
                   help="folder with fear_xs_*.onnx (for the fear peers)")
    p.add_argument("--lightfc-dir", type=Path, default=SHARED / "reference" / "lightfc",
                   help="folder with LightFC's graphs (for the lightfc peer)")
    p.add_argument("--device", default="cpu", help="siamtrack's device: cpu, cuda, cuda:N or auto (the peers run on CPU)")
    p.add_argument("--memory-frames", type=int, default=0, help="also run the first model this many frames and track RSS")
    p.add_argument("--json", type=Path, default=Path("speed.json"), help="JSON report path")
    p.add_argument("--markdown", type=Path, default=Path("speed.md"), help="Markdown table path")


def options_from(args: argparse.Namespace) -> SpeedOptions:
    names = [n for n in args.trackers.split(",") if n] + args.tracker
    return SpeedOptions(sequence=args.sequence, trackers=names, frames=args.frames, passes=args.passes, rounds=args.rounds,
                        regimes=args.regimes, backends=tuple(args.backends or ("onnxruntime",)),
                        targets=tuple(args.targets), multi_frames=args.multi_frames,
                        peers=PeerOptions(args.nano_backbone, args.nano_neckhead, args.vit_model, device=args.device,
                                          lighttrack_dir=args.lighttrack_dir, fear_dir=args.fear_dir,
                                          lightfc_dir=args.lightfc_dir),
                        memory_frames=args.memory_frames, device=args.device)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_speed_arguments(parser)
    args = parser.parse_args(argv)
    try:
        print(write_speed_report(options_from(args), args.json, args.markdown, log=lambda m: print(m, file=sys.stderr)))
    except SiamTrackError as exc:
        print(f"speed: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
