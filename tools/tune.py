#!/usr/bin/env python
"""Search the tracking-loop hyperparameters of one model on a TRAINING split (coordinate search).

Each --param is NAME=V1,V2,... over TrackerConfig fields; put the current value first (ties keep it).
Trials are ordinary `siamtrack bench` runs cached in --out (--resume semantics), so an interrupted
search continues. Prints every trial and the best overrides as JSON, ready for
`tools/train.py --publish NAME --tracker-config JSON`. Tune on train, report on val: never the reverse.
Every trial is compared with the start configuration (first values + --start): mean paired per-sequence
ΔAUC and ΔP@20 with a bootstrap 95 % interval over sequences, so a gain inside the noise shows as one.
With --ray [ADDRESS], the candidates of each step run as Ray Tune trials, their sequences as Ray tasks (one CPU and
one thread each), on the cluster at ADDRESS (auto, host:port) or on a local Ray; the dataset and --out must be at
the same path on every node.

Example:
  python tools/tune.py ../shared/data/sequences --split train --weights runs/stage3/epoch_016.pth --workers 2 \\
      --param window_influence=0.176,0.25,0.35 --param scale_lr=0.59,0.4 --out runs/tune
  python tools/tune.py /mnt/data/sequences --split train --param window_influence=0.176,0.25,0.35 \\
      --out /mnt/runs/tune --ray auto
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from tracker.errors import SiamTrackError
from tracker.evaluation.tuning import bench_evaluator, coordinate_search, initial, parse_grid, report
from tracker.model_zoo import resolve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", help="dataset folder (any layout siamtrack bench reads)")
    parser.add_argument("--split", default="train", help="split of tracker/splits.json to tune on (default: train)")
    parser.add_argument("--sequences", help="comma-separated sequence names of the split to use (default: all)")
    parser.add_argument("--weights", help="model name or checkpoint (default: the shipped default)")
    parser.add_argument("--param", action="append", required=True, metavar="NAME=V1,V2",
                        help="a loop config field (TrackerConfig or BoxTrackerConfig, by the model's family) and the values "
                             "to try (repeat for more fields)")
    parser.add_argument("--start", default="{}", metavar="JSON", help="overrides to start from")
    parser.add_argument("--rounds", type=int, default=1, help="passes over the parameters (default 1)")
    parser.add_argument("--workers", type=int, default=1, help="parallel worker processes")
    parser.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                        help="run the candidates as Ray Tune trials, their sequences as Ray tasks, on the cluster at "
                             "ADDRESS (auto, host:port) or, with no ADDRESS, on a local Ray (needs pip install "
                             "'siamtrack[ray]')")
    parser.add_argument("--out", default="runs/tune", help="folder for the trial box files and tune.json/tune.md")
    args = parser.parse_args(argv)
    try:
        grid = parse_grid(args.param, resolve(args.weights)[0].config.family)
        out = Path(args.out)
        names = [n for n in args.sequences.split(",") if n] if args.sequences else None
        start = initial(grid, json.loads(args.start))
        if args.ray is None:
            engine = contextlib.nullcontext()
            evaluate = bench_evaluator(Path(args.dataset), out, args.weights, args.split or None, args.workers,
                                       names)
        else:
            from tracker.evaluation.ray_engine import connected
            from tracker.evaluation.tune_ray import tune_evaluator
            engine = connected(args.ray)
            evaluate = tune_evaluator(Path(args.dataset).absolute(), out.absolute(), args.weights, args.split or None,
                                      args.ray, names, workers=args.workers)
        with engine:
            best, trials = coordinate_search(grid, evaluate, start, args.rounds)
        text = report(best, trials, start)
        (out / "tune.md").write_text(text)
        (out / "tune.json").write_text(json.dumps({"start": start, "best": best, "trials": [t.__dict__ for t in trials]},
                                                  indent=1))
        print(text, end="")
    except SiamTrackError as exc:
        print(f"tune: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
