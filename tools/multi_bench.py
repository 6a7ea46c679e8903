#!/usr/bin/env python
"""Per-frame cost of MultiTracker (one batched forward for all targets) against N independent
SiamTrackers, for N targets in the same video, measured in the same run.

Each frame is timed for both in turn (batched, then the N independent updates), so load changes on a
shared machine hit both alike; the table reports medians over the timed frames. Targets sit on a grid
over a generated 1280x720 clip; lost_threshold is forced to 0 so every target takes the batched path.
Both must give the same boxes: the largest difference is reported too.

  python tools/multi_bench.py --targets 1 4 16 64 --frames 8 --out runs/multi_bench
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from tracker import MultiTracker, SiamTracker
from tracker.synthetic import demo_clip

WIDTH, HEIGHT, BOX = 1280, 720, 48


def grid_boxes(n: int) -> list[tuple[float, float, float, float]]:
    """n boxes spread evenly over the frame, away from its border."""
    cols = int(np.ceil(np.sqrt(n * WIDTH / HEIGHT)))
    rows = int(np.ceil(n / cols))
    xs = np.linspace(BOX, WIDTH - 2 * BOX, cols)
    ys = np.linspace(BOX, HEIGHT - 2 * BOX, rows)
    return [(float(xs[i % cols]), float(ys[i // cols]), float(BOX), float(BOX)) for i in range(n)]


def bench(n: int, frames: list[np.ndarray], args: argparse.Namespace) -> dict:
    kwargs = dict(device=args.device, backend=args.backend, threads=args.threads, lost_threshold=0.0)
    boxes = grid_boxes(n)
    multi = MultiTracker(args.weights, **kwargs)
    ids = [multi.add(frames[0], b) for b in boxes]
    singles = [SiamTracker(args.weights, **kwargs) for _ in boxes]
    for tracker, box in zip(singles, boxes):
        tracker.init(frames[0], box)
    batched_ms, independent_ms, diff = [], [], 0.0
    for i, frame in enumerate(frames[1:]):
        t0 = time.perf_counter()
        results = multi.update(frame)
        t1 = time.perf_counter()
        single = [tracker.update(frame) for tracker in singles]
        t2 = time.perf_counter()
        diff = max(diff, max(float(np.abs(np.subtract(results[tid].box, r.box)).max()) for tid, r in zip(ids, single)))
        if i >= args.warmup:
            batched_ms.append((t1 - t0) * 1e3)
            independent_ms.append((t2 - t1) * 1e3)
    b, s = statistics.median(batched_ms), statistics.median(independent_ms)
    return {"targets": n, "batched_ms": round(b, 2), "independent_ms": round(s, 2), "speedup": round(s / b, 2),
            "batched_ms_per_target": round(b / n, 2), "max_box_diff_px": diff}


def markdown(report: dict) -> str:
    lines = [f"MultiTracker vs independent SiamTrackers: {report['model']}, {report['backend']} on {report['device']} "
             f"({report['threads']} threads), {report['frame_size']} frames, median of {report['timed_frames']} frames",
             "", "| targets | batched ms/frame | independent ms/frame | speedup | batched ms/target | max box diff px |",
             "|---:|---:|---:|---:|---:|---:|"]
    for r in report["rows"]:
        lines.append(f"| {r['targets']} | {r['batched_ms']:.1f} | {r['independent_ms']:.1f} | {r['speedup']:.2f}x | "
                     f"{r['batched_ms_per_target']:.2f} | {r['max_box_diff_px']:.3g} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--frames", type=int, default=8, help="timed frames per target count")
    parser.add_argument("--warmup", type=int, default=1, help="untimed frames first")
    parser.add_argument("--weights", default=None, help="model name or checkpoint (default: the shipped default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backend", default="torch", choices=("torch", "onnxruntime"))
    parser.add_argument("--threads", type=int, default=None,
                        help="intra-op threads (default: the library's choice, the cores other processes leave free)")
    parser.add_argument("--out", default="runs/multi_bench", help="folder for results.json and results.md")
    args = parser.parse_args(argv)
    frames = list(demo_clip(n_frames=args.frames + args.warmup + 1, width=WIDTH, height=HEIGHT))
    model = MultiTracker(args.weights, device=args.device, threads=args.threads).metadata.get("name", str(args.weights))
    rows = []
    for n in args.targets:
        rows.append(bench(n, frames, args))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else (platform.processor() or platform.machine())
    report = {"model": model, "backend": args.backend, "device": device, "threads": torch.get_num_threads(),
              "torch": torch.__version__, "frame_size": f"{WIDTH}x{HEIGHT}", "timed_frames": args.frames, "rows": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(report, indent=1))
    (out / "results.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
