"""The ported ONNX peers (LightTrack-Mobile, FEAR-XS): boxes equal to the upstream loops' on stored clips, the
bench runs them, their identity pins files and loop, and missing or wrong model folders are reported."""
import json
import pickle
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from conftest import SEQUENCES, SHARED
from tracker.cli import main
from tracker.datasets import load_dataset, write_sequence
from tracker.errors import BoxError
from tracker.evaluation.onnx_peers import ONNX_PEERS
from tracker.evaluation.onnx_peers.fear import FearPeer
from tracker.evaluation.onnx_peers.lighttrack import LightTrackPeer
from tracker.evaluation.peers import PeerOptions, parse_trackers
from tracker.models.checkpoints import file_sha256

REFERENCE = Path(__file__).with_name("data") / "onnx_peer_boxes.json"
LIGHTTRACK = SHARED / "reference" / "lighttrack"
FEAR = SHARED / "reference" / "fear_xs"
VARIANTS = ("lighttrack", "lighttrack_vot", "fear", "fear_smooth")


@pytest.fixture(scope="module")
def folders(shared_dir) -> PeerOptions:
    """The reference graph folders in ../shared (skip without them)."""
    if not (all((LIGHTTRACK / n).is_file() for n in ("lighttrack_z_feature.onnx", "lighttrack_x_feature.onnx",
                                                         "lighttrack_head.onnx"))
            and all((FEAR / n).is_file() for n in ("fear_xs_template.onnx", "fear_xs_track.onnx"))):
        pytest.skip(f"LightTrack / FEAR-XS reference graphs not found in {SHARED / 'reference'} (CI provides ../shared)")
    return PeerOptions(lighttrack_dir=LIGHTTRACK, fear_dir=FEAR)


@pytest.mark.parametrize("variant", VARIANTS)
def test_boxes_equal_the_upstream_loop_on_stored_clips(variant, folders):
    stored = json.loads(REFERENCE.read_text())
    (spec,) = parse_trackers(variant, folders)
    for name, boxes in stored["boxes"][variant].items():
        (seq,) = load_dataset(SEQUENCES, names=[name])
        tracker = spec.factory()
        frames = seq.frames()
        tracker.init(next(frames), seq.init_box)
        results = [tracker.update(next(frames)) for _ in boxes]
        assert len(results) == stored["frames"] - 1
        diff = np.abs(np.array([r.box for r in results]) - np.array(boxes)).max()
        assert diff <= 1e-3, f"{variant} on {name}: boxes differ from the upstream loop's by up to {diff:.3g} px"
        assert all(0.0 <= r.score <= 1.0 and not r.lost for r in results)
        raw = tracker.outputs  # the last frame's maps, with the cell the loop chose
        assert raw.score_map.shape == (16, 16) and raw.ltrb.shape == (4, 16, 16)
        assert raw.score_map[raw.peak] == pytest.approx(results[-1].score)


def test_identity_pins_the_model_files_and_the_loop(folders, tmp_path):
    plain, vot, fear, smooth = parse_trackers(",".join(VARIANTS), folders)
    assert all(file_sha256(LIGHTTRACK / n) in plain.identity for n in ("lighttrack_z_feature.onnx",
                                                                        "lighttrack_x_feature.onnx", "lighttrack_head.onnx"))
    assert file_sha256(FEAR / "fear_xs_track.onnx") in smooth.identity
    assert '"penalty_k": 0.062' in plain.identity and '"penalty_k": 0.007' in vot.identity
    assert '"smooth": false' in fear.identity and '"smooth": true' in smooth.identity
    # the same files elsewhere are the same tracker; the factory survives pickling (bench workers)
    for name in ("lighttrack_z_feature.onnx", "lighttrack_x_feature.onnx", "lighttrack_head.onnx"):
        (tmp_path / name).symlink_to(LIGHTTRACK / name)
    (moved,) = parse_trackers("lighttrack", PeerOptions(lighttrack_dir=tmp_path))
    assert moved.identity == plain.identity
    assert isinstance(pickle.loads(pickle.dumps(moved.factory))(), LightTrackPeer)
    assert isinstance(pickle.loads(pickle.dumps(smooth.factory))(), FearPeer)


def test_peers_not_given_or_missing_are_reported_not_dropped(tmp_path):
    lt, vot, fear, smooth = parse_trackers(",".join(VARIANTS))
    assert lt.factory is None and lt.error == "not run: pass --lighttrack-dir FOLDER (the folder with lighttrack_*.onnx)"
    assert vot.error == lt.error
    assert fear.error == smooth.error == "not run: pass --fear-dir FOLDER (the folder with fear_xs_*.onnx)"
    a_file = tmp_path / "model.onnx"
    a_file.write_bytes(b"")
    (missing,) = parse_trackers("lighttrack", PeerOptions(lighttrack_dir=tmp_path / "nowhere"))
    (file_given,) = parse_trackers("fear", PeerOptions(fear_dir=a_file))
    (empty,) = parse_trackers("fear_smooth", PeerOptions(fear_dir=tmp_path))
    assert missing.error == (f"not run: lighttrack model folder {tmp_path / 'nowhere'} not found; "
                             "pass --lighttrack-dir FOLDER (the folder with lighttrack_*.onnx)")
    assert file_given.error.startswith(f"not run: fear model folder {a_file} is a file, not a folder; pass --fear-dir")
    assert empty.error.startswith(f"not run: fear model file {tmp_path / 'fear_xs_template.onnx'} not found; ")


def test_unreadable_or_wrong_graphs_are_reported(tmp_path, folders):
    junk = tmp_path / "junk"
    junk.mkdir()
    for name in ("fear_xs_template.onnx", "fear_xs_track.onnx"):
        (junk / name).write_bytes(b"not an onnx file")
    (spec,) = parse_trackers("fear", PeerOptions(fear_dir=junk))
    assert spec.factory is None and spec.error.startswith(f"not run: cannot load {junk / 'fear_xs_template.onnx'}: ")
    assert len(spec.error.splitlines()) == 1
    swapped = tmp_path / "swapped"  # the right names on the wrong graphs
    swapped.mkdir()
    (swapped / "fear_xs_template.onnx").symlink_to(FEAR / "fear_xs_track.onnx")
    (swapped / "fear_xs_track.onnx").symlink_to(FEAR / "fear_xs_track.onnx")
    (spec,) = parse_trackers("fear", PeerOptions(fear_dir=swapped))
    assert spec.error.startswith(f"not run: {swapped / 'fear_xs_template.onnx'} is not the expected graph: it has "
                                 "image [1, 3, 256, 256] tensor(float), template_features [1, 256, 8, 8] tensor(float) "
                                 "-> bbox, cls; expected image [1, 3, 128, 128] tensor(float) -> features; ")


@pytest.mark.parametrize("variant", VARIANTS)
def test_bad_input_is_a_one_line_error(variant, folders):
    peer = ONNX_PEERS[variant]
    tracker = peer.tracker(getattr(folders, peer.field), peer.config)
    frame = np.zeros((96, 128, 3), np.uint8)
    with pytest.raises(RuntimeError, match=r"call init\(frame, box\) before update\(frame\)"):
        tracker.update(frame)
    with pytest.raises(BoxError, match="box width and height must be positive"):
        tracker.init(frame, (10, 10, 0, 20))
    with pytest.raises(ValueError, match="threads must be a whole number of at least 1, got 0"):
        peer.tracker(getattr(folders, peer.field), peer.config, threads=0)


def test_bench_runs_the_peers_on_a_generated_dataset(folders, tmp_path, capsys):
    (seq,) = load_dataset(SEQUENCES, names=["Crossing"])  # its first 12 frames as a dataset of one short clip
    write_sequence(tmp_path / "seqs" / "clip", islice(seq.frames(), 12), seq.boxes[:12])
    out = tmp_path / "out"
    assert main(["bench", str(tmp_path / "seqs"), "--trackers", ",".join(VARIANTS), "--out", str(out), "--no-progress",
                 "--lighttrack-dir", str(LIGHTTRACK), "--fear-dir", str(FEAR)]) == 0
    results = json.loads((out / "results.json").read_text())["trackers"]
    for name in VARIANTS:
        assert results[name]["status"] == "ok" and results[name]["auc"] > 0.5, (name, results[name])
        assert len((out / "boxes" / name / "clip.txt").read_text().splitlines()) == 12
    assert main(["bench", str(tmp_path / "seqs"), "--trackers", "lighttrack,fear", "--out", str(tmp_path / "o2"),
                 "--no-progress"]) == 2  # neither peer can run without its folder: nothing to report is a failure
    captured = capsys.readouterr()
    assert "not run: pass --lighttrack-dir FOLDER (the folder with lighttrack_*.onnx)" in captured.out
    assert "not run: pass --fear-dir FOLDER (the folder with fear_xs_*.onnx)" in captured.out
    assert captured.err.startswith("siamtrack: error: no tracker produced a result: lighttrack (not run: pass "
                                   "--lighttrack-dir")
