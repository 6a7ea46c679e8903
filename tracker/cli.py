"""`siamtrack` command line: argument parsing only; each subcommand calls into the package.

Every subcommand lives in its own ``_add_<name>`` function. Errors users can fix (SiamTrackError)
print one line and exit with status 2; Ctrl-C exits 130 after outputs are finalised.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from .errors import SiamTrackError

Handler = Callable[[argparse.Namespace], int]


def _add_track(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("track", help="track one object through a video, image folder or webcam")
    p.add_argument("input", help="video file, folder of images, or webcam index (e.g. 0)")
    p.set_defaults(handler=_todo)


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="track a generated clip (or a given video) and write an annotated demo.mp4")
    p.set_defaults(handler=_todo)


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmark trackers side by side on a dataset (AUC, P@20, SR, fps)")
    p.set_defaults(handler=_todo)


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train or fine-tune a Siamese network")
    p.set_defaults(handler=_todo)


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a model to ONNX or TorchScript")
    p.set_defaults(handler=_todo)


def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the shipped models")
    p.set_defaults(handler=_todo)


def _todo(args: argparse.Namespace) -> int:
    raise SiamTrackError(f"'siamtrack {args.command}' is not available in this build")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="siamtrack", description="Real-time Siamese single-object tracker.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (_add_track, _add_demo, _add_bench, _add_train, _add_export, _add_models):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except SiamTrackError as exc:
        print(f"siamtrack: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("siamtrack: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
