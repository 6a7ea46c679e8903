#!/usr/bin/env python
"""Train or fine-tune a Siamese tracker network (same options as `siamtrack train`), and optionally
ship the result into weights/ as a registered model.

Examples (see README, section Training):
  python tools/train.py --sequences ../shared/data/sequences --images ../shared/data/images --out runs/siamfc
  torchrun --nproc_per_node 2 tools/train.py --sequences DATA --batch-size 16   # DistributedDataParallel
  python tools/train.py --family box --sequences DATA --init nanotrack_v3_state_dict.pth --teacher SAME --lr 1e-5
  python tools/train.py ...same options... --resume runs/siamfc/state.pth --publish my_model   # ship the last epoch
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from tracker.errors import SiamTrackError
from tracker.training.publish import publish
from tracker.training.config import add_train_arguments, setup_from_args
from tracker.training.trainer import train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_train_arguments(parser)
    ship = parser.add_argument_group("shipping (tools/train.py only)")
    ship.add_argument("--publish", metavar="NAME", default=None,
                      help="after training, copy the last epoch's checkpoint to weights/NAME.pth and make it the "
                           "registered default in weights/registry.json")
    ship.add_argument("--publish-description", default="", help="one-line description for the registry")
    ship.add_argument("--publish-keep-default", action="store_true",
                      help="register the model without making it the default (e.g. a faster preset of the same weights)")
    ship.add_argument("--tracker-config", default="{}", metavar="JSON",
                      help='tracking-loop overrides stored in the shipped checkpoint, e.g. \'{"window_influence": 0.2}\'')
    args = parser.parse_args(argv)
    try:
        setup = setup_from_args(args)
        out = train(setup, resume=args.resume)
        print(f"checkpoints in {out}")
        if args.publish:
            epochs = sorted(Path(out).glob("epoch_*.pth"))
            if not epochs:
                raise SiamTrackError(f"nothing to publish: {out} holds no epoch_NNN.pth yet")
            path = publish(epochs[-1], args.publish, args.publish_description, json.loads(args.tracker_config),
                           default=not args.publish_keep_default)
            print(f"published {epochs[-1]} as {path}")
    except SiamTrackError as exc:
        print(f"train: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    code = main()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # A DDP rank's interpreter teardown has aborted ("terminate called without an active exception") after
        # training had finished and every file was written, and torchrun then failed the whole job: a rank leaves
        # without that teardown once its output is flushed.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
