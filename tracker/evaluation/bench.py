"""`siamtrack bench`: run trackers on a dataset, then write results.json, results.md and the plots."""
from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2

from ..datasets import check_ground_truth, load_dataset
from ..errors import SiamTrackError
from ..io import check_output_folder
from .peers import PeerOptions, parse_trackers
from .plots import write_plots
from .report import build_results, write_results
from .runner import run_benchmark


@dataclass
class BenchOptions:
    """What to benchmark where; ``trackers`` is the comma-separated list of tracker names (see peers);
    ``split`` a split of tracker/splits.json (``validation`` spans two folders: ``dataset`` is their parent);
    ``allow_partial`` scores sequences annotated on their first frames only on those (else an error);
    ``baseline`` is the tracker the others are compared with (default: the first); ``ray`` runs the sequences
    as Ray tasks instead of ``workers`` processes (an address, ``auto`` or ``local``: see runner.evaluate);
    ``reports`` False leaves results.json, results.md and the plots unwritten (parallel tuning trials sharing
    ``out`` would overwrite each other's: the search writes them once)."""

    dataset: Path
    out: Path
    trackers: str | list[str] = "siamtrack,csrt,kcf"
    split: str | None = None
    sequences: list[str] | None = None
    workers: int = 1
    resume: bool = False
    got10k_compat: bool = False
    progress: bool = True
    peers: PeerOptions = field(default_factory=PeerOptions)
    allow_partial: bool = False
    baseline: str | None = None
    ray: str | None = None
    reports: bool = True


def run_bench(opts: BenchOptions) -> dict[str, Any]:
    """Run (or, with ``resume``, complete) the benchmark and write every output; returns results.json's dict."""
    sequences = load_dataset(opts.dataset, split=opts.split, names=opts.sequences)
    check_ground_truth(sequences, opts.allow_partial)
    check_output_folder(opts.out)
    specs = parse_trackers(opts.trackers, opts.peers)
    if opts.baseline is not None and opts.baseline not in [s.name for s in specs]:
        raise SiamTrackError(f"--baseline {opts.baseline} is none of this run's trackers "
                             f"({', '.join(s.name for s in specs)}); give one of those names")
    run_benchmark(specs, sequences, opts.out, max(1, opts.workers), opts.resume, opts.progress, opts.ray)
    info = {"dataset": str(opts.dataset), "split": opts.split, "workers": opts.workers, "ray": opts.ray,
            "threads_per_worker": 1, "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "opencv": cv2.__version__}
    results = build_results(specs, sequences, opts.out, opts.got10k_compat, info, opts.baseline)
    if opts.reports:
        write_results(results, opts.out)
        write_plots(results, opts.out)
    return results
