"""Save / load round trips and schema errors of pose files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pose import layout
from pose.errors import InputError, OutputError, PoseFileError
from pose.io import atomic_output, load_pose_frame, load_sequence, save_pose_frame, save_sequence
from pose.sequence import FrameStatus, PoseFrame, PoseSequence, empty_keypoints, keypoint_valid


@pytest.fixture
def sequence() -> PoseSequence:
    rng = np.random.default_rng(7)
    kps = empty_keypoints(5)
    kps[:, :92, :2] = (rng.random((5, 92, 2)) * [720, 1280]).astype(np.float32)
    kps[:, :92, 2] = rng.random((5, 92)).astype(np.float32)
    kps[2, 40, :] = [np.nan, np.nan, 0.0]  # a missing face point
    status = np.array([0, 0, 1, 2, 4], np.uint8)
    return PoseSequence(kps, 720, 1280, 23.976, status, meta={"source": "dance.mp4", "n": np.int64(3)})


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_round_trip_is_exact(sequence, tmp_path, suffix):
    path = save_sequence(sequence, tmp_path / f"poses{suffix}")
    back = load_sequence(path)
    assert np.array_equal(back.keypoints, sequence.keypoints, equal_nan=True)
    assert np.array_equal(back.status, sequence.status)
    assert np.array_equal(back.confidence, sequence.confidence)
    assert (back.width, back.height, back.fps) == (720, 1280, 23.976)
    assert back.meta == {"source": "dance.mp4", "n": 3}
    assert not list(tmp_path.glob(".*part*")), "temporary file left behind"


def test_json_is_human_editable(sequence, tmp_path):
    path = save_sequence(sequence, tmp_path / "p.json")
    data = json.loads(path.read_text())
    frame = data["frames"][2]
    assert frame["status"] == "interpolated"
    assert len(frame["body"]) == 18 and len(frame["face"]) == 68 and len(frame["left_hand"]) == 21
    assert frame["face"][40 - layout.FACE.start] == [None, None, 0.0]
    # Hand-edit one keypoint and read it back.
    frame["body"][4] = [100.5, 200.25, 1.0]
    path.write_text(json.dumps(data))
    assert load_sequence(path).keypoints[2, 4].tolist() == [100.5, 200.25, 1.0]


def _corrupt(tmp_path, sequence, edit):
    path = save_sequence(sequence, tmp_path / "p.json")
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    "edit, field",
    [
        (lambda d: d.update(version=2), "version"),
        (lambda d: d.update(schema="openpose"), "schema"),
        (lambda d: d.update(fps=0), "fps"),
        (lambda d: d.update(width="wide"), "width"),
        (lambda d: d.update(frames=[]), "frames"),
        (lambda d: d["frames"][1]["body"].pop(), "frames[1].body"),
        (lambda d: d["frames"][0].update(status="guessed"), "frames[0].status"),
        (lambda d: d["frames"][3]["right_hand"][2].__setitem__(2, 7.0), "frames[3].right_hand[2]"),
        (lambda d: d["frames"][0].pop("face"), "frames[0].face"),
        # frames reordered, one deleted or one duplicated by hand: before, read in list order without a word
        (lambda d: d["frames"].reverse(), "frames[0].index"),
        (lambda d: d["frames"].pop(2), "frames[2].index"),
        (lambda d: d["frames"].insert(1, dict(d["frames"][0])), "frames[1].index"),
        (lambda d: d["frames"][0].update(index=True), "frames[0].index"),
    ],
)
def test_schema_errors_name_file_and_field(sequence, tmp_path, edit, field):
    path = _corrupt(tmp_path, sequence, edit)
    with pytest.raises(PoseFileError) as err:
        load_sequence(path)
    message = str(err.value)
    assert str(path) in message and f"'{field}'" in message
    assert "\n" not in message


def test_frames_without_index_and_a_byte_order_mark(sequence, tmp_path):
    """The index may be left out of hand-written frames; a file saved with a UTF-8 byte-order mark (Windows
    Notepad) was refused as "not valid JSON"."""
    path = save_sequence(sequence, tmp_path / "p.json")
    data = json.loads(path.read_text())
    for frame in data["frames"]:
        del frame["index"]
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(data).encode())
    back = load_sequence(path)
    assert np.array_equal(back.keypoints, sequence.keypoints, equal_nan=True)


def test_not_json_and_missing_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    with pytest.raises(PoseFileError, match="not valid JSON"):
        load_sequence(bad)
    with pytest.raises(PoseFileError, match="does not exist"):
        load_sequence(tmp_path / "nope.json")
    garbage = tmp_path / "bad.npz"
    garbage.write_bytes(b"\x00garbage")
    with pytest.raises(PoseFileError, match="bad.npz"):
        load_sequence(garbage)
    with pytest.raises(PoseFileError, match=r"\.json or \.npz"):
        load_sequence(bad.rename(tmp_path / "bad.txt"))


def test_npz_wrong_version(sequence, tmp_path):
    path = save_sequence(sequence, tmp_path / "p.npz")
    with np.load(path) as npz:
        arrays = dict(npz)
    header = json.loads(str(arrays["header"]))
    header["version"] = 99
    arrays["header"] = np.array(json.dumps(header))
    np.savez(path, **arrays)
    with pytest.raises(PoseFileError, match="'version'"):
        load_sequence(path)


def test_pose_override_frame(sequence, tmp_path):
    path = save_pose_frame(sequence[1], tmp_path / "ref_pose.json")
    frame = load_pose_frame(path)
    assert frame.status == FrameStatus.MANUAL
    assert np.array_equal(frame.keypoints, sequence.keypoints[1], equal_nan=True)
    empty = PoseSequence(empty_keypoints(1), 10, 10, 1.0)
    save_sequence(empty, tmp_path / "empty.json")
    with pytest.raises(PoseFileError, match="visible body keypoints"):
        load_pose_frame(tmp_path / "empty.json")


def test_no_overwrite_and_unwritable(sequence, tmp_path):
    path = save_sequence(sequence, tmp_path / "p.json")
    before = path.read_bytes()
    with pytest.raises(OutputError, match="already exists"):
        save_sequence(sequence, path, overwrite=False)
    assert path.read_bytes() == before
    with pytest.raises(OutputError, match="does not exist"):
        save_sequence(sequence, tmp_path / "missing_dir" / "p.json")


def test_published_files_get_ordinary_permissions(sequence, tmp_path):
    import os
    import stat

    umask = os.umask(0o022)
    try:
        path = save_sequence(sequence, tmp_path / "p.json")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0o600


def test_atomic_output_removes_partial_file_on_interrupt(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(KeyboardInterrupt), atomic_output(target) as tmp:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_a_full_disk_while_saving_poses_is_one_line(tmp_path, sequence, suffix, monkeypatch):
    """`pose extract -o` and `pose retarget -o` on a full disk ended in tracebacks (exit status 1): the write's
    OSError is now an OutputError naming the file, and no partial file stays."""
    import errno

    import pose.io

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pose.io, "_dump_json", full)
    monkeypatch.setattr(pose.io.np, "savez_compressed", full)
    target = tmp_path / f"poses{suffix}"
    with pytest.raises(OutputError, match=rf"cannot write .*poses\{suffix} \(No space left on device\); free some"):
        save_sequence(sequence, target)
    assert list(tmp_path.iterdir()) == []


# --- saving refuses what loading would refuse ---------------------------------------------------------------
def _edited(sequence: PoseSequence, edit) -> PoseSequence:
    seq = sequence.copy()
    edit(seq)
    return seq


def _set_kp(t: int, k: int, c: int, value: float):
    def edit(seq: PoseSequence) -> None:
        seq.keypoints[t, k, c] = value
    return edit


@pytest.mark.parametrize("suffix", [".json", ".npz"])
@pytest.mark.parametrize(
    "edit, where",
    [
        (_set_kp(1, 3, 0, np.inf), "frames[1].body[3]"),
        (_set_kp(0, 0, 1, -np.inf), "frames[0].body[0]"),
        (_set_kp(2, 0, 2, 1.5), "frames[2].body[0]"),
        (_set_kp(4, layout.FACE.start + 7, 2, -0.25), "frames[4].face[7]"),
        (lambda s: s.meta.update(bad=float("nan")), "meta.bad"),
        (lambda s: s.meta.update(nested={"a": [1.0, np.float32(np.inf)]}), "meta.nested.a[1]"),
        (lambda s: s.meta.update(obj=object()), "meta.obj"),
        (lambda s: s.confidence.__setitem__(3, np.nan), "frame 3"),
    ],
)
def test_save_refuses_what_load_would_refuse(sequence, tmp_path, suffix, edit, where):
    seq = _edited(sequence, edit)
    path = tmp_path / f"p{suffix}"
    with pytest.raises(InputError) as err:
        save_sequence(seq, path)
    message = str(err.value)
    assert str(path) in message and where in message and "\n" not in message
    assert list(tmp_path.iterdir()) == [], "nothing (not even a temporary file) may be written"


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_save_refuses_an_empty_sequence(sequence, tmp_path, suffix):
    path = tmp_path / f"e{suffix}"
    with pytest.raises(InputError, match="no frames") as err:
        save_sequence(sequence.slice(0, 0), path)
    assert str(path) in str(err.value)
    assert not path.exists()


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_nan_score_is_saved_as_missing(sequence, tmp_path, suffix):
    # a NaN score counts as "missing" everywhere (keypoint_valid); it is stored like score 0
    seq = sequence.copy()
    seq.keypoints[0, 5, 2] = np.nan
    seq.keypoints[1, 6] = [np.nan, np.nan, np.nan]
    back = load_sequence(save_sequence(seq, tmp_path / f"p{suffix}"))
    assert back.keypoints[0, 5].tolist() == [*seq.keypoints[0, 5, :2].tolist(), 0.0]
    assert np.isnan(back.keypoints[1, 6, :2]).all() and back.keypoints[1, 6, 2] == 0.0
    assert np.array_equal(back.keypoints[2:], seq.keypoints[2:], equal_nan=True)
    assert not keypoint_valid(seq.keypoints[0])[5] and not keypoint_valid(back.keypoints[0])[5]
    assert np.isnan(seq.keypoints[0, 5, 2]), "the saved sequence itself is left unchanged"


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_missing_coordinates_still_round_trip(sequence, tmp_path, suffix):
    seq = sequence.copy()
    seq.keypoints[0, 0, 0] = np.nan  # x lost, score kept
    seq.keypoints[3] = np.nan
    seq.keypoints[3, :, 2] = 0.0
    back = load_sequence(save_sequence(seq, tmp_path / f"p{suffix}"))
    assert np.array_equal(back.keypoints, seq.keypoints, equal_nan=True)


def _npz_with(sequence, tmp_path, **changes):
    path = save_sequence(sequence, tmp_path / "p.npz")
    with np.load(path) as npz:
        arrays = dict(npz)
    for key, change in changes.items():
        arrays[key] = change(arrays[key])
    np.savez(path, **arrays)
    return path


def _at(index, value, dtype=None):
    def change(a):
        a = a.astype(dtype) if dtype is not None else a.copy()
        a[index] = value
        return a
    return change


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"status": _at(0, -1, np.int64)}, "status[0]"),
        ({"status": _at(2, 9)}, "status[2]"),
        ({"status": lambda a: a.astype(np.float64) % 4 + 0.5}, "status"),
        ({"keypoints": _at((1, 2, 2), 7.0)}, "keypoints[1, 2]"),
        ({"keypoints": _at((0, 0, 0), np.inf)}, "keypoints[0, 0]"),
        ({"keypoints": lambda a: a.astype("U12")}, "keypoints"),
        ({"confidence": lambda a: a.astype("U12")}, "confidence"),
        ({"confidence": _at(4, np.inf)}, "confidence[4]"),
    ],
)
def test_npz_load_checks_like_the_json_loader(sequence, tmp_path, changes, field):
    path = _npz_with(sequence, tmp_path, **changes)
    with pytest.raises(PoseFileError) as err:
        load_sequence(path)
    message = str(err.value)
    assert str(path) in message and f"'{field}'" in message and "\n" not in message


@pytest.mark.parametrize(
    "edit, field",
    [
        (lambda d: d.update(fps=float("inf")), "fps"),
        (lambda d: d["frames"][0]["body"].__setitem__(1, [1e39, 2.0, 0.5]), "frames[0].body[1]"),
        (lambda d: d["frames"][2].update(confidence=float("nan")), "frames[2].confidence"),
    ],
)
def test_json_load_refuses_non_finite_values(sequence, tmp_path, edit, field):
    path = _corrupt(tmp_path, sequence, edit)
    with pytest.raises(PoseFileError) as err:
        load_sequence(path)
    assert f"'{field}'" in str(err.value)


# --- PoseSequence / PoseFrame ---------------------------------------------------------------------------------
def test_copy_and_slice_do_not_share_nested_meta(sequence):
    sequence.meta["detector_options"] = {"model": 1}
    sequence.meta["smoothing"] = {"parts": {"body": {"beta": 32.0}}}
    c = sequence.copy()
    c.meta["detector_options"]["x"] = 1
    s = sequence.slice(0, 3)
    s.meta["smoothing"]["parts"]["body"]["beta"] = -1.0
    assert sequence.meta["detector_options"] == {"model": 1}
    assert sequence.meta["smoothing"]["parts"]["body"]["beta"] == 32.0
    replaced = sequence.copy(meta={"own": True})
    assert replaced.meta == {"own": True}


@pytest.mark.parametrize("step, match", [(-1, "negative steps are not supported.*from_frames"), (0, ">= 1"),
                                         (1.5, "integer")])
def test_slice_refuses_bad_steps(sequence, step, match):
    with pytest.raises(InputError, match=match):
        sequence.slice(0, None, step)


def test_slice_keeps_the_keyframe_pattern_with_negative_start(sequence):
    seq = sequence.copy()
    seq.meta["detect_every"] = 2
    assert seq.slice(-4).meta["detect_phase"] == 1  # starts at frame 1, between keyframes
    assert seq.slice(-3).meta["detect_every"] == 2 and "detect_phase" not in seq.slice(-3).meta  # at frame 2


def test_slice_moves_the_source_frame_range(sequence):
    """meta start/end/step of an extraction name the source frames of the slice (its audio follows them)."""
    n = len(sequence)
    seq = sequence.copy()
    seq.meta.update(start=10, end=None, step=2)
    part = seq.slice(1, n - 1)
    assert (part.meta["start"], part.meta["step"], part.meta["end"]) == (12, 2, 12 + 2 * (n - 2))
    strided = part.slice(-3, None, 2)
    assert (strided.meta["start"], strided.meta["step"]) == (12 + 2 * (n - 5), 4)
    assert seq.meta["start"] == 10 and "start" not in sequence.slice(1).meta  # untouched; none given


@pytest.mark.parametrize("status", [[9, 9], [-1, 0], [0.5, 1], ["detected", "held"]])
def test_sequence_refuses_unknown_status_codes(status):
    with pytest.raises(InputError, match="status"):
        PoseSequence(empty_keypoints(2), 10, 10, 24, status=status)


def test_sequence_and_frame_refuse_bad_sizes_and_rates():
    for fps in (float("inf"), float("nan"), 0.0, -24.0):
        with pytest.raises(InputError, match="fps"):
            PoseSequence(empty_keypoints(2), 10, 10, fps)
    with pytest.raises(InputError, match="size must be positive"):
        PoseFrame(empty_keypoints(), 0, 0)
    with pytest.raises(InputError, match="status"):
        PoseFrame(empty_keypoints(), 10, 10, 9)
    frame = PoseFrame(empty_keypoints(), 10, 20)
    with pytest.raises(InputError, match="sizes must be positive"):
        frame.resized(0, 10)
    assert frame.resized(20, 40).width == 20


@pytest.mark.parametrize("key, value", [("fps", 1e9), ("width", 10**9), ("height", 70000)])
def test_absurd_rates_and_sizes_are_refused_on_load(sequence, tmp_path, key, value):
    path = save_sequence(sequence, tmp_path / "p.json")
    data = json.loads(path.read_text())
    data[key] = value
    path.write_text(json.dumps(data))
    with pytest.raises(PoseFileError, match=f"{key}.*up to"):
        load_sequence(path)


def test_detection_rate_counts_frames_with_a_person_only(sequence):
    """A hand-edited file may mark frames detected whose keypoints are all missing: they are not detections."""
    seq = sequence.copy()
    before = seq.detection_rate()
    seq.keypoints[:] = np.nan
    seq.keypoints[..., 2] = 0.0
    assert before == 0.6 and seq.detection_rate() == 0.0  # 2 of the 5 frames detected, 1 given (manual)


def test_manual_poses_are_no_gap(sequence):
    seq = sequence.copy(status=np.full(len(sequence), FrameStatus.MANUAL, np.uint8))
    assert seq.detection_rate() == 1.0 and seq.gaps() == []


@pytest.mark.parametrize("damage", ["empty", "truncated"])
def test_damaged_npz_is_a_one_line_pose_file_error(sequence, tmp_path, damage):
    path = save_sequence(sequence, tmp_path / "p.npz")
    data = path.read_bytes()
    path.write_bytes(b"" if damage == "empty" else data[: len(data) // 3])
    with pytest.raises(PoseFileError, match="p.npz is not a readable NPZ archive") as err:
        load_sequence(path)
    assert "\n" not in str(err.value)
