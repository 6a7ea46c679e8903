"""Box-family acceptance: `siamtrack bench` over all 36 development sequences with NanoTrack's published
state dicts and their published loop parameters.

An independent pysot-style loop on ONNX Runtime scores a mean success AUC of 0.572 (v2) and 0.605
(v3) on these sequences; ours must reach at least 0.562 and 0.595 (frame 0 and absent frames
excluded). Runs only where ../shared exists (a few minutes on 2 cores; 2 worker processes).
"""
from __future__ import annotations

import json

from conftest import nanotrack_files
from tracker.cli import main

FLOOR = {"v2": 0.562, "v3": 0.595}


def test_bench_with_nanotrack_state_dicts_on_all_sequences(shared_dir, tmp_path, capsys) -> None:
    names = {v: f"siamtrack:{nanotrack_files(v)[0]}" for v in FLOOR}
    out = tmp_path / "bench"
    assert main(["bench", str(shared_dir / "data" / "sequences"), "--trackers", ",".join(names.values()),
                 "--out", str(out), "--workers", "2", "--no-progress"]) == 0
    print(capsys.readouterr().out)
    results = json.loads((out / "results.json").read_text())
    assert len(results["info"]["sequences"]) == 36
    for version in FLOOR:
        row = results["trackers"][f"siamtrack:nanotrack_{version}_state_dict"]
        assert row["status"] == "ok" and row["auc"] >= FLOOR[version], f"{version}: AUC {row['auc']:.3f} < {FLOOR[version]}"
