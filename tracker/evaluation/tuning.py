"""Tracking-loop hyperparameter search on a training split (coordinate search).

Why coordinate search: each trial is a full benchmark pass (about a minute per model on 2 cores), so a
few values per parameter, one parameter at a time, is what fits; a full grid over five parameters
would not. Trials go through the ordinary benchmark runner into one output folder with ``resume``, so
a repeated candidate (or an interrupted search) never runs twice.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..families import loop_config
from ..errors import SiamTrackError
from .bench import BenchOptions, run_bench
from .paired import paired_difference, tracker_scores
from .peers import PeerOptions, siamtrack_label

Overrides = dict[str, Any]


@dataclass(frozen=True)
class Trial:
    """One evaluated candidate: its TrackerConfig overrides, the benchmark's scores and, for paired
    comparisons, its per-sequence AUCs and P@20s."""

    overrides: Overrides
    auc: float
    precision: float
    aucs: dict[str, float] = field(default_factory=dict)
    precisions: dict[str, float] = field(default_factory=dict)


def _key(overrides: Overrides) -> str:
    return json.dumps(overrides, sort_keys=True)


def initial(grid: dict[str, list[Any]], start: Overrides | None = None) -> Overrides:
    """The configuration a search starts from: each parameter's first value, then ``start``."""
    return {**{name: values[0] for name, values in grid.items()}, **(start or {})}


def coordinate_search(grid: dict[str, list[Any]], evaluate: Callable[[list[Overrides]], list[Trial]],
                      start: Overrides | None = None, rounds: int = 1) -> tuple[Overrides, list[Trial]]:
    """Best overrides by AUC, changing one parameter at a time in ``grid`` order; every trial run.

    The first value of each list is taken as the current one (every candidate names every parameter,
    so no configuration runs twice under two spellings); ties keep the earlier value, so a parameter
    changes only for a gain.
    """
    best = initial(grid, start)
    seen: dict[str, Trial] = {}
    for _ in range(rounds):
        for name, values in grid.items():
            candidates = [{**best, name: v} for v in values]
            todo = list({_key(c): c for c in candidates if _key(c) not in seen}.values())
            for trial in evaluate(todo) if todo else []:
                seen[_key(trial.overrides)] = trial
            best = max(candidates, key=lambda c: seen[_key(c)].auc)
    return best, list(seen.values())


def parse_grid(items: list[str], family: str = "siamfc") -> dict[str, list[Any]]:
    """``["window_influence=0.176,0.25", ...]`` -> ``{"window_influence": [0.176, 0.25], ...}``, checked
    against the family's loop config so a typo fails before any run."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not values:
            raise SiamTrackError(f"bad --param {item!r}; use NAME=V1,V2,... e.g. window_influence=0.176,0.25")
        try:
            parsed = [json.loads(v) for v in values.split(",")]
            for v in parsed:
                loop_config(family, {name: v})
        except ValueError as exc:  # JSONDecodeError is a ValueError
            raise SiamTrackError(f"bad --param {item!r}: {exc}") from None
        grid[name] = parsed
    return grid


def _extra(overrides: Overrides) -> str:
    """The ``k=v,...`` part of a tracker name (sorted keys: one spelling per candidate)."""
    return ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(overrides.items()))


def tracker_name(weights: str | None, overrides: Overrides) -> str:
    """The ``siamtrack[:W][@k=v,...]`` name of a candidate, as ``--trackers`` takes it."""
    extra = _extra(overrides)
    return "siamtrack" + (f":{weights}" if weights else "") + (f"@{extra}" if extra else "")


def bench_evaluator(dataset: Path, out: Path, weights: str | None, split: str | None, workers: int,
                    sequences: list[str] | None = None, peers: PeerOptions = PeerOptions(), progress: bool = False,
                    reports: bool = True, ray: str | None = None) -> Callable[[list[Overrides]], list[Trial]]:
    """Evaluate candidates with ``siamtrack bench`` on ``dataset`` (results cached in ``out``; ``reports``:
    also write its results.json/md and plots there; ``ray``: its sequences as Ray tasks)."""
    def evaluate(candidates: list[Overrides]) -> list[Trial]:
        names = [tracker_name(weights, c) for c in candidates]
        results = run_bench(BenchOptions(dataset, out, names, split, sequences, workers, True, False, progress, peers,
                                         reports=reports, ray=ray))
        trials = []
        for c in candidates:
            row = results["trackers"][siamtrack_label(weights, _extra(c))]
            if row["auc"] is None:
                raise SiamTrackError(f"candidate {c} could not run: {row.get('status')}")
            trials.append(Trial(c, row["auc"], row["precision"], tracker_scores(row, "auc"),
                                tracker_scores(row, "precision")))
        return trials
    return evaluate


def _versus(trial: Trial, start: Trial | None) -> list[str]:
    """ΔAUC, its interval, ΔP@20, its interval, n and wins/losses of ``trial`` against ``start``."""
    if start is None or not set(trial.aucs) & set(start.aucs):
        return ["-"] * 6
    auc = paired_difference(trial.aucs, start.aucs)
    p20 = paired_difference(trial.precisions, start.precisions)
    return [*auc.cells(), *p20.cells(), str(auc.n), f"{auc.wins}/{auc.losses}"]


def report(best: Overrides, trials: list[Trial], start: Overrides | None = None) -> str:
    """Markdown: every trial (best first) with its paired difference against the ``start`` configuration
    (per-sequence, bootstrap 95 % interval over sequences; see paired.py), and the winning overrides as
    JSON for ``--tracker-config``."""
    first = next((t for t in trials if start is not None and _key(t.overrides) == _key(start)), None)
    lines = ["| overrides | AUC | P@20 | ΔAUC vs start | 95 % CI | ΔP@20 vs start | 95 % CI | sequences | wins/losses |",
             "|---|---|---|---|---|---|---|---|---|"]
    for t in sorted(trials, key=lambda t: -t.auc):
        mark = " (start)" if t is first else ""
        lines.append(f"| {_key(t.overrides)}{mark} | {t.auc:.3f} | {t.precision:.3f} | "
                     + " | ".join(_versus(t, first)) + " |")
    return "\n".join(lines) + f"\n\nbest: {_key(best)}\n"
