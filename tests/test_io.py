"""Frame sources and writers: every bad source is a one-line VideoError, frames before a failure are kept."""
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from tracker import OutputError, TrackResult, VideoError
from tracker.io import (CSV_HEADER, CsvWriter, FolderSource, IterableSource, VideoWriter, annotate, check_output,
                        open_source)


def _frames(n, size=(48, 64)):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(n)]


def write_video(path, frames, fps=25.0):
    """Frames -> a video file with our writer (also used by test_cli)."""
    writer = VideoWriter(path, fps)  # .avi: MJPG, .mp4: mp4v
    for f in frames:
        writer.write(f)
    writer.close()
    return path


def _read_all(path):
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            return frames
        frames.append(f)


def _consume(source):
    """Collect frames until the source ends or fails; return (frames, error or None)."""
    got = []
    try:
        for f in source:
            got.append(f)
    except VideoError as exc:
        return got, exc
    return got, None


def test_video_file_yields_every_frame_with_its_fps(tmp_path):
    path = write_video(tmp_path / "v.avi", _frames(12))
    with open_source(str(path)) as source:
        assert source.count == 12 and source.fps == pytest.approx(25.0) and source.name == str(path)
        frames = list(source)
    assert len(frames) == 12 and frames[0].shape == (48, 64, 3) and frames[0].dtype == np.uint8


def test_missing_path():
    with pytest.raises(VideoError, match=r"^input nowhere/clip.mp4 does not exist; give a video file, a folder of images or a webcam index$"):
        open_source("nowhere/clip.mp4")


def test_empty_folder_and_folder_without_images(tmp_path):
    with pytest.raises(VideoError, match=r"folder .* contains no images \(.jpg, .jpeg, .png"):
        open_source(tmp_path)
    (tmp_path / "notes.txt").write_text("not a frame")
    with pytest.raises(VideoError, match="contains no images"):
        open_source(tmp_path)


def test_unreadable_file(tmp_path):
    path = tmp_path / "garbage.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(VideoError, match=r"cannot open video .*garbage.mp4: not a video OpenCV/FFmpeg can decode"):
        open_source(path)


def test_mp4_truncated_before_its_index_cannot_be_opened(tmp_path):
    data = write_video(tmp_path / "v.mp4", _frames(10)).read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match="cannot open video"):
        open_source(tmp_path / "cut.mp4")


def test_zero_frame_file(tmp_path):
    path = tmp_path / "empty.avi"
    cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48)).release()
    frames, error = _consume(open_source(path))
    assert frames == [] and str(error) == f"{path} contains no decodable frames (empty or corrupt); check the file"


def test_truncated_file_keeps_the_frames_before_and_names_the_missing_ones(tmp_path):
    original = [np.full((48, 64, 3), 8 * i, np.uint8) for i in range(30)]
    original = [cv2.add(f, n // 4) for f, n in zip(original, _frames(30))]  # some texture, so frames have size
    data = write_video(tmp_path / "v.avi", original).read_bytes()
    path = tmp_path / "cut.avi"
    path.write_bytes(data[: len(data) // 2])
    frames, error = _consume(open_source(path))
    n = len(frames)
    assert 5 < n < 25
    assert str(error) == (f"{path}: frame {n} of 30 could not be decoded (file truncated or corrupt); "
                          f"frames 0-{n - 1} were processed, frames {n}-29 are missing")
    # the frames delivered are the real ones, in order (MJPG is lossy: compare loosely); the last
    # one may be cut by the truncation, which FFmpeg decodes partly rather than refusing
    assert [abs(float(f.mean()) - float(o.mean())) < 3 for f, o in zip(frames[:-1], original)] == [True] * (n - 1)


def test_webcam_that_does_not_open():
    with pytest.raises(VideoError, match=r"^cannot open webcam 97; check the index \(0 is the first camera\)"):
        open_source("97")


def test_folder_in_natural_order_with_grayscale_and_16_bit_images(tmp_path):
    frames = _frames(3)
    cv2.imwrite(str(tmp_path / "f10.png"), frames[2])
    cv2.imwrite(str(tmp_path / "f2.png"), cv2.cvtColor(frames[1], cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(tmp_path / "f1.png"), frames[0].astype(np.uint16) * 257)
    (tmp_path / "readme.txt").write_text("ignored")
    source = open_source(tmp_path)
    assert isinstance(source, FolderSource) and [p.name for p in source.files] == ["f1.png", "f2.png", "f10.png"]
    got = list(source)
    assert np.array_equal(got[0], frames[0]) and np.array_equal(got[2], frames[2])
    assert got[1].shape == (48, 64, 3) and np.array_equal(got[1][..., 0], got[1][..., 2])


def test_folder_with_a_corrupt_image_midway(tmp_path):
    for i, f in enumerate(_frames(4)):
        cv2.imwrite(str(tmp_path / f"{i:03d}.jpg"), f)
    (tmp_path / "002.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    frames, error = _consume(open_source(tmp_path))
    assert len(frames) == 2
    assert str(error) == (f"image {tmp_path / '002.jpg'} (frame 2 of 4) could not be decoded; frames 0-1 were "
                          "processed; fix or remove the file")


def test_folder_whose_images_change_size(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), _frames(1)[0])
    cv2.imwrite(str(tmp_path / "b.png"), _frames(1, (40, 40))[0])
    frames, error = _consume(open_source(tmp_path))
    assert len(frames) == 1
    assert "is 40x40 but the first image is 64x48; frames 0-0 were processed" in str(error)


def test_iterables_pass_through_and_other_objects_are_refused():
    frames = _frames(3)
    source = open_source(frames)
    assert isinstance(source, IterableSource) and source.count == 3 and list(source) == frames
    generated = open_source(f for f in frames)
    assert generated.count is None and len(list(generated)) == 3
    with pytest.raises(VideoError, match="input must be a path, a webcam index or an iterable of frames; got float"):
        open_source(1.5)


def test_check_output_refusals(tmp_path):
    existing = tmp_path / "out.mp4"
    existing.write_bytes(b"keep me")
    with pytest.raises(OutputError, match=r"out.mp4 already exists; pass --overwrite to replace it$"):
        check_output(existing, overwrite=False)
    assert check_output(existing, overwrite=True) == existing and existing.read_bytes() == b"keep me"
    with pytest.raises(OutputError, match=r"folder .*missing does not exist; create it first"):
        check_output(tmp_path / "missing" / "out.mp4", overwrite=False)
    with pytest.raises(OutputError, match="is a folder; give a file name inside it"):
        check_output(tmp_path, overwrite=True)
    with pytest.raises(OutputError, match=r"output .*out.mkv must end in .mp4 or .avi"):
        check_output(tmp_path / "out.mkv", overwrite=False, suffixes=(".mp4", ".avi"))
    fresh = tmp_path / "new.csv"
    assert check_output(fresh, overwrite=False) == fresh and not fresh.exists()  # the probe is removed


@pytest.fixture
def unwritable_dir(tmp_path):
    """A folder we cannot create files in: a read-only tmp dir, or /sys when running as root."""
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        (locked / "probe").touch()
    except OSError:
        yield locked
    else:
        if not Path("/sys").is_dir() or os.access("/sys", os.W_OK) and _can_create(Path("/sys")):
            pytest.skip("no unwritable folder available (root without /sys)")
        yield Path("/sys")
    finally:
        locked.chmod(0o700)


def _can_create(folder):
    try:
        (folder / "siamtrack-probe").touch()
    except OSError:
        return False
    (folder / "siamtrack-probe").unlink()
    return True


def test_check_output_unwritable_folder(unwritable_dir):
    with pytest.raises(OutputError, match=r"cannot write .*out.mp4: Permission denied; choose another location"):
        check_output(unwritable_dir / "out.mp4", overwrite=False)


def test_csv_rows_are_on_disk_before_close(tmp_path):
    writer = CsvWriter(tmp_path / "b.csv")
    writer.write(0, TrackResult((1.0, 2.5, 30.0, 40.25), 1.0, False))
    writer.write(1, TrackResult((3.125, 4.0, 31.0, 41.0), 0.12345, True))
    assert (tmp_path / "b.csv").read_text().splitlines() == [
        CSV_HEADER, "0,1.00,2.50,30.00,40.25,1.0000,0", "1,3.12,4.00,31.00,41.00,0.1235,1"]
    writer.close()


def test_video_writer_writes_a_playable_file(tmp_path):
    writer = VideoWriter(tmp_path / "out.mp4", 20.0)
    for f in _frames(7):
        writer.write(f)
    writer.close()
    frames = _read_all(tmp_path / "out.mp4")
    assert len(frames) == 7 and frames[0].shape == (48, 64, 3)
    assert cv2.VideoCapture(str(tmp_path / "out.mp4")).get(cv2.CAP_PROP_FPS) == pytest.approx(20.0)


def test_annotate_draws_green_when_tracking_red_when_lost():
    frame = np.zeros((60, 80, 3), np.uint8)
    annotate(frame, TrackResult((20.0, 20.0, 30.0, 20.0), 0.9, False), fps=None)
    assert tuple(frame[30, 20]) == (0, 220, 0)  # left edge of the box
    assert not (frame == 255).all(axis=2).any()  # no (white) fps text when none is given
    lost = annotate(np.zeros((60, 80, 3), np.uint8), TrackResult((20.0, 20.0, 30.0, 20.0), 0.1, True), fps=25.0)
    assert tuple(lost[30, 20]) == (0, 0, 255)
    assert (lost[2:18, 6:50] == 255).all(axis=2).any()  # the white fps text, top left
