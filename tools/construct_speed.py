#!/usr/bin/env python
"""How long building a tracker takes: the first SiamTracker in a fresh process (warm disk graph cache), the later
ones in that process, and cv2.TrackerNano_create in the same processes, for a pipeline that starts a tracker per
detection. Each round is a fresh process (after one process that warms the cache); medians over the rounds.
Numba's one-time load of the compiled post-processing, which the first tracker of a process pays, is timed
apart, before the first construction.

  python tools/construct_speed.py [--models siamtrack_box,siamtrack_small] [--rounds 5] [--later 20]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
NANO = SHARED / "reference" / "nanotrack_v2"


def worker(model: str, later: int, threads: int, nano: tuple[str, str]) -> dict[str, float]:
    """Seconds: import; Numba loading the post-processing from its cache (once per process, whatever the model:
    the first tracker pays it), timed apart; the first construction, the median later one; the same for
    TrackerNano."""
    start = time.perf_counter()
    import cv2

    from tracker import SiamTracker
    from tracker.families import LOOPS, build_step, loop_config
    imported = time.perf_counter()
    for family in LOOPS:
        build_step(family, loop_config(family, {}))  # the steps' JIT warm-up
    numba = time.perf_counter() - imported
    times = []
    for _ in range(later + 1):
        tick = time.perf_counter()
        SiamTracker(model, device="cpu", threads=threads)
        times.append(time.perf_counter() - tick)
    params = cv2.TrackerNano_Params()
    params.backbone, params.neckhead = nano
    nano_times = []
    for _ in range(later + 1):
        tick = time.perf_counter()
        cv2.TrackerNano_create(params)
        nano_times.append(time.perf_counter() - tick)
    return {"import": imported - start, "numba": numba, "first": times[0], "later": statistics.median(times[1:]),
            "nano_first": nano_times[0], "nano_later": statistics.median(nano_times[1:])}


def _run(model: str, args: argparse.Namespace) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--worker", model, "--later", str(args.later), "--threads", str(args.threads),
           "--nano-backbone", str(args.nano_backbone), "--nano-neckhead", str(args.nano_neckhead)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=os.environ.copy())
    if done.returncode:
        sys.exit(f"construct_speed: error: the worker for {model} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="siamtrack_box,siamtrack_small", help="comma-separated weights")
    p.add_argument("--rounds", type=int, default=5, help="fresh processes per model")
    p.add_argument("--later", type=int, default=20, help="constructions after the first, per process")
    p.add_argument("--threads", type=int, default=1, help="threads of each tracker")
    p.add_argument("--nano-backbone", type=Path, default=NANO / "nanotrack_backbone_sim.onnx")
    p.add_argument("--nano-neckhead", type=Path, default=NANO / "nanotrack_head_sim.onnx")
    p.add_argument("--worker", metavar="MODEL", help=argparse.SUPPRESS)
    args = p.parse_args()
    for f in (args.nano_backbone, args.nano_neckhead):
        if not f.is_file():
            p.error(f"TrackerNano model file {f} not found; pass --nano-backbone/--nano-neckhead")
    if args.worker:
        print(json.dumps(worker(args.worker, args.later, args.threads, (str(args.nano_backbone), str(args.nano_neckhead)))))
        return 0
    print("| model | import s | Numba load s | first s | later | TrackerNano first s | TrackerNano later | "
          "later / TrackerNano |")
    print("|---|---|---|---|---|---|---|---|")
    for model in filter(None, args.models.split(",")):
        _run(model, args)  # warms the disk cache: the rounds measure a user's second run onwards
        rounds = [_run(model, args) for _ in range(args.rounds)]
        m = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
        print(f"| {model} | {m['import']:.2f} | {m['numba']:.2f} | {m['first']:.3f} | {m['later'] * 1000:.1f} ms | "
              f"{m['nano_first']:.3f} | {m['nano_later'] * 1000:.1f} ms | {m['later'] / m['nano_later']:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
