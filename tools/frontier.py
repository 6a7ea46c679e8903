#!/usr/bin/env python
"""AUC-vs-fps frontier plot for the model card: one CSV row per model tried (name,auc,fps), one PNG out.

Example:
  python tools/frontier.py runs/frontier.csv weights/frontier.png --title "30-sequence validation"
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from tracker.evaluation.plots import frontier_plot


def read_points(path: Path) -> list[tuple[str, float, float]]:
    """(name, auc, fps) rows of a CSV with the header name,auc,fps; a bad row is a ValueError naming its line."""
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"name", "auc", "fps"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: header must be name,auc,fps (found {reader.fieldnames})")
        points = []
        for line, row in enumerate(reader, start=2):
            try:
                points.append((row["name"], float(row["auc"]), float(row["fps"])))
            except (TypeError, ValueError):
                raise ValueError(f"{path} line {line}: auc and fps must be numbers") from None
    return points


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("points", type=Path, help="CSV with the header name,auc,fps")
    parser.add_argument("out", type=Path, help="PNG to write")
    parser.add_argument("--title", default="AUC against speed")
    args = parser.parse_args(argv)
    try:
        frontier_plot(read_points(args.points), args.out, args.title)
    except (OSError, ValueError) as exc:
        print(f"frontier: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
