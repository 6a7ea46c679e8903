"""tools/frontier.py: the model card's AUC-vs-fps plot from a CSV, and one-line errors for bad CSVs."""
import subprocess
import sys
from pathlib import Path

import matplotlib.image

TOOL = Path(__file__).resolve().parents[1] / "tools" / "frontier.py"


def run(*args, cwd):
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_writes_a_png_of_the_points(tmp_path):
    points = tmp_path / "p.csv"
    points.write_text("name,auc,fps\nsiamtrack_box,0.631,505.7\nNanoTrack-v3,0.606,356.6\n")
    done = run(points, tmp_path / "f.png", "--title", "validation", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    image = matplotlib.image.imread(tmp_path / "f.png")
    assert image.shape[0] > 100 and image.shape[1] > 100 and image.std() > 0


def test_bad_csvs_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("name,auc\nx,0.5\n")
    done = run(bad, tmp_path / "f.png", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.splitlines() == [
        f"frontier: error: {bad}: header must be name,auc,fps (found ['name', 'auc'])"]
    bad.write_text("name,auc,fps\nx,high,3\n")
    done = run(bad, tmp_path / "f.png", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.splitlines() == [f"frontier: error: {bad} line 2: auc and fps must be numbers"]
    empty = tmp_path / "empty.csv"
    empty.write_text("name,auc,fps\n")
    done = run(empty, tmp_path / "f.png", cwd=tmp_path)
    assert done.returncode == 2 and "no points to plot" in done.stderr
    assert not (tmp_path / "f.png").exists()


def test_labels_of_nearly_equal_models_do_not_overlap():
    """Two models 0.001 AUC and 1 fps apart (as siamtrack_box_lfc and its LightFC-taught sibling): their labels,
    drawn at the same offset, would overlap; placed, they do not, none covers a marker, and each stays inside the axes."""
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    from tracker.evaluation.plots import separate_labels

    fig, ax = plt.subplots(figsize=(7.2, 4.8))
    points = [("siamtrack_box_lfc", 0.619, 425.7), ("box: v3 + LightFC*", 0.620, 426.7), ("CSRT", 0.452, 44.0)]
    labels = [ax.annotate(n, (f, a), textcoords="offset points", xytext=(5, 4), arrowprops={"arrowstyle": "-"})
              for n, a, f in points]
    ax.plot([f for _, _, f in points], [a for _, a, _ in points], "o")
    ax.set(xlim=(0, 700), ylim=(0.4, 0.7))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert Text.get_window_extent(labels[0], renderer).overlaps(Text.get_window_extent(labels[1], renderer))
    separate_labels(fig, labels)
    boxes = [Text.get_window_extent(label, renderer) for label in labels]  # the text, not the line to its marker
    frame = ax.get_window_extent(renderer)
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    markers = ax.transData.transform([(f, a) for _, a, f in points])
    assert not any(box.contains(x, y) for box in boxes for x, y in markers)  # nor printed over a marker
    assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1 for b in boxes)
    assert labels[2].xyann == (5, 4) and not labels[2].arrow_patch.get_visible()  # a free label stays put
    plt.close(fig)
