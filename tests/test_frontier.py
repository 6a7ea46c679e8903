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
