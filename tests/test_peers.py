"""Tracker names -> specs: OpenCV peers, siamtrack variants, and peers that cannot run."""
import pickle

import numpy as np
import pytest

from tracker.errors import SiamTrackError
from tracker.evaluation.peers import OpenCVPeer, PeerOptions, parse_trackers, siamtrack_label


def test_opencv_peers_track_and_pickle():
    frame = np.zeros((96, 128, 3), np.uint8)
    frame[30:60, 40:70] = (40, 200, 90)
    for spec in parse_trackers("csrt,KCF,mil"):
        assert spec.error is None
        tracker = pickle.loads(pickle.dumps(spec.factory))()  # workers rebuild trackers from pickled factories
        assert isinstance(tracker, OpenCVPeer)
        tracker.init(frame, (40.2, 30.0, 30.0, 30.0))
        result = tracker.update(frame)
        assert len(result.box) == 4 and result.box[2] > 0
    assert [s.name for s in parse_trackers("csrt,KCF,mil")] == ["csrt", "kcf", "mil"]
    assert parse_trackers("csrt")[0].identity.startswith("opencv ")


def test_siamtrack_identity_pins_weights_and_config(weights):
    name = "siamtrack" if weights is None else f"siamtrack:{weights}"
    plain, narrow = parse_trackers(f"{name},{name}@scale_num=1")
    assert plain.error is None and plain.identity.startswith("siamtrack ")
    assert plain.identity.split()[1] == narrow.identity.split()[1]  # same weights digest
    assert plain.identity != narrow.identity                        # different config
    (torch_backend,) = parse_trackers(name, PeerOptions(backend="torch"))
    assert torch_backend.identity != plain.identity


def test_dnn_peers_without_or_with_missing_models_are_reported_not_dropped(tmp_path):
    nano, vit = parse_trackers("nanotrack,vit")
    assert nano.factory is None and nano.error == "not run: model path not given (--nano-backbone/--nano-neckhead)"
    assert vit.error == "not run: model path not given (--vit-model)"
    (spec,) = parse_trackers("nanotrack", PeerOptions(tmp_path / "b.onnx", tmp_path / "h.onnx"))
    assert spec.error == f"not run: nanotrack model file {tmp_path / 'b.onnx'} not found (--nano-backbone/--nano-neckhead)"


def test_siamtrack_variants_and_their_failures(tmp_path, weights):
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"not a checkpoint")
    broken, typo, other = parse_trackers(f"siamtrack:{bad},siamtrack:{weights}@scale_nmu=1,siamtrack@scale_num=1")
    assert broken.name == "siamtrack:broken" and broken.factory is None and broken.error.startswith("not run: ")
    assert typo.name.endswith("@scale_nmu=1") and "unknown TrackerConfig option(s): scale_nmu" in typo.error
    # the default is a centre-head model: a SiamFC-only option is refused with the valid ones
    assert "unknown CentreTrackerConfig option(s): scale_num; valid: " in other.error
    assert siamtrack_label(None, "") == "siamtrack"
    assert siamtrack_label("siamtrack_small", "scale_num=1") == "siamtrack:siamtrack_small@scale_num=1"


def test_unknown_and_duplicate_names_are_errors():
    with pytest.raises(SiamTrackError, match="unknown tracker 'tld'"):
        parse_trackers("csrt,tld")
    with pytest.raises(SiamTrackError, match="listed twice"):
        parse_trackers("kcf,KCF")
    with pytest.raises(SiamTrackError, match="no trackers given"):
        parse_trackers(" , ")


def test_a_siamtrack_name_takes_several_options_between_other_trackers():
    specs = parse_trackers("csrt,siamtrack:siamtrack_box@instance_size=223,lost_threshold=0.5,kcf,siamtrack@lost_patience=3")
    assert [s.name for s in specs] == ["csrt", "siamtrack:siamtrack_box@instance_size=223,lost_threshold=0.5", "kcf",
                                       "siamtrack@lost_patience=3"]
    config = specs[1].factory().config
    assert (config.instance_size, config.lost_threshold) == (223, 0.5) and specs[3].factory().config.lost_patience == 3
