"""Track a long generated stream of tiny frames through the streaming API and report resident memory.

    python tools/long_run.py --frames 100000        # issue 7: RSS at frame 1,000 vs 100,000 within 5 %

The object leaves the frame and returns once per period, so the lost state and re-detection run
throughout. tests/test_robustness.py runs the same loop for a few hundred frames.
"""
from __future__ import annotations

import argparse
import gc
import time

import psutil

from tracker.streaming import track
from tracker.synthetic import stream

LOST = {"lost_threshold": 0.5, "recover_threshold": 0.8}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=64, help="frame side in pixels")
    parser.add_argument("--period", type=int, default=200, help="frames per leave-and-return cycle")
    parser.add_argument("--weights", default=None, help="model (default: the shipped default)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    clip = stream(args.frames, size=args.size, period=args.period)
    checkpoints = {1_000, args.frames} | {n for n in (10_000, 25_000, 50_000, 75_000) if n < args.frames}
    process = psutil.Process()
    lost, start, base = 0, time.perf_counter(), None
    for i, result in enumerate(track(clip, clip.truth(0), weights=args.weights, device="cpu", threads=args.threads,
                                     **LOST), 1):
        lost += result.lost
        if i in checkpoints:
            gc.collect()
            rss = process.memory_info().rss / 2 ** 20
            base = base or rss
            print(f"frame {i:>7,}: RSS {rss:8.1f} MiB ({(rss - base) / base:+.2%} vs frame 1,000), "
                  f"{i / (time.perf_counter() - start):6.1f} frames/s, lost in {lost / i:.1%} of frames", flush=True)


if __name__ == "__main__":
    main()
