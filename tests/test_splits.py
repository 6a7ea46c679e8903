"""tracker/splits.json keyed by dataset folder: the blocks, the groups, the checks on the file, and that it
matches the development data (../shared/data)."""
import json

import pytest

from tracker.errors import DatasetError
from tracker.splits import Splits, load_splits


def test_the_split_file_names_each_folders_blocks_and_the_two_groups():
    splits = load_splits()
    assert {s: (b.folder, len(b.names)) for s, b in splits.blocks.items()} == {
        "train": ("sequences", 26), "val": ("sequences", 10), "train2": ("more_sequences", 27),
        "val2": ("more_sequences", 20)}
    assert splits.groups == {"training": ("train", "train2"), "validation": ("val", "val2")}
    assert [b.split for b in splits.resolve("validation")] == ["val", "val2"]
    assert len(splits.validation_names) == 30 and {"Biker", "otb_Bird1", "vot_tunnel"} <= splits.validation_names
    assert splits.split_of("otb_Bird1") == "val2" and splits.split_of("otb_Car1") == "train2"
    assert splits.split_of("Basketball") == "train" and splits.split_of("not_listed") is None
    assert [splits.is_validation(s) for s in ("train", "val", "train2", "val2", "training", "validation")] == [
        False, True, False, True, False, True]
    assert splits.describe() == ("train, val (sequences); train2, val2 (more_sequences); training = train+train2; "
                                 "validation = val+val2")


def _doc(**folders):
    return {"folders": folders, "groups": {"training": ["a"], "validation": ["b"]}}


@pytest.mark.parametrize("doc, message", [
    (_doc(x={"a": ["s1", "s2"]}, y={"b": ["s2"]}), "sequence s2 is in both a and b"),
    (_doc(x={"a": ["s1"], "b": ["s2"], "c": ["s3"]}), "every split must be in exactly one of the groups"),
    ({"folders": {"x": {"a": ["s1"], "b": ["s2"]}}, "groups": {"training": ["a", "b"], "validation": ["b"]}},
     "every split must be in exactly one of the groups"),
])
def test_a_split_file_breaking_its_promises_is_refused(doc, message):
    with pytest.raises(DatasetError, match=message):
        Splits.parse(doc)


def test_unknown_split_names_every_choice_and_a_malformed_file_is_one_line(tmp_path):
    with pytest.raises(DatasetError, match=r"unknown split 'test'; choose one of train, val, train2, val2, "
                                           r"training, validation \(tracker/splits.json\)"):
        load_splits().resolve("test")
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"train": ["a"], "val": ["b"]}))  # the flat layout before folders
    with pytest.raises(DatasetError, match="is not a split file .*expected folders.FOLDER.SPLIT"):
        load_splits(old)


def test_the_splits_cover_the_development_folders_exactly(shared_dir):
    splits = load_splits()
    data = shared_dir / "data"
    for folder in ("sequences", "more_sequences"):
        listed = sorted(n for b in splits.blocks.values() if b.folder == folder for n in b.names)
        assert listed == sorted(p.name for p in (data / folder).iterdir() if p.is_dir())
    assert list(splits.blocks["val2"].names) == json.loads((data / "more_sequences" / "val2.json").read_text())["val2"]
