"""Tuning trials as Ray Tune trials: each step of the coordinate search (tuning.py) is a Tune grid search over
its candidates, one trial per candidate, on a cluster or a local Ray.

Why this shape: the search, its objective (mean AUC on a training split), the paired intervals against the start
configuration and the resumable output folder stay tuning.py's; Tune only runs and retries the trials. A trial is
the ordinary benchmark of its candidate with its sequences as Ray tasks (one CPU and one thread each, from the
whole cluster: the trial itself holds no CPU), its box files cached in the output folder; the search then reads
them back through the same benchmark code (nothing runs twice), so a trial's scores and the report's are one
computation. The dataset and the output folder must be shared by every node.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import SiamTrackError
from .peers import PeerOptions
from .ray_engine import first_line
from .tuning import Overrides, Trial, bench_evaluator

try:
    from ray import tune
except ImportError:
    raise SiamTrackError("--ray needs Ray Tune, which is not installed: pip install 'siamtrack[ray]'") from None

MAX_FAILURES = 3  # a trial whose worker dies (killed, out of memory, node lost) runs again up to this often


@dataclass(frozen=True)
class TrialSetup:
    """What every trial of a search shares; ``cwd`` is where relative paths given to the search mean something
    (a trial runs in a working folder of Tune's own); ``address``: the Ray the search runs on."""

    dataset: Path
    out: Path
    weights: str | None
    split: str | None
    sequences: list[str] | None
    peers: PeerOptions
    cwd: Path
    address: str


def _trial(config: dict[str, Any], setup: TrialSetup) -> dict[str, float]:
    if setup.cwd.is_dir():
        os.chdir(setup.cwd)
    evaluate = bench_evaluator(setup.dataset, setup.out, setup.weights, setup.split, 1, setup.sequences, setup.peers,
                               reports=False, ray=setup.address)
    trial = evaluate([config["overrides"]])[0]
    return {"auc": trial.auc, "precision": trial.precision}


def tune_evaluator(dataset: Path, out: Path, weights: str | None, split: str | None, address: str,
                   sequences: list[str] | None = None, peers: PeerOptions = PeerOptions(),
                   workers: int = 1) -> Callable[[list[Overrides]], list[Trial]]:
    """Like tuning.bench_evaluator, with the candidates run as Ray Tune trials (call the evaluator inside
    ray_engine.connected(address)); ``workers``: processes of the read-back (which only scores cached boxes)."""
    setup = TrialSetup(dataset, out, weights, split, sequences, peers, Path.cwd(), address)
    read_back = bench_evaluator(dataset, out, weights, split, workers, sequences, peers)

    def evaluate(candidates: list[Overrides]) -> list[Trial]:
        # a trial only waits for its tasks: it holds a token of memory and no CPU (Tune wants some resource)
        trial = tune.PlacementGroupFactory([{"memory": 2 ** 20}])
        tuner = tune.Tuner(tune.with_resources(tune.with_parameters(_trial, setup=setup), trial),
                           param_space={"overrides": tune.grid_search(candidates)},
                           tune_config=tune.TuneConfig(metric="auc", mode="max"),
                           run_config=tune.RunConfig(storage_path=str((out / "ray_tune").absolute()), verbose=0,
                                                     failure_config=tune.FailureConfig(max_failures=MAX_FAILURES)))
        for result in tuner.fit():
            if result.error is not None:
                cause = getattr(result.error, "cause", None) or result.error  # a trial's own exception, if any
                raise SiamTrackError(f"candidate {result.config['overrides']} failed in Ray Tune: "
                                     f"{type(cause).__name__}: {first_line(cause)}")
        return read_back(candidates)
    return evaluate
