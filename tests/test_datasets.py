"""Dataset readers on tiny generated folders of each layout; errors for missing or broken datasets."""
import cv2
import numpy as np
import pytest

from tracker.datasets import Sequence, check_ground_truth, detect_layout, load_dataset, split_names, write_sequence
from tracker.errors import DatasetError, VideoError


def _frames(n, h=48, w=64):
    """Frames whose grey level encodes their index modulo 10 (survives lossy video coding)."""
    return [np.full((h, w, 3), 20 + 20 * (i % 10), np.uint8) for i in range(n)]


def _write_images(folder, n, pattern):
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(_frames(n)):
        cv2.imwrite(str(folder / (pattern % (i + 1))), frame)


def test_sequence_layout_round_trip_with_absent_rows(tmp_path):
    boxes = np.array([[1, 2, 10, 12], [np.nan] * 4, [3, 4, 10, 12], [5, 6, 11, 13.5]])
    write_sequence(tmp_path / "Clip", _frames(4), boxes)
    (seq,) = load_dataset(tmp_path)
    assert detect_layout(tmp_path) == "sequences"
    assert seq.name == "Clip" and len(seq) == 4 and seq.boxes.shape == (4, 4)
    assert np.isnan(seq.boxes[1]).all() and seq.boxes[3].tolist() == [5, 6, 11, 13.5]
    assert seq.init_box == (1.0, 2.0, 10.0, 12.0)
    frames = list(seq.frames())
    assert [f.shape for f in frames] == [(48, 64, 3)] * 4 and frames[0].dtype == np.uint8
    assert [round(float(f.mean()) / 20) for f in frames] == [1, 2, 3, 4]


def test_sequence_with_fewer_frames_than_boxes_fails_while_decoding(tmp_path):
    write_sequence(tmp_path / "Short", _frames(3), np.ones((3, 4)))
    np.savetxt(tmp_path / "Short" / "groundtruth.txt", np.ones((5, 4)), delimiter=",")
    (seq,) = load_dataset(tmp_path)
    with pytest.raises(VideoError, match="only 3 decodable frames but its groundtruth has 5 rows"):
        list(seq.frames())


def test_split_selects_names_from_splits_json(tmp_path):
    train, val = split_names("train")[0], split_names("val")
    for name in [train, *val]:
        write_sequence(tmp_path / name, _frames(2), np.ones((2, 4)))
    assert [s.name for s in load_dataset(tmp_path, split="val")] == sorted(val)
    assert [s.name for s in load_dataset(tmp_path, split="val", names=[val[0], train])] == [val[0]]
    with pytest.raises(DatasetError, match="not found"):  # a split is all of its sequences or an error
        load_dataset(tmp_path, split="train")
    with pytest.raises(DatasetError, match="unknown split 'test'"):
        load_dataset(tmp_path, split="test")


@pytest.fixture(scope="module")
def data_parent(tmp_path_factory):
    """A copy of ../shared/data's two folders in miniature: every validation sequence (2 frames each) and one
    training sequence per folder, each folder's under its own name."""
    parent = tmp_path_factory.mktemp("data")
    for folder, names in (("sequences", [*split_names("val"), "Basketball"]),
                          ("more_sequences", [*split_names("val2"), "otb_Car1"])):
        for name in names:
            write_sequence(parent / folder / name, _frames(2), np.ones((2, 4)))
    return parent


def test_a_split_spanning_two_folders_reads_each_block_from_its_folder(data_parent):
    val, val2 = split_names("val"), split_names("val2")
    seqs = load_dataset(data_parent, split="validation")
    assert [s.name for s in seqs] == sorted(val) + sorted(val2)  # block by block, each sorted
    assert {s.video.parent.parent.name for s in seqs[:10]} == {"sequences"}
    assert {s.video.parent.parent.name for s in seqs[10:]} == {"more_sequences"}
    picked = load_dataset(data_parent, split="validation", names=["otb_Bird1", "Biker", "Basketball"])
    assert [(s.name, s.video.parent.parent.name) for s in picked] == [("Biker", "sequences"),
                                                                      ("otb_Bird1", "more_sequences")]
    # one folder's split from the parent or from the folder itself
    assert [s.name for s in load_dataset(data_parent, split="val2")] == sorted(val2)
    assert [s.name for s in load_dataset(data_parent / "more_sequences", split="val2")] == sorted(val2)
    assert [s.name for s in load_dataset(data_parent / "sequences", split="val")] == sorted(val)


def test_a_two_folder_split_needs_the_parent_and_all_its_sequences(data_parent):
    with pytest.raises(DatasetError, match=r"split 'validation' spans the folders sequences, more_sequences; pass "
                                           r"the folder that holds them \(e.g. ../shared/data\), not .*sequences$"):
        load_dataset(data_parent / "sequences", split="validation")
    with pytest.raises(DatasetError, match=r"sequence\(s\) BlurBody, BlurCar2, Bolt, Crossing, Deer and 20 more "
                                           r"not found in .*sequences$"):
        load_dataset(data_parent, split="training")
    with pytest.raises(DatasetError, match="none of the sequences Basketball is in split 'val2'"):
        load_dataset(data_parent, split="val2", names=["Basketball"])


def test_a_folder_of_dataset_folders_reads_each_one_without_a_split(data_parent, tmp_path):
    """``siamtrack bench ../shared/data --sequences NAME`` (no split) reads the parent's dataset folders."""
    seqs = load_dataset(data_parent)
    assert [s.name for s in seqs] == sorted([*split_names("val2"), "otb_Car1"]) + sorted([*split_names("val"),
                                                                                         "Basketball"])
    picked = load_dataset(data_parent, names=["otb_Car1", "Basketball"])
    assert [(s.name, s.video.parent.parent.name) for s in picked] == [("otb_Car1", "more_sequences"),
                                                                      ("Basketball", "sequences")]
    with pytest.raises(DatasetError, match=r"sequence\(s\) Nope not found in .* \(its dataset folders "
                                           r"more_sequences, sequences\)$"):
        load_dataset(data_parent, names=["Basketball", "Nope"])
    for folder in ("a", "b"):  # one name in two folders would be ambiguous: refused
        write_sequence(tmp_path / folder / "Clip", _frames(2), np.ones((2, 4)))
    with pytest.raises(DatasetError, match="sequence\\(s\\) Clip are in more than one folder of .*; pass one of a, b"):
        load_dataset(tmp_path)
    with pytest.raises(DatasetError, match="holds no sequence folders of a known layout"):
        load_dataset(tmp_path / "a" / "Clip")


def test_otb_layout_honours_got10k_frame_ranges(tmp_path):
    # got10k's OTB keeps only the first 74 images of Football1 (its annotation has 74 rows)
    _write_images(tmp_path / "Football1" / "img", 76, "%04d.jpg")
    np.savetxt(tmp_path / "Football1" / "groundtruth_rect.txt", np.tile([3, 4, 20, 30], (74, 1)), fmt="%d", delimiter="\t")
    _write_images(tmp_path / "Plain" / "img", 3, "%04d.jpg")
    (tmp_path / "Plain" / "groundtruth_rect.txt").write_text("1,2,10,10\n2 3 10 10\n3,4,10,10\n")
    assert detect_layout(tmp_path) == "otb"
    football, plain = load_dataset(tmp_path)
    assert len(football) == 74 and football.frame_files[-1].name == "0074.jpg"
    assert football.boxes[0].tolist() == [3, 4, 20, 30]
    assert plain.boxes[1].tolist() == [2, 3, 10, 10]
    assert [round(float(f.mean()) / 20) for f in plain.frames()] == [1, 2, 3]


def test_otb_with_more_boxes_than_images_is_an_error(tmp_path):
    _write_images(tmp_path / "Odd" / "img", 2, "%04d.jpg")
    (tmp_path / "Odd" / "groundtruth_rect.txt").write_text("1,2,10,10\n" * 3)
    with pytest.raises(DatasetError, match="Odd: 2 images but 3 boxes"):
        load_dataset(tmp_path)


def test_fewer_boxes_than_frames_in_every_layout_keeps_all_frames(tmp_path):
    write_sequence(tmp_path / "seqs" / "Own", _frames(5), np.ones((5, 4)))
    np.savetxt(tmp_path / "seqs" / "Own" / "groundtruth.txt", [[1, 2, 10, 12]], delimiter=",")
    _write_images(tmp_path / "got" / "GOT-10k_Test_000001", 4, "%08d.jpg")  # the GOT-10k test layout
    (tmp_path / "got" / "GOT-10k_Test_000001" / "groundtruth.txt").write_text("1,2,10,10\n")
    _write_images(tmp_path / "otb" / "Half" / "img", 4, "%04d.jpg")
    (tmp_path / "otb" / "Half" / "groundtruth_rect.txt").write_text("1,2,10,10\n2,3,10,10\n")
    (own,), (got,), (half,) = (load_dataset(tmp_path / d) for d in ("seqs", "got", "otb"))
    assert [(len(s), len(s.boxes), s.ground_truth) for s in (own, got, half)] == [
        (5, 1, "first-box"), (4, 1, "first-box"), (4, 2, "partial")]
    assert [round(float(f.mean()) / 20) for f in own.frames()] == [1, 2, 3, 4, 5]
    assert len(list(got.frames())) == 4 and own.truth_file == tmp_path / "seqs" / "Own" / "groundtruth.txt"
    check_ground_truth([own, got])  # only the first box: fine, tracked without metrics
    with pytest.raises(DatasetError) as error:
        check_ground_truth([own, half])
    assert str(error.value) == (f"Half: {half.truth_file} has 2 boxes but the sequence has 4 frames; give a box for "
                                "every frame (or only the first box: tracked, no metrics), or pass --allow-partial "
                                "(Python: allow_partial=True) to score the first 2 frames")
    check_ground_truth([half], allow_partial=True)
    assert Sequence("s", np.ones((3, 4))).ground_truth == "full"  # built in memory: one frame per box


def test_got10k_layout_with_absence_and_split_folder(tmp_path):
    seq_dir = tmp_path / "val" / "GOT-10k_Val_000001"
    _write_images(seq_dir, 3, "%08d.jpg")
    np.savetxt(seq_dir / "groundtruth.txt", [[1, 2, 10, 10], [2, 3, 10, 10], [3, 4, 10, 10]], delimiter=",")
    (seq_dir / "absence.label").write_text("0\n1\n0\n")
    (seq,) = load_dataset(tmp_path, split="val")
    assert seq.name == "GOT-10k_Val_000001"
    assert np.isnan(seq.boxes[1]).all() and seq.boxes[2].tolist() == [3, 4, 10, 10]
    assert len(list(seq.frames())) == 3


def test_missing_or_unknown_datasets_are_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="not found; pass the path of a local dataset"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "junk").mkdir()
    with pytest.raises(DatasetError, match="holds no sequence folders of a known layout"):
        load_dataset(tmp_path)
    write_sequence(tmp_path / "A", _frames(2), np.ones((2, 4)))
    with pytest.raises(DatasetError, match="sequence\\(s\\) B not found"):
        load_dataset(tmp_path, names=["A", "B"])


def test_bad_annotation_is_a_dataset_error(tmp_path):
    write_sequence(tmp_path / "A", _frames(2), np.ones((2, 4)))
    (tmp_path / "A" / "groundtruth.txt").write_text("1,2,3\n4,5,6\n")
    with pytest.raises(DatasetError, match="has 3 columns; expected 4"):
        load_dataset(tmp_path)


def test_write_sequence_refuses_box_count_mismatch(tmp_path):
    with pytest.raises(DatasetError, match="3 frames but 2 boxes"):
        write_sequence(tmp_path / "A", _frames(3), np.ones((2, 4)))
