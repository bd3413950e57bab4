"""Save / load round trips and schema errors of pose files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pose import layout
from pose.errors import OutputError, PoseFileError
from pose.io import atomic_output, load_pose_frame, load_sequence, save_pose_frame, save_sequence
from pose.sequence import FrameStatus, PoseSequence, empty_keypoints


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
    ],
)
def test_schema_errors_name_file_and_field(sequence, tmp_path, edit, field):
    path = _corrupt(tmp_path, sequence, edit)
    with pytest.raises(PoseFileError) as err:
        load_sequence(path)
    message = str(err.value)
    assert str(path) in message and f"'{field}'" in message
    assert "\n" not in message


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
