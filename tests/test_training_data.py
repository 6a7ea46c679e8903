"""Training data: validation sequences left out, still-image reader, box filters, patch cache geometry and
reuse, pair sampling and the target boxes it reports, occluders."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tracker.datasets import load_dataset, write_sequence
from tracker.errors import DatasetError
from tracker.training.augment import AugmentConfig, augment_pair, occlude
from tracker.training.data import (CacheConfig, PairConfig, PairDataset, box_ok, build_cache, cut_patch,
                                   read_image_boxes, search_side, training_sequences)

SMALL = CacheConfig(patch_size=127, exemplar_size=47, instance_size=95)


def write_got10k(root: Path, n_seq: int = 2, n_frames: int = 6, absent: int | None = 3) -> Path:
    """GOT-10k layout: a white square moving right on a dark noisy background; frame ``absent`` absent."""
    rng = np.random.default_rng(0)
    for s in range(n_seq):
        d = root / f"seq{s}"
        d.mkdir(parents=True)
        boxes, flags = [], []
        for i in range(n_frames):
            frame = rng.integers(0, 40, (120, 160, 3), dtype=np.uint8)
            x, y = 30 + 5 * i + 10 * s, 40
            frame[y:y + 20, x:x + 20] = (255, 255, 255) if s == 0 else (0, 0, 255)
            cv2.imwrite(str(d / f"{i + 1:08d}.jpg"), frame)
            boxes.append(f"{x},{y},20,20")
            flags.append("1" if i == absent else "0")
        (d / "groundtruth.txt").write_text("\n".join(boxes) + "\n")
        (d / "absence.label").write_text("\n".join(flags) + "\n")
    return root


def write_images(root: Path, n: int = 3) -> Path:
    root.mkdir(parents=True)
    rows = ["file,x,y,w,h"]
    for i in range(n):
        img = np.zeros((80, 100, 3), np.uint8)
        img[20:50, 30:60] = (0, 255, 0)
        cv2.imwrite(str(root / f"img{i}.jpg"), img)
        rows.append(f"img{i}.jpg,30,20,30,30")
    (root / "boxes.csv").write_text("\n".join(rows) + "\n")
    return root


def write_named(root: Path, names: list[str], n_frames: int = 4) -> Path:
    """Our video layout: one sequence per name, a white 20 px square moving right on grey."""
    for name in names:
        frames = [np.full((96, 128, 3), 60, np.uint8) for _ in range(n_frames)]
        for i, f in enumerate(frames):
            f[30:50, 20 + 6 * i:40 + 6 * i] = 255
        write_sequence(root / name, frames, np.array([[20 + 6 * i, 30, 20, 20] for i in range(n_frames)], float))
    return root


def test_training_leaves_out_every_validation_sequence_whatever_folder_holds_it(tmp_path):
    # Biker is a 'val' name of ../shared/data/sequences, otb_Bird1 / vot_tunnel 'val2' names of more_sequences,
    # otb_Car1 a 'train2' name: the filter goes by name, not by the folder a sequence was found in
    mine = write_named(tmp_path / "mine", ["Biker", "clipA", "otb_Bird1"])
    more = write_named(tmp_path / "more", ["otb_Car1", "vot_tunnel"])
    logs = []
    seqs = training_sequences(str(mine), "", [str(more), ""], log=logs.append)
    assert [s.name for s in seqs] == ["clipA", "otb_Car1"]
    assert logs == ["training data: 3 validation sequence(s) of tracker/splits.json left out, 2 sequence(s) kept"]
    assert [s.name for s in training_sequences("", "", [str(more)], log=None)] == ["otb_Car1"]


@pytest.mark.parametrize("split", ["val", "val2", "validation"])
def test_a_validation_split_is_refused_for_training(tmp_path, split):
    mine = write_named(tmp_path / "mine", ["clipA"])
    with pytest.raises(DatasetError, match=f"^--split {split} holds validation sequences, which are never trained "
                                           "on; choose train, train2, training or ''$"):
        training_sequences(str(mine), split, log=None)


def test_a_cache_built_with_validation_sequences_is_rebuilt_without_them(tmp_path):
    """A cache cut before val2 became validation (its sources include otb_Bird1) is keyed by its sequence
    list, so the training list without otb_Bird1 does not match it and rebuilds it."""
    mine = write_named(tmp_path / "mine", ["clipA", "otb_Bird1"])
    cfg = CacheConfig(patch_size=127, exemplar_size=47, instance_size=95, frame_step=1)
    old = build_cache(tmp_path / "cache", load_dataset(mine), [], cfg, progress=False)
    assert [s.name for s in old.sources] == ["clipA", "otb_Bird1"] and len(old) == 8
    new = build_cache(tmp_path / "cache", training_sequences(str(mine), "", log=None), [], cfg, progress=False)
    assert new.key != old.key and [s.name for s in new.sources] == ["clipA"] and len(new) == 4
    assert json.loads((tmp_path / "cache" / "info.json").read_text())["key"] == new.key


def test_read_image_boxes(tmp_path):
    items = read_image_boxes(write_images(tmp_path / "imgs"))
    assert len(items) == 3
    assert items[1] == (tmp_path / "imgs" / "img1.jpg", (30.0, 20.0, 30.0, 30.0))


@pytest.mark.parametrize("text, message", [
    ("name,x,y\na.jpg,1,2\n", "header must be file,x,y,w,h"),
    ("file,x,y,w,h\na.jpg,1,2,three,4\n", "line 2: x,y,w,h must be numbers"),
    ("file,x,y,w,h\n", "lists no images"),
])
def test_read_image_boxes_errors(tmp_path, text, message):
    (tmp_path / "boxes.csv").write_text(text)
    with pytest.raises(DatasetError, match=message):
        read_image_boxes(tmp_path)
    with pytest.raises(DatasetError, match="boxes.csv"):
        read_image_boxes(tmp_path / "missing")


@pytest.mark.parametrize("box, ok", [
    ((10, 10, 20, 30), True),
    ((10, 10, np.nan, 30), False),     # absent
    ((10, 10, 3, 30), False),          # smaller than min_size
    ((10, 10, 70, 10), False),         # aspect 7 > 6
    ((0, 0, 100, 95), False),          # > 90 % of the frame
])
def test_box_filter(box, ok):
    assert box_ok(np.asarray(box, float), (100, 100, 3), CacheConfig()) is ok


def test_cut_patch_centres_the_target_at_search_scale():
    frame = np.zeros((200, 300, 3), np.uint8)
    frame[90:110, 140:180] = 255                    # box x=140, y=90, w=40, h=20
    patch, size = cut_patch(frame, np.array([140.0, 90, 40, 20]), CacheConfig())
    assert patch.shape == (319, 319, 3)
    scale = 255 / search_side(40, 20, CacheConfig())
    assert size == pytest.approx((40 * scale, 20 * scale))
    ys, xs = np.nonzero(patch[..., 0] > 128)
    assert (xs.mean(), ys.mean()) == pytest.approx((159, 159), abs=0.6)
    assert xs.max() - xs.min() + 1 == pytest.approx(40 * scale, abs=1.5)


def test_cache_from_got10k_layout_skips_absent_frames_and_is_reused(tmp_path):
    seqs = load_dataset(write_got10k(tmp_path / "got"), layout="got10k")
    images = read_image_boxes(write_images(tmp_path / "imgs"))
    cfg = CacheConfig(patch_size=127, exemplar_size=47, instance_size=95, frame_step=1)
    cache = build_cache(tmp_path / "cache", seqs, images, cfg, progress=False)
    # 2 sequences x 6 frames, minus absent frame 3 of each, + 3 still images
    assert len(cache) == 2 * 5 + 3
    assert [s.count for s in cache.sources[:2]] == [5, 5]
    assert cache.frame[:5].tolist() == [0, 1, 2, 4, 5]
    assert cache.nbytes == 13 * 127 * 127 * 3
    assert cache.patches[0, 63, 63].tolist() == pytest.approx([255, 255, 255], abs=30)
    mtime = (tmp_path / "cache" / "patches.u8").stat().st_mtime_ns
    again = build_cache(tmp_path / "cache", seqs, images, cfg, progress=False)
    assert (tmp_path / "cache" / "patches.u8").stat().st_mtime_ns == mtime and again.key == cache.key
    stepped = build_cache(tmp_path / "cache", seqs, [], CacheConfig(patch_size=127, frame_step=2), progress=False)
    assert stepped.key != cache.key and stepped.frame.tolist() == [0, 2, 4, 0, 2, 4]


def test_cache_cuts_a_first_box_only_sequence_at_its_one_annotated_frame(tmp_path):
    root = write_got10k(tmp_path / "got", absent=None)
    first = root / "seq1" / "groundtruth.txt"   # the GOT-10k test layout: 6 images, only the first box
    first.write_text(first.read_text().splitlines()[0] + "\n")
    (root / "seq1" / "absence.label").unlink()
    seqs = load_dataset(root, layout="got10k")
    assert [len(s) for s in seqs] == [6, 6]
    cache = build_cache(tmp_path / "cache", seqs, [], SMALL, progress=False)
    assert [s.count for s in cache.sources] == [3, 1] and cache.frame.tolist() == [0, 2, 4, 0]  # frame step 2


def test_augment_offset_locates_the_target_in_the_search_crop():
    patch = np.zeros((319, 319, 3), np.uint8)
    cv2.circle(patch, (159, 159), 3, (255, 255, 255), -1)
    cfg = AugmentConfig(gray=0, blur=0, brightness=0, contrast=0, colour=0)
    for seed in range(8):
        z, x, box = augment_pair(patch, patch, (7, 7), np.random.default_rng(seed), cfg)
        off = box[:2]
        ys, xs = np.nonzero(x[..., 0] > 100)
        assert (xs.mean() - 127, ys.mean() - 127) == pytest.approx(tuple(off), abs=0.75)
        assert np.abs(off).max() <= 32 / np.exp(-0.2) + 1e-6
        zy, zx = np.nonzero(z[..., 0] > 100)
        assert z.shape == (127, 127, 3) and np.hypot(zx.mean() - 63, zy.mean() - 63) <= 4 * 2 ** 0.5 / np.exp(-0.1)


@pytest.mark.parametrize("seed", range(6))
def test_augment_box_is_the_target_extent_in_the_search_crop(seed):
    patch = np.zeros((319, 319, 3), np.uint8)
    patch[144:175, 129:190] = 255                      # 61 x 31 target centred on the patch centre (159, 159)
    cfg = AugmentConfig(gray=0, blur=0, brightness=0, contrast=0, colour=0, stretch=0.2, search_scale=0.3)
    _, x, box = augment_pair(patch, patch, (61, 31), np.random.default_rng(seed), cfg)
    mask = x[..., 0] > 127
    ys, xs = np.nonzero(mask)
    assert (xs.mean() - 127, ys.mean() - 127) == pytest.approx(tuple(box[:2]), abs=0.75)
    assert (mask.sum(1).max(), mask.sum(0).max()) == pytest.approx(tuple(box[2:]), abs=1.5)
    assert box[2] / box[3] != pytest.approx(61 / 31, rel=1e-3)   # the aspect jitter changed the shape


def test_occluder_covers_part_of_the_target_with_texture_from_the_crop():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (95, 95, 3), dtype=np.uint8)
    box = np.array([10.0, -5.0, 40.0, 20.0])           # cx, cy, w, h from the crop centre (47, 47)
    for seed in range(20):
        out = occlude(img, box, np.random.default_rng(seed), 0.5)
        ys, xs = np.nonzero((out != img).any(2))
        assert len(xs) and (img == out).any()
        assert xs.max() - xs.min() + 1 <= 0.5 * 40 + 1 and ys.max() - ys.min() + 1 <= 0.5 * 20 + 1
        assert abs(xs.mean() - 57) <= 20 + 1 and abs(ys.mean() - 42) <= 10 + 1   # centred inside the box
        h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
        pasted = out[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        windows = np.lib.stride_tricks.sliding_window_view(img, (h, w, 3))[..., 0, :, :, :]
        assert (windows == pasted).all((2, 3, 4)).any()   # a same-sized piece of the crop itself


def test_occlusion_off_draws_nothing_and_on_changes_only_the_search_crop():
    patch = np.random.default_rng(1).integers(0, 255, (319, 319, 3), dtype=np.uint8)
    results = {}
    for p in (0.0, 1.0):
        rng = np.random.default_rng(4)
        results[p] = augment_pair(patch, patch, (60, 60), rng, AugmentConfig(occlude=p)), rng.random()
    (z0, x0, b0), after0 = results[0.0]
    (z1, x1, b1), after1 = results[1.0]
    assert np.array_equal(z0, z1) and np.array_equal(b0, b1) and not np.array_equal(x0, x1)
    assert after0 != after1   # occluding drew from the pair's generator, after everything else
    rng = np.random.default_rng(4)
    augment_pair(patch, patch, (60, 60), rng, AugmentConfig(occlude_size=0.9))
    assert rng.random() == after0   # a disabled occluder's other settings draw nothing either


def test_pairs_are_deterministic_per_epoch_and_index(tmp_path):
    seqs = load_dataset(write_got10k(tmp_path / "got", n_seq=3), layout="got10k")
    cache = build_cache(tmp_path / "cache", seqs, [], SMALL, progress=False)
    aug = AugmentConfig()
    ds = PairDataset(cache, PairConfig(neg_ratio=0.5), aug, seed=3, length=40)
    first = [ds[i] for i in range(40)]
    again = ds[7]
    assert all(np.array_equal(a, b) for a, b in zip(first[7][:3], again[:3]))
    ds.set_epoch(1)
    assert not np.array_equal(ds[7][1], first[7][1])
    positives = [p for *_, p in first]
    assert 8 < sum(not p for p in positives) < 32          # about half are negatives
    assert first[0][0].shape == (47, 47, 3) and first[0][1].shape == (95, 95, 3)


def test_negative_pairs_show_another_object(tmp_path):
    # seq0 has a white target, seq1 a red one: a negative's search centre has the other colour
    seqs = load_dataset(write_got10k(tmp_path / "got", n_seq=2, absent=None), layout="got10k")
    cache = build_cache(tmp_path / "cache", seqs, [], SMALL, progress=False)
    aug = AugmentConfig(search_shift=0, gray=0, brightness=0,
                        contrast=0, colour=0, blur=0)
    ds = PairDataset(cache, PairConfig(neg_ratio=1.0), aug, seed=0, length=10)
    for i in range(10):
        z, x, _, positive = ds[i]
        assert not positive
        z_white, x_white = z[23, 23, 1] > 128, x[47, 47, 1] > 128
        assert z_white != x_white
