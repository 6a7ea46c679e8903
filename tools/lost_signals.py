"""Record what a tracker knows on every frame, then choose a lost-flag threshold offline (issue 28).

    python tools/lost_signals.py record ../shared/data --split training --out runs/signals/box
    python tools/lost_signals.py choose runs/signals/box --signal spread --rate 0.5 --precision 0.85
    python tools/lost_signals.py ceiling bench/val ../shared/data --split validation --tracker siamtrack

``record``: per sequence one ``NAME.npz``: the step's score map (NaN while in the lost state, where only the
re-detection crop runs), the raw peak, the confidence, the box, the lost state, the reported flag, the ground
truth and the map's peak radius. The tracker runs as the bench runs it (one thread, the shipped loop).

``ceiling``: how far any flag built on the score alone can go, from a bench's saved boxes and scores: the failure
frames split into target absent, drift *near* the target (IoU 0, centre within 1.5 target sizes) and drift *far*
(onto a distractor or background), the score's median on each, and the best recall that a threshold on the score
(``score < t``) reaches at ``--precision``, chosen on the same frames: an upper bound, not a result.

``choose``: replays a signal (the doubt's rivalry or the spread, as a running mean frozen while lost, computed by
the library's own functions) over the recorded frames and picks the lowest threshold whose flag (lost state or
signal >= threshold) reaches ``--precision`` on failure frames (the bench's definition). It reports that
threshold's precision/recall on the same frames, and *leave one sequence out*: the threshold chosen on all other
sequences, applied to each one in turn, counts pooled. The second is what a new set of sequences will see;
failures concentrate in a few sequences, so the two differ a lot (README, "What score and lost mean").
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tracker import SiamTracker
from tracker.datasets import Sequence, load_dataset
from tracker.evaluation.lost_metrics import outcome
from tracker.evaluation.report import saved_outcome
from tracker.evaluation.runner import box_paths, parallel_map, safe_name
from tracker.postprocess.map_signals import rivalry, spread

THRESHOLDS = np.round(np.arange(0.0, 1.0005, 0.005), 3)


def record(weights: str | None, seq: Sequence, **config: float) -> dict[str, np.ndarray]:
    """Track ``seq`` with one thread and keep, per frame, the map the step shows, the target's state and the
    flag the tracker reported (``config``: loop overrides)."""
    tracker = SiamTracker(weights, device="cpu", threads=1, **config)
    multi = tracker._multi  # the recorder reads the lifecycle's own state: nothing recomputed, nothing skewed
    shown: list[np.ndarray] = []
    score_map = multi.step.score_map
    multi.step.score_map = lambda outputs: shown.append(score_map(outputs)) or shown[-1]
    n = len(seq)
    maps = raws = None
    boxes, conf, lost, flag = np.full((n, 4), np.nan), np.full(n, np.nan), np.zeros(n, bool), np.zeros(n, bool)
    radius = np.zeros(n, np.int32)
    for t, frame in enumerate(seq.frames()):
        if t == 0:
            tracker.init(frame, seq.init_box)
            boxes[0] = seq.init_box
            continue
        shown.clear()
        result = tracker.update(frame)
        target = multi._targets[tracker._id]
        if maps is None:
            side = shown[0].shape if shown else (1, 1)
            maps, raws = np.full((n, *side), np.nan, np.float32), np.full(n, np.nan)
        if shown:
            maps[t] = shown[0]
            raws[t] = target.score * target.reference
        boxes[t], conf[t], lost[t], flag[t] = result.box, target.score, target.lost, result.lost
        radius[t] = target.peak_radius()
    gt = seq.boxes[:n]  # may be shorter than the run (partial ground truth): rows past it are not scored
    return {"maps": maps, "raw": raws, "confidence": conf, "boxes": boxes, "lost_state": lost, "flag": flag,
            "radius": radius, "gt": gt}


def _job(job: tuple[str | None, Sequence, Path]) -> str:
    weights, seq, out = job
    np.savez_compressed(out / f"{safe_name(seq.name)}.npz", **record(weights, seq))
    return seq.name


def replay(rec: dict[str, np.ndarray], signal: str, rate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(signal's running mean, lost state, failure) on the scored frames of one recording, as _Target.apply
    updates it: frozen while in the lost state."""
    maps, lost = rec["maps"], rec["lost_state"]
    value, level = np.zeros(len(lost)), 0.0
    for t in range(1, len(lost)):
        if not np.isnan(maps[t]).any():
            m = maps[t].astype(np.float32)
            level += rate * ((rivalry(m, int(rec["radius"][t])) if signal == "doubt" else spread(m)) - level)
        value[t] = level
    o = outcome(rec["boxes"], rec["confidence"], lost, rec["gt"])
    n = len(o.failure) + 1
    return value[1:n], lost[1:n], o.failure


def _counts(value: np.ndarray, lost: np.ndarray, failure: np.ndarray) -> np.ndarray:
    """(flagged failures, flagged frames, failures) at every threshold of THRESHOLDS."""
    flagged = lost[None, :] | (value[None, :] >= THRESHOLDS[:, None])
    return np.stack([(flagged & failure).sum(1), flagged.sum(1), np.full(len(THRESHOLDS), failure.sum())], 1)


def _pick(counts: np.ndarray, precision: float) -> int:
    """Index of the threshold with the highest recall among those reaching ``precision`` (the highest if none)."""
    prec = counts[:, 0] / np.maximum(counts[:, 1], 1)
    recall = np.where(prec >= precision, counts[:, 0], -1)
    return int(np.argmax(recall)) if recall.max() >= 0 else len(THRESHOLDS) - 1


def choose(folder: Path, signal: str, rate: float, precision: float) -> dict[str, float]:
    """The threshold for ``signal`` and its precision/recall in-sample and left-one-sequence-out."""
    per = np.stack([_counts(*replay(dict(np.load(f)), signal, rate)) for f in sorted(folder.glob("*.npz"))])
    total = per.sum(0)
    i = _pick(total, precision)
    held = sum(per[k, _pick(total - per[k], precision)] for k in range(len(per)))
    return {"threshold": float(THRESHOLDS[i]), "precision": total[i, 0] / max(total[i, 1], 1),
            "recall": total[i, 0] / max(total[i, 2], 1), "loso_precision": held[0] / max(held[1], 1),
            "loso_recall": held[0] / max(held[2], 1), "sequences": len(per)}


NEAR = 1.5  # target sizes (sqrt of the true box's area) between centres: a drift still beside the target


def drift_distance(boxes: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Distance between the centres of ``boxes`` and ``gt`` in target sizes (NaN where the target is absent)."""
    offset = boxes[:, :2] + boxes[:, 2:] / 2 - (gt[:, :2] + gt[:, 2:] / 2)
    return np.linalg.norm(offset, axis=1) / np.sqrt(gt[:, 2] * gt[:, 3])


def best_score_recall(score: np.ndarray, failure: np.ndarray, precision: float) -> float:
    """The highest recall of failure frames that the flag ``score < t`` reaches at ``precision``, over every
    threshold ``t`` (cut only between distinct scores: tied frames are flagged together)."""
    order = np.argsort(score, kind="stable")
    s, f = score[order], failure[order]
    cut = np.r_[s[1:] != s[:-1], True]  # flagging everything up to and including position i
    hits, flagged = np.cumsum(f)[cut], np.arange(1, len(s) + 1)[cut]
    ok = hits / flagged >= precision
    return float(hits[ok].max() / max(failure.sum(), 1)) if ok.any() else 0.0


def ceiling(bench: Path, tracker: str, sequences: list[Sequence], precision: float) -> dict[str, float]:
    """Failure kinds, score medians, the reported flag and the score-threshold bound, pooled over ``sequences``
    (those the bench scored for ``tracker``)."""
    score, failure, lost, kind = [], [], [], []
    for seq in sequences:
        txt = box_paths(bench, tracker, seq.name)[0]
        boxes = np.loadtxt(txt, delimiter=",", ndmin=2) if txt.is_file() else None
        o = saved_outcome(bench, tracker, seq, boxes) if boxes is not None else None
        if o is None:
            continue
        n = len(o.failure) + 1
        far = np.zeros(len(o.failure), bool)
        far[o.present] = drift_distance(boxes[1:n][o.present], seq.boxes[1:n][o.present]) >= NEAR
        kind.append(np.where(~o.present, "absent", np.where(far, "far", "near")))
        score.append(o.score), failure.append(o.failure), lost.append(o.lost)
    if not score:
        raise SystemExit(f"no saved boxes and scores of tracker {tracker!r} in {bench}/boxes; check --tracker")
    score, failure, lost, kind = map(np.concatenate, (score, failure, lost, kind))
    report: dict[str, float] = {"failures": int(failure.sum()), "frames": len(failure)}
    for k in ("absent", "near", "far"):
        report[k] = int((failure & (kind == k)).sum())
    report["score_good"] = float(np.median(score[~failure]))
    for k in ("near", "far"):
        chosen = failure & (kind == k)
        report[f"score_{k}"] = float(np.median(score[chosen])) if chosen.any() else float("nan")
    report["flag_precision"] = float((lost & failure).sum() / max(lost.sum(), 1))
    report["flag_recall"] = float((lost & failure).sum() / max(failure.sum(), 1))
    report["score_bound_recall"] = best_score_recall(score, failure, precision)
    return report


def _line(report: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in report.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    rec = modes.add_parser("record", help="track sequences and keep every frame's map and state")
    rec.add_argument("root", help="dataset folder")
    rec.add_argument("--split", default="training")
    rec.add_argument("--weights", default=None, help="model (default: the shipped default)")
    rec.add_argument("--out", required=True, help="folder for one NAME.npz per sequence")
    rec.add_argument("--workers", type=int, default=1)
    pick = modes.add_parser("choose", help="pick a flag threshold on recorded frames")
    pick.add_argument("folder", help="a record --out folder")
    pick.add_argument("--signal", choices=("doubt", "spread"), default="spread")
    pick.add_argument("--rate", type=float, default=0.5, help="running-mean rate (the config's *_rate)")
    pick.add_argument("--precision", type=float, default=0.8, help="flag precision the threshold must reach")
    bound = modes.add_parser("ceiling", help="failure kinds and the best a score threshold can flag, from a bench")
    bound.add_argument("bench", help="a `siamtrack bench --out` folder")
    bound.add_argument("root", help="the dataset folder it ran on")
    bound.add_argument("--split", default="validation")
    bound.add_argument("--tracker", default="siamtrack", help="tracker name as the bench saved it")
    bound.add_argument("--precision", type=float, default=0.8, help="flag precision the bound must reach")
    args = parser.parse_args()
    if args.mode == "choose":
        print(_line(choose(Path(args.folder), args.signal, args.rate, args.precision)))
        return
    if args.mode == "ceiling":
        print(_line(ceiling(Path(args.bench), args.tracker, load_dataset(args.root, args.split), args.precision)))
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    todo = [s for s in load_dataset(args.root, args.split) if not (out / f"{safe_name(s.name)}.npz").exists()]
    for name in parallel_map(_job, [(args.weights, s, out) for s in todo], args.workers):
        print(name, flush=True)


if __name__ == "__main__":
    main()
