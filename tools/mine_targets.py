#!/usr/bin/env python
"""Let a teacher label targets other than the annotated one in the training videos (issue 24, item 1):
short pseudo-sequences of whatever it tracks confidently forwards and back, for ``--extra-sequences``.

  python tools/mine_targets.py ../shared/data --split training --teacher ../shared/reference/lightfc \\
      --out runs/mined_lightfc
  python tools/train.py ... --extra-sequences ../shared/data/more_sequences,runs/mined_lightfc

Validation sequences are never mined (tracker/splits.json, as training reads it), and training leaves out any
folder named after one (``NAME~first~k``). The teacher runs as a tracker (its own loop), one thread per worker.
"""
from __future__ import annotations

import argparse
import sys
from functools import partial

from tracker import MultiTracker
from tracker.errors import SiamTrackError
from tracker.training.data import training_sequences
from tracker.training.mining import MiningConfig, mine
from tracker.training.options import add_arguments, from_args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="folder of sequences (e.g. ../shared/data, which holds the split's folders)")
    parser.add_argument("--split", default="training", help="split of tracker/splits.json to mine (never validation)")
    parser.add_argument("--teacher", required=True, help="weights the tracker runs with (LightFC's graph folder, a "
                                                          "checkpoint, a registered name)")
    parser.add_argument("--out", required=True, help="folder for the pseudo-sequences and mined.json")
    parser.add_argument("--workers", type=int, default=1, help="sequences mined at once, one process and one "
                                                               "thread each")
    add_arguments(parser, MiningConfig, "", "mining")
    args = parser.parse_args(argv)
    try:
        cfg = from_args(args, MiningConfig)
        sequences = training_sequences(args.data, args.split)
        factory = partial(MultiTracker, args.teacher, device="cpu", threads=1)
        factory()  # a bad --teacher fails here, before any work
        summary = mine(sequences, factory, cfg, args.out, args.teacher, args.workers)
    except (SiamTrackError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{summary['total']} target(s) from {len(summary['targets'])} sequence(s) in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
