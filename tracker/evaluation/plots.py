"""OTB-style success and precision plots (headless matplotlib), score in each legend entry."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: benchmarks run on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from .metrics import PRECISION_AT, PRECISION_THRESHOLDS, SUCCESS_THRESHOLDS  # noqa: E402


def _plot(curves: dict[str, tuple[list[float], float]], x: Any, path: Path, xlabel: str, ylabel: str,
          title: str, xlim: tuple[float, float]) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    styles = ["-", "--", "-.", ":"]
    for i, (name, (curve, score)) in enumerate(sorted(curves.items(), key=lambda kv: -kv[1][1])):
        ax.plot(x, curve, styles[(i // 10) % len(styles)], label=f"{name} [{score:.3f}]", linewidth=1.8)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title, xlim=xlim, ylim=(0, 1))
    ax.grid(True, alpha=0.4)
    if curves:  # none when no sequence had ground truth to score
        ax.legend(loc="lower left" if xlabel.startswith("Overlap") else "lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_plots(results: dict[str, Any], out: Path) -> list[Path]:
    """success.png (legend: AUC) and precision.png (legend: precision at 20 px) for every tracker that ran."""
    ran = {n: t for n, t in results["trackers"].items() if t.get("success_curve")}
    success, precision = out / "success.png", out / "precision.png"
    _plot({n: (t["success_curve"], t["auc"]) for n, t in ran.items()}, SUCCESS_THRESHOLDS, success,
          "Overlap threshold", "Success rate", "Success plots of OPE (AUC)", (0, 1))
    _plot({n: (t["precision_curve"], t["precision"]) for n, t in ran.items()}, PRECISION_THRESHOLDS, precision,
          "Location error threshold (px)", "Precision", f"Precision plots of OPE (P@{PRECISION_AT})",
          (0, float(PRECISION_THRESHOLDS[-1])))
    return [success, precision]


def frontier_plot(points: list[tuple[str, float, float]], path: Path, title: str) -> Path:
    """AUC against tracker-only fps, one labelled marker per (name, auc, fps): the accuracy/speed frontier
    a model choice sits on (the model card's plot)."""
    if not points:
        raise ValueError("no points to plot: give at least one (name, auc, fps)")
    fig, ax = plt.subplots(figsize=(7.2, 4.8))
    labels = []
    for name, auc, fps in points:
        ax.plot(fps, auc, "o", markersize=6)
        labels.append(ax.annotate(name, (fps, auc), textcoords="offset points", xytext=(5, 4), fontsize=7,
                                  arrowprops={"arrowstyle": "-", "lw": 0.6, "color": "0.35"}))
    ax.set(xlabel="tracker-only fps (isolated harness, 1 thread)", ylabel="mean AUC", title=title,
           xlim=(0, 1.6 * max(fps for _, _, fps in points)))  # room for the labels right of the markers
    ax.grid(True, alpha=0.4)
    fig.tight_layout()
    separate_labels(fig, labels)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def separate_labels(fig, labels: list) -> None:
    """Place each label, top marker first, at the first spot beside its marker (right, then left; a row up or down
    at a time) where it overlaps no label placed before it and stays inside the axes: models of nearly equal AUC
    and speed otherwise print their names over each other, or beside another model's marker. A thin line ties a
    moved label to its marker."""
    if not labels:
        return
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = labels[0].axes
    frame = ax.get_window_extent(renderer)
    radius = 4 * fig.dpi / 72  # a marker's half width in display px: labels keep off every marker too
    placed: list = [Bbox.from_extents(x - radius, y - radius, x + radius, y + radius)
                    for x, y in ax.transData.transform([label.xy for label in labels])]
    for label in sorted(labels, key=lambda a: -a.xy[1]):
        width = Text.get_window_extent(label, renderer).width * 72 / fig.dpi  # display px -> offset points
        spots = [(dx, dy) for dy in (4, *(v for k in range(1, 9) for v in (4 - 9 * k, 4 + 9 * k))) for dx in (5, -width - 5)]
        for spot in spots:
            label.xyann = spot
            box = Text.get_window_extent(label, renderer)  # the text alone, not the line to its marker
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if inside and not any(box.overlaps(p) for p in placed):
                break
        else:
            label.xyann = spots[0]  # nowhere free: where it would have been
        if label.xyann == spots[0]:
            label.arrow_patch.set_visible(False)  # beside its marker: no line needed
        placed.append(Text.get_window_extent(label, renderer))
