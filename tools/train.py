#!/usr/bin/env python
"""Train or fine-tune a Siamese tracker network (same options as `siamtrack train`).

Examples (see README, section Training):
  python tools/train.py --sequences ../shared/data/sequences --images ../shared/data/images --out runs/siamfc
  torchrun --nproc_per_node 2 tools/train.py --sequences DATA --batch-size 16   # DistributedDataParallel
"""
from __future__ import annotations

import argparse
import sys

from tracker.errors import SiamTrackError
from tracker.training.trainer import add_train_arguments, setup_from_args, train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    try:
        out = train(setup_from_args(args), resume=args.resume)
    except SiamTrackError as exc:
        print(f"train: error: {exc}", file=sys.stderr)
        return 2
    print(f"checkpoints in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
