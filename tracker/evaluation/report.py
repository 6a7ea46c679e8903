"""Benchmark reports from saved box files: results.json and a results.md Markdown table.

Scores are always computed from the box files (never from in-memory runs), so re-reporting,
``--resume`` and parallel runs give the same numbers as a one-shot serial run. A sequence with only
its first box is listed as "no-ground-truth" and left out of the means; each mean says over how many
sequences it is.

Two tables make a comparison decidable: per-block means (each sequence's split in tracker/splits.json,
e.g. val and val2 beside the overall mean, so fitting one block shows) and paired per-sequence
differences of every tracker against a baseline with bootstrap 95 % intervals (see paired.py).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets import Sequence
from ..splits import load_splits
from .lost_metrics import Outcome, dataset_report, outcome, sequence_report
from .metrics import Scores, summarise
from .paired import LEVEL, RESAMPLES, SEED, PairedDifference, paired_difference, tracker_scores
from .peers import TrackerSpec
from .runner import box_paths, score_path, score_tracked

SUMMARY_KEYS = ("auc", "precision", "norm_precision", "ao", "sr50", "sr75")
NO_GROUND_TRUTH = "no ground truth: boxes written, no metrics"
UNLISTED = "unlisted"  # the block of sequences tracker/splits.json does not name
PAIRED_METRICS = ("auc", "precision")
LOST_KEYS = ("failure_frames", "lost_frames", "lost_precision", "lost_recall", "score_roc_auc", "lt_precision",
             "lt_recall", "lt_f", "lt_threshold")


def _sequence_entry(seq: Sequence, scores: Scores | None, record: dict[str, Any],
                    frames: Outcome | None) -> dict[str, Any]:
    run = {"fps": record["tracker_fps"], "end_to_end_fps": record["end_to_end_fps"], "lost": record["lost"],
           "error": record["error"]}
    if scores is None:
        return {"status": "no-ground-truth", "note": NO_GROUND_TRUTH, **run}
    signals = sequence_report(frames) if frames is not None else dict.fromkeys(LOST_KEYS)
    if seq.ground_truth == "partial":
        note = f"ground truth for the first {len(seq.boxes)} of {len(seq)} frames: scored on those, all tracked"
        return {"status": "partial", "note": note, **scores.to_dict(curves=False), **signals, **run}
    return {"status": "ok", **scores.to_dict(curves=False), **signals, **run}


def saved_outcome(out: Path, name: str, seq: Sequence, boxes: np.ndarray) -> Outcome | None:
    """The frames the lost-flag metrics need; None for a run saved before score files existed."""
    path = score_path(out, name, seq.name)
    if not path.is_file():
        return None
    saved = np.loadtxt(path, delimiter=",", ndmin=2)
    return outcome(boxes, saved[:, 0], saved[:, 1] > 0, seq.boxes)


def tracker_results(name: str, sequences: list[Sequence], out: Path, got10k_compat: bool = False) -> dict[str, Any]:
    """One tracker's entry of results.json: dataset scores, fps, lost count, per-sequence entries."""
    per_seq: dict[str, Any] = {}
    scores: list[Scores] = []
    outcomes: list[Outcome | None] = []
    updates = update_time = frames = e2e_time = 0.0
    lost = 0
    for seq in sequences:
        txt, rec = box_paths(out, name, seq.name)
        if not (txt.is_file() and rec.is_file()):
            per_seq[seq.name] = {"error": "no results (run interrupted?); rerun with --resume"}
            continue
        record = json.loads(rec.read_text())
        if record.get("unreadable"):  # nothing to score: listed with its reason, left out of every mean
            per_seq[seq.name] = {"status": "unreadable", "error": record["error"], "reason": record["unreadable"]}
            continue
        s = signals = None
        if seq.ground_truth != "first-box":
            boxes = np.loadtxt(txt, delimiter=",", ndmin=2)
            s = score_tracked(boxes, seq, got10k_compat)
            signals = saved_outcome(out, name, seq, boxes)
            scores.append(s)
            outcomes.append(signals)
        per_seq[seq.name] = _sequence_entry(seq, s, record, signals)
        updates += record["frames"] - 1
        update_time += record["update_time"]
        frames += record["frames"]
        e2e_time += record["init_time"] + record["update_time"] + record["decode_time"]
        lost += record["lost"]
    errors = sorted(f"{k}: {v['error']}" for k, v in per_seq.items() if v.get("error") and v.get("status") != "unreadable")
    entry: dict[str, Any] = {"status": "ok" if not errors else f"errors on {len(errors)} sequence(s)",
                             "scored_sequences": len(scores)}
    if scores:
        total = summarise(scores)
        entry.update({k: getattr(total, k) for k in SUMMARY_KEYS})
        entry.update(frames=total.frames, success_curve=total.success_curve, precision_curve=total.precision_curve)
    else:
        entry.update({k: None for k in SUMMARY_KEYS})
    complete = bool(outcomes) and all(o is not None for o in outcomes)
    entry.update(dataset_report(outcomes) if complete else dict.fromkeys(LOST_KEYS))  # type: ignore[arg-type]
    entry.update(fps=updates / update_time if update_time > 0 else None,
                 end_to_end_fps=frames / e2e_time if e2e_time > 0 else None, lost=lost, errors=errors, sequences=per_seq)
    return entry


def block_means(entry: dict[str, Any], split_of: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Mean AUC and P@20 of one tracker over the scored sequences of each block (split), in sequence order."""
    blocks: dict[str, dict[str, list[float]]] = {}
    for metric in PAIRED_METRICS:
        for seq, value in tracker_scores(entry, metric).items():
            blocks.setdefault(split_of[seq], {}).setdefault(metric, []).append(value)
    return {b: {"auc": float(np.mean(v["auc"])), "precision": float(np.mean(v["precision"])),
                "scored_sequences": len(v["auc"])} for b, v in blocks.items()}


def paired_against(trackers: dict[str, Any], baseline: str) -> dict[str, Any]:
    """results.json's ``paired``: every other tracker minus ``baseline`` per metric (None: no common sequence)."""
    reference = {m: tracker_scores(trackers[baseline], m) for m in PAIRED_METRICS}
    rows: dict[str, Any] = {}
    for name, entry in trackers.items():
        if name == baseline:
            continue
        rows[name] = {}
        for metric in PAIRED_METRICS:
            scores = tracker_scores(entry, metric)
            common = set(scores) & set(reference[metric])
            rows[name][metric] = paired_difference(scores, reference[metric]).to_dict() if common else None
    return {"baseline": baseline, "resamples": RESAMPLES, "seed": SEED, "level": LEVEL, "trackers": rows}


def build_results(specs: list[TrackerSpec], sequences: list[Sequence], out: Path, got10k_compat: bool = False,
                  info: dict[str, Any] | None = None, baseline: str | None = None) -> dict[str, Any]:
    """The whole results.json document; trackers that could not run carry their reason in ``status``.
    ``baseline`` (default: the first tracker) is the one the paired differences are taken against."""
    splits = load_splits()
    split_of = {s.name: splits.split_of(s.name) or UNLISTED for s in sequences}
    trackers: dict[str, Any] = {}
    for spec in specs:
        if spec.error is not None:
            trackers[spec.name] = {"status": spec.error, **dict.fromkeys(SUMMARY_KEYS + LOST_KEYS), "fps": None,
                                   "end_to_end_fps": None, "lost": None, "sequences": {}, "blocks": {}}
        else:
            entry = tracker_results(spec.name, sequences, out, got10k_compat)
            trackers[spec.name] = {**entry, "blocks": block_means(entry, split_of), "identity": spec.identity}
    unreadable = {seq: run["reason"] for t in trackers.values() for seq, run in t["sequences"].items()
                  if run.get("status") == "unreadable"}
    frame0 = "counted (got10k-compatible)" if got10k_compat else "excluded"
    results = {"info": {**(info or {}), "sequences": [s.name for s in sequences], "split_of": split_of,
                        "frame_0": frame0, "absent_frames": "excluded",
                        "no_ground_truth": [s.name for s in sequences if s.ground_truth == "first-box"],
                        "partial_ground_truth": [s.name for s in sequences if s.ground_truth == "partial"],
                        "unreadable": {s.name: unreadable[s.name] for s in sequences if s.name in unreadable}},
               "trackers": trackers}
    if len(trackers) > 1:
        results["paired"] = paired_against(trackers, baseline or next(iter(trackers)))
    return results


def without_result(results: dict[str, Any]) -> dict[str, str]:
    """Trackers that produced no result, each with why: not run at all, or an error (or an unreadable
    sequence) on every sequence. A sequence without ground truth is a result (its boxes were written)."""
    failed: dict[str, str] = {}
    for name, t in results["trackers"].items():
        if all(run.get("error") for run in t["sequences"].values()):
            why = t.get("errors") or [f"{seq}: unreadable" for seq in results["info"].get("unreadable", {})]
            failed[name] = t["status"] + (f" ({why[0]})" if why else "")
    return failed


def unreadable_note(results: dict[str, Any]) -> str:
    """The sequences that could not be read, with why ('' when none): for results.md and the closing line."""
    found = results["info"].get("unreadable", {})
    return "; ".join(f"{seq} ({why})" for seq, why in found.items())


def _f(v: Any, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _ground_truth_notes(info: dict[str, Any]) -> str:
    """The sequences without a box for every frame, named in the header of the tables ('' when none)."""
    notes = ""
    if info["no_ground_truth"]:
        notes += f"; no ground truth (boxes written, no metrics): {', '.join(info['no_ground_truth'])}"
    if info["partial_ground_truth"]:
        notes += (f"; partial ground truth (scored on the annotated frames, all frames tracked): "
                  f"{', '.join(info['partial_ground_truth'])}")
    return notes


def _block_table(results: dict[str, Any]) -> list[str]:
    """Mean AUC / P@20 per block of tracker/splits.json beside the overall mean; none for a single block."""
    split_of = results["info"].get("split_of", {})
    blocks = list(dict.fromkeys(split_of.get(s, UNLISTED) for s in results["info"]["sequences"]))
    if len(blocks) < 2:
        return []
    sizes = {b: sum(1 for v in split_of.values() if v == b) for b in blocks}
    lines = ["", "Per block (the split of each sequence in tracker/splits.json): mean AUC / P@20 over its scored "
                 "sequences", "", "| Tracker | all | " + " | ".join(f"{b} ({sizes[b]})" for b in blocks) + " |",
             "|---" * (len(blocks) + 2) + "|"]
    for name, t in results["trackers"].items():
        cells = [f"{_f(t['auc'])} / {_f(t['precision'])}"]
        for b in blocks:
            m = t["blocks"].get(b)
            partial = f" ({m['scored_sequences']} of {sizes[b]})" if m and m["scored_sequences"] != sizes[b] else ""
            cells.append(f"{_f(m['auc'])} / {_f(m['precision'])}{partial}" if m else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _lost_table(trackers: dict[str, Any]) -> list[str]:
    """Can the tracker's lost flag and score be trusted (lost_metrics.py): flag precision / recall against
    failure frames, the score's ROC AUC for the same split, VOT-LT tracking Pr / Re / F at the best threshold."""
    lines = ["", "Lost flag and confidence (frame 0 excluded; failure = target absent, or present with IoU 0): the "
                 "flag's precision / recall of failure frames (pooled), the score's ROC AUC separating them (pooled), "
                 "long-term tracking Pr / Re / F at the best threshold τ (VOT-LT, means over sequences)", "",
             "| Tracker | failure frames | lost frames | lost P | lost R | score ROC AUC | LT Pr | LT Re | LT F | τ |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, t in trackers.items():
        cells = [_f(t.get(k)) for k in ("lost_precision", "lost_recall", "score_roc_auc", "lt_precision", "lt_recall",
                                         "lt_f", "lt_threshold")]
        counts = ["-" if t.get(k) is None else str(t[k]) for k in ("failure_frames", "lost_frames")]
        lines.append(f"| {name} | " + " | ".join(counts + cells) + " |")
    return lines


def _sequence_cells(e: dict[str, Any], keys: tuple[str, ...], digits: tuple[int, ...]) -> str:
    """One tracker's cell of a per-sequence table: the keys joined by ' / ', or why there are none."""
    if e.get("status") == "unreadable":
        return "unreadable"
    if "auc" not in e:
        cell = NO_GROUND_TRUTH if e.get("status") == "no-ground-truth" else "-"
    else:
        cell = " / ".join(_f(e.get(k), d) for k, d in zip(keys, digits))
        cell += " (partial ground truth)" if e["status"] == "partial" else ""
    return cell + (" (error)" if e.get("error") else "")


def _sequence_table(results: dict[str, Any], ran: list[str], title: str, keys: tuple[str, ...],
                    digits: tuple[int, ...]) -> list[str]:
    lines = ["", f"Per sequence: {title}", "", "| Sequence | " + " | ".join(ran) + " |", "|---" * (len(ran) + 1) + "|"]
    for seq in results["info"]["sequences"]:
        cells = [_sequence_cells(results["trackers"][name]["sequences"].get(seq, {}), keys, digits) for name in ran]
        lines.append(f"| {seq} | " + " | ".join(cells) + " |")
    return lines


def _paired_table(paired: dict[str, Any]) -> list[str]:
    """Every tracker against the baseline: mean per-sequence difference, its bootstrap interval, n, wins/losses."""
    pct = round(100 * paired["level"])
    lines = ["", f"Paired against {paired['baseline']}: mean per-sequence difference (tracker - baseline) over the "
                 f"sequences both scored, {pct} % bootstrap interval over sequences ({paired['resamples']:,} "
                 f"resamples, seed {paired['seed']}, percentile); wins/losses by AUC", "",
             f"| Tracker | ΔAUC | {pct} % CI | ΔP@20 | {pct} % CI | sequences | wins/losses |",
             "|---|---|---|---|---|---|---|"]
    for name, row in paired["trackers"].items():
        cells = []
        for metric in PAIRED_METRICS:
            d = row[metric]
            cells += PairedDifference(**d).cells() if d else ["-", "-"]
        auc = row["auc"]
        counts = [str(auc["n"]), f"{auc['wins']}/{auc['losses']}"] if auc else ["0", "-"]
        lines.append(f"| {name} | " + " | ".join(cells + counts) + " |")
    return lines


def markdown(results: dict[str, Any], per_sequence: bool = True) -> str:
    """results.md: a summary table (one row per tracker), the lost flag and confidence, per-block means, paired differences against the
    baseline, and per-sequence tables (AUC / P@20 / SR0.5 / fps; lost flag and confidence)."""
    trackers = results["trackers"]
    info = results["info"]
    count = len(info["sequences"])
    lines = [f"Sequences: {count}{_ground_truth_notes(info)}; frame 0 {info['frame_0']}; absent frames excluded. "
             "AUC, P@20 and NP are means over the sequences counted in 'scored'; AO and SR pool their frames; "
             "fps = tracker-only, e2e = with decoding.", "",
             "| Tracker | AUC | P@20 | NP | AO | SR0.5 | SR0.75 | scored | fps | e2e fps | lost | status |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, t in trackers.items():
        scored = f"{t['scored_sequences']} of {count}" if "scored_sequences" in t else "-"
        lines.append(f"| {name} | {_f(t['auc'])} | {_f(t['precision'])} | {_f(t['norm_precision'])} | {_f(t['ao'])} | "
                     f"{_f(t['sr50'])} | {_f(t['sr75'])} | {scored} | {_f(t['fps'], 1)} | {_f(t['end_to_end_fps'], 1)} | "
                     f"{'-' if t['lost'] is None else t['lost']} | {t['status']} |")
    if unreadable_note(results):
        lines += ["", f"Unreadable sequences, not run or scored: {unreadable_note(results)}"]
    lines += _lost_table(trackers)
    lines += _block_table(results)
    if "paired" in results:
        lines += _paired_table(results["paired"])
    ran = [n for n, t in trackers.items() if t["sequences"]]
    if ran and per_sequence:
        lines += _sequence_table(results, ran, "AUC / P@20 / SR0.5 / fps", ("auc", "precision", "sr50", "fps"),
                                 (3, 3, 3, 1))
        lines += _sequence_table(results, ran, "lost P / lost R / score ROC AUC / LT F",
                                 ("lost_precision", "lost_recall", "score_roc_auc", "lt_f"), (3, 3, 3, 3))
    errors = [f"- {n}: {err}" for n, t in trackers.items() for err in t.get("errors", [])]
    if errors:
        lines += ["", "Errors:", *errors]
    return "\n".join(lines) + "\n"


def write_results(results: dict[str, Any], out: Path) -> None:
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "results.md").write_text(markdown(results))
