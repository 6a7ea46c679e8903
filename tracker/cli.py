"""`siamtrack` command line: argument parsing only; each subcommand calls into the package.

Every subcommand lives in its own ``_add_<name>`` function. Errors users can fix (SiamTrackError, and any
OSError from a write failing mid-run) print one line and exit with status 2; Ctrl-C exits 130 after outputs
are finalised.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from .errors import SiamTrackError

Handler = Callable[[argparse.Namespace], int]

WEIGHTS_HELP = ("shipped model name, checkpoint path (ours, siamfc-pytorch, NanoTrack, LightFC's official .pth.tar) "
                "or a graph folder (NanoTrack's ONNX pair, LightFC's template + track graphs); default: the default model")


def _add_track(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("track", help="track one object through a video, image folder or webcam",
                       description="Track the object in --box (or picked with --select) from the first frame on; "
                                   "write an annotated video and/or a CSV of boxes, both flushed frame by frame.")
    p.add_argument("input", help="video file, folder of images, or webcam index (e.g. 0)")
    p.add_argument("--box", metavar="X,Y,W,H", help="target box on the first frame, 0-based pixels "
                   "(write --box=-5,10,40,40 when x is negative)")
    p.add_argument("--select", action="store_true", help="drag the box on the first frame (needs a display)")
    p.add_argument("--output", metavar="VIDEO", help="annotated video to write (.mp4 or .avi): box, score, fps")
    p.add_argument("--boxes", metavar="CSV", help="CSV to write: frame,x,y,w,h,score,lost per frame")
    p.add_argument("--show", action="store_true", help="display the tracking live (q or Esc stops)")
    p.add_argument("--weights", help=WEIGHTS_HELP)
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N")
    p.add_argument("--backend", default="auto", choices=("auto", "torch", "onnxruntime"),
                   help="inference backend (auto: onnxruntime on CPU, torch on GPU)")
    p.add_argument("--threads", type=int, help="CPU threads for inference, 1 to the cores this process may use "
                   "(default: the cores other processes leave free)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    p.set_defaults(handler=_run_track)


def _check_threads(threads: int | None) -> None:
    """--threads from 1 to the cores this process may use: more only makes the threads wait for each other
    (999 threads on 2 cores tracked at 0.2 frames/s)."""
    from .engine import usable_cores
    if threads is None:
        return
    if threads < 1:
        raise SiamTrackError(f"--threads must be at least 1, got {threads}")
    cores = usable_cores()
    if threads > cores:
        raise SiamTrackError(f"--threads {threads} is more than the {cores} CPU cores this process may use; "
                             f"pass --threads {cores} or fewer (or leave it out: the cores other processes leave free)")


def _run_track(args: argparse.Namespace) -> int:
    from .app import TrackOptions, one_line_warnings, track
    _check_threads(args.threads)
    with one_line_warnings():
        summary = track(TrackOptions(args.input, args.box, args.select, args.output, args.boxes, args.show,
                                     args.overwrite, args.max_frames, args.weights, args.device, args.backend,
                                     args.threads))
    print(summary.describe())
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="track a generated clip (or a given video) and write an annotated demo.mp4",
                       description="With no INPUT: generate a clip with known truth (a textured object moving, "
                                   "turning, scaling, briefly occluded), track it, write the annotated video and "
                                   "print the mean IoU against the truth.")
    p.add_argument("input", nargs="?", help="optional sequence folder: groundtruth.txt + video.mp4 (or img/)")
    p.add_argument("--output", default="demo.mp4", metavar="VIDEO", help="annotated video to write (default demo.mp4)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output video")
    p.add_argument("--weights", help=WEIGHTS_HELP)
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated clip")
    p.add_argument("--frames", type=int, default=150, help="length of the generated clip")
    p.add_argument("--show", action="store_true", help="display the tracking live (q or Esc stops)")
    p.set_defaults(handler=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from .app import DemoOptions, demo, one_line_warnings
    if args.frames < 2:
        raise SiamTrackError(f"--frames must be at least 2, got {args.frames}")
    with one_line_warnings():
        summary, mean_iou = demo(DemoOptions(args.input, args.output, args.overwrite, args.weights, args.device,
                                             args.seed, args.frames, args.show))
    print(summary.describe())
    print(f"mean IoU against the known truth: {mean_iou:.3f} over {max(summary.frames - 1, 0)} frames after the first")
    return 0


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmark trackers side by side on a dataset (AUC, P@20, SR, fps)",
                       description="Run trackers on the same decoded frames of every sequence and write results.json, "
                                   "results.md, success.png, precision.png and per-sequence box files to --out.")
    from .splits import load_splits
    p.add_argument("dataset", help="dataset folder: <Name>/video.mp4+groundtruth.txt, OTB (<Seq>/img/) or GOT-10k "
                                   "layout; for a split spanning several folders, their parent (e.g. ../shared/data)")
    p.add_argument("--trackers", default="siamtrack,csrt,kcf",
                   help="comma-separated: siamtrack[:WEIGHTS][@key=value,...], csrt, kcf, mil, nanotrack, vit, "
                        "lighttrack, lighttrack_vot, fear, fear_smooth, lightfc")
    p.add_argument("--baseline", metavar="TRACKER",
                   help="the tracker (as results.md names it) every other one is compared with: mean paired "
                        "per-sequence difference of AUC and P@20 with a bootstrap 95%% interval "
                        "(default: the first of --trackers)")
    p.add_argument("--out", default="bench", help="output folder (default: ./bench)")
    p.add_argument("--split", help="only this split of tracker/splits.json, by dataset folder: "
                                   f"{load_splits().describe()}; a group spans its folders, so DATASET is their "
                                   "parent, e.g. ../shared/data --split validation (GOT-10k: a subfolder)")
    p.add_argument("--sequences", help="comma-separated sequence names to run (default: all)")
    p.add_argument("--workers", type=int, default=1, help="parallel worker processes, one thread each")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="run every sequence as a Ray task (one thread each) instead of --workers: on the cluster at "
                        "ADDRESS (auto, or host:port of its head), or on a local Ray when no ADDRESS is given; "
                        "the dataset must be at the same path on every node (needs pip install 'siamtrack[ray]')")
    p.add_argument("--resume", action="store_true", help="skip tracker/sequence pairs whose box files exist")
    p.add_argument("--got10k-compat", action="store_true",
                   help="count frame 0 as the got10k toolkit's OTB report does (default: frame 0 excluded)")
    p.add_argument("--allow-partial", action="store_true",
                   help="score a sequence whose ground truth stops before its last frame on the frames it covers "
                        "(all frames are tracked; default: an error). Only a first box: tracked, no metrics")
    p.add_argument("--nano-backbone", help="NanoTrack backbone ONNX (for the nanotrack peer)")
    p.add_argument("--nano-neckhead", help="NanoTrack neck/head ONNX (for the nanotrack peer)")
    p.add_argument("--vit-model", help="OpenCV TrackerVit ONNX model (for the vit peer)")
    p.add_argument("--lighttrack-dir", metavar="FOLDER",
                   help="folder with lighttrack_z_feature.onnx, lighttrack_x_feature.onnx, lighttrack_head.onnx "
                        "(for the lighttrack peers)")
    p.add_argument("--fear-dir", metavar="FOLDER",
                   help="folder with fear_xs_template.onnx, fear_xs_track.onnx (for the fear peers)")
    p.add_argument("--lightfc-dir", metavar="FOLDER",
                   help="folder with lightfc_template.onnx, lightfc_track.onnx, lightfc_weights.bin (for the lightfc peer)")
    p.add_argument("--device", default="auto", help="device for siamtrack trackers: auto, cpu, cuda or cuda:N")
    p.add_argument("--backend", default="auto", choices=("auto", "torch", "onnxruntime"),
                   help="inference backend for siamtrack trackers (auto: onnxruntime on CPU, torch on GPU)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--speed", action="store_true",
                   help="time the trackers instead, each in its own process at 1 thread, 2 threads and each library's "
                        "default (fps, stages, FLOPs, ratios) on the first --sequences sequence; writes speed.json and "
                        "speed.md to --out (see tools/speed.py)")
    p.set_defaults(handler=_run_bench)


def _run_bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .evaluation.bench import BenchOptions, run_bench
    from .evaluation.peers import PeerOptions
    from .evaluation.report import markdown, unreadable_note, without_result
    if args.workers < 1:
        raise SiamTrackError(f"--workers must be at least 1, got {args.workers}")
    path = lambda v: Path(v) if v else None  # noqa: E731
    peers = PeerOptions(path(args.nano_backbone), path(args.nano_neckhead), path(args.vit_model), args.device,
                        args.backend, lighttrack_dir=path(args.lighttrack_dir), fear_dir=path(args.fear_dir),
                        lightfc_dir=path(args.lightfc_dir))
    names = [n for n in args.sequences.split(",") if n] if args.sequences else None
    if args.speed:
        from .evaluation.speed import bench_speed
        print(bench_speed(Path(args.dataset), names, args.trackers, peers, Path(args.out), args.device), end="")
        return 0
    results = run_bench(BenchOptions(Path(args.dataset), Path(args.out), args.trackers, args.split, names, args.workers,
                                     args.resume, args.got10k_compat, not args.no_progress, peers, args.allow_partial,
                                     args.baseline, args.ray))
    print(markdown(results, per_sequence=False), end="")
    failed = without_result(results)
    reasons = ", ".join(f"{name} ({why})" for name, why in failed.items())
    if len(failed) == len(results["trackers"]):
        raise SiamTrackError(f"no tracker produced a result: {reasons}; the report is in {args.out}/results.md")
    unreadable = unreadable_note(results)
    print(f"wrote {args.out}/results.json, results.md, success.png, precision.png"
          + (f"; no result from {reasons}" if failed else "") + (f"; unreadable, not scored: {unreadable}" if unreadable else ""))
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train or fine-tune a Siamese network",
                       description="Train or fine-tune a Siamese network on video sequences and/or still images "
                                   "(SiamFC pairs from a patch cache; optional distillation from a teacher). "
                                   "Run under `torchrun --nproc_per_node N` for DistributedDataParallel.")
    from .training.config import add_train_arguments
    add_train_arguments(p)

    def handler(args: argparse.Namespace) -> int:
        from .io import check_output_folder
        from .training.config import setup_from_args
        from .training.trainer import train
        setup = setup_from_args(args)
        check_output_folder(setup.train.out)  # before any data is read: a bad --out costs nothing
        print(f"checkpoints in {train(setup, resume=args.resume)}")
        return 0

    p.set_defaults(handler=handler)


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a model to ONNX or TorchScript",
                       description="Write the backbone and head (uint8 BGR crops in, dynamic batch) into a folder: "
                                   "backbone.onnx + head.onnx, or siamtrack.pt; plus siamtrack.json with the configs.")
    p.add_argument("--format", required=True, choices=("onnx", "torchscript"), help="output format")
    p.add_argument("--output", required=True, metavar="DIR",
                   help="folder to write, created if missing (a file name such as model.onnx is refused)")
    p.add_argument("--weights", default=None, help=WEIGHTS_HELP)
    p.set_defaults(handler=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from .export import export
    for path in export(args.weights, args.format, args.output):
        print(path)
    return 0


def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the shipped models")
    p.set_defaults(handler=_run_models)


def _run_models(args: argparse.Namespace) -> int:
    from .model_zoo import shipped_models, weights_dirs
    models = shipped_models()
    if not models:
        print("no shipped models found (no registry.json in " + ", ".join(map(str, weights_dirs())) + ")")
        return 0
    default = models[""].name if "" in models else None
    for name, m in sorted(models.items()):
        if name:
            mark = " (default)" if name == default else ""
            print(f"{name}{mark}: {m.description or 'no description'} [{m.path}]")
    return 0


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
    except OSError as exc:  # a write failing mid-run (disk full, a folder removed): what was written is kept
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"siamtrack: error: cannot write or read a file{where}: {exc.strerror or exc}; free space or choose "
              "another location (files already written are kept)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("siamtrack: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
