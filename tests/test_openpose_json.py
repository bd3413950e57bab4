"""OpenPose JSON files in and out (pose/openpose_json.py): reference poses from an OpenPose editor, folders
of OpenPose per-frame files as driving poses, and the export of extracted poses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pose import layout
from pose.errors import OutputError, PoseFileError
from pose.io import load_pose_frame, load_sequence
from pose.openpose_json import (
    BODY25_TO_BODY18,
    load_openpose_folder,
    load_openpose_frame,
    openpose_person,
    save_openpose,
)
from pose.sequence import FrameStatus

B = layout.B


def _body25(points: dict[int, tuple[float, float]], score: float = 0.9) -> list[float]:
    flat = [0.0] * 75
    for i, (x, y) in points.items():
        flat[3 * i: 3 * i + 3] = [x, y, score]
    return flat


def _write(path, people, **extra):
    path.write_text(json.dumps({"version": 1.3, "people": people, **extra}), encoding="utf-8")
    return path


STANDING = {0: (50, 20), 1: (50, 40), 2: (35, 40), 3: (30, 60), 4: (28, 80), 5: (65, 40), 6: (70, 60), 7: (72, 80),
            8: (50, 90), 9: (42, 90), 10: (42, 125), 11: (42, 160), 12: (58, 90), 13: (58, 125), 14: (58, 160),
            15: (46, 17), 16: (54, 17), 17: (42, 19), 18: (58, 19), 19: (62, 168), 21: (57, 163), 22: (38, 168)}


def test_body25_maps_onto_the_openpose18_body_and_the_feet(tmp_path):
    path = _write(tmp_path / "editor.json", [{"pose_keypoints_2d": _body25(STANDING)}], canvas_width=100,
                  canvas_height=180)
    frame = load_openpose_frame(path)
    assert (frame.width, frame.height) == (100, 180) and frame.status == FrameStatus.MANUAL
    for ours, theirs in enumerate(BODY25_TO_BODY18):
        np.testing.assert_allclose(frame.keypoints[ours, :2], STANDING[theirs])
    assert tuple(frame.xy[B["right_hip"]]) == (42, 90) and tuple(frame.xy[B["left_ankle"]]) == (58, 160)
    feet = frame.keypoints[layout.FEET]
    np.testing.assert_allclose(feet[0, :2], (62, 168))  # left big toe
    assert feet[1, 2] == 0 and np.isnan(feet[1, :2]).all()  # 0, 0, 0 = not found
    assert not frame.visible()[layout.FACE].any()  # no face or hands in the file


def test_coco18_body_face70_hands_and_fractions_of_the_canvas(tmp_path):
    body = np.zeros((18, 3))
    body[:, :2] = np.linspace(0.1, 0.9, 36).reshape(18, 2)
    body[:, 2] = 1.0
    face = np.tile([0.5, 0.2, 1.0], 70)
    hand = np.tile([0.3, 0.5, 0.8], 21)
    person = {"pose_keypoints_2d": body.ravel().tolist(), "face_keypoints_2d": face.tolist(),
              "hand_left_keypoints_2d": hand.tolist(), "hand_right_keypoints_2d": []}
    path = _write(tmp_path / "normalised.json", [person], canvas_width=200, canvas_height=400)
    frame = load_openpose_frame(path)
    np.testing.assert_allclose(frame.xy[:18], body[:, :2] * (200, 400), rtol=1e-6)
    np.testing.assert_allclose(frame.xy[layout.FACE][:, 0], 100) and np.testing.assert_allclose(
        frame.xy[layout.LEFT_HAND][:, 1], 200)
    assert not frame.visible()[layout.RIGHT_HAND].any()


def test_fractions_with_a_hand_past_the_canvas_edge(tmp_path):
    """An editor's export in fractions with one wrist drawn just past the right edge (x = 1.02) was read as
    pixels: the whole body in the top-left pixel, no error."""
    frac = {k: (x / 100, y / 180) for k, (x, y) in STANDING.items()}
    frac[7] = (1.02, 0.44)  # left wrist
    path = _write(tmp_path / "past_edge.json", [{"pose_keypoints_2d": _body25(frac)}], canvas_width=512,
                  canvas_height=768)
    frame = load_openpose_frame(path)
    np.testing.assert_allclose(frame.xy[B["neck"]], (0.5 * 512, 40 / 180 * 768), rtol=1e-5)
    np.testing.assert_allclose(frame.xy[B["left_wrist"]], (1.02 * 512, 0.44 * 768), rtol=1e-5)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(2):
        _write(folder / f"f_{i:012d}_keypoints.json", [{"pose_keypoints_2d": _body25(frac)}], canvas_width=512,
               canvas_height=768)
    assert load_openpose_folder(folder, 24.0).keypoints[:, B["neck"], 0] == pytest.approx(256, rel=1e-5)


def test_size_of_the_image_when_the_file_states_none(tmp_path):
    path = _write(tmp_path / "openpose_000000000000_keypoints.json", [{"pose_keypoints_2d": _body25(STANDING)}])
    assert (load_pose_frame(path, size=(120, 200)).width, load_pose_frame(path, size=(120, 200)).height) == (120, 200)
    guessed = load_openpose_frame(path)  # OpenPose's own files: the keypoints' extent, with a margin
    assert guessed.width >= 72 and guessed.height >= 168


def test_the_most_confident_person_is_the_reference(tmp_path):
    faint = {k: (x + 100, y) for k, (x, y) in STANDING.items()}
    path = _write(tmp_path / "two.json", [{"pose_keypoints_2d": _body25(faint, 0.3)},
                                          {"pose_keypoints_2d": _body25(STANDING, 0.9)}],
                  canvas_width=300, canvas_height=200)
    assert load_openpose_frame(path).xy[B["neck"], 0] == 50


def test_bad_files_name_the_file_and_the_field(tmp_path):
    cases = {
        "short.json": ({"people": [{"pose_keypoints_2d": [1.0, 2.0, 1.0]}]}, "pose_keypoints_2d"),
        "text.json": ({"people": [{"pose_keypoints_2d": ["a"] * 75}]}, "numbers only"),
        "nobody.json": ({"people": []}, "no person"),
        "canvas.json": ({"people": [{"pose_keypoints_2d": _body25(STANDING)}], "canvas_width": -5,
                         "canvas_height": 10}, "canvas_width"),
        "one_point.json": ({"people": [{"pose_keypoints_2d": _body25({1: (5, 5)})}], "canvas_width": 10,
                            "canvas_height": 10}, "fewer than 2"),
    }
    for name, (doc, field) in cases.items():
        path = tmp_path / name
        path.write_text(json.dumps(doc))
        with pytest.raises(PoseFileError, match=field) as err:
            load_pose_frame(path)
        assert name in str(err.value)
    (tmp_path / "broken.json").write_text('{"people": [')
    with pytest.raises(PoseFileError, match="broken.json.*not valid JSON"):
        load_pose_frame(tmp_path / "broken.json")
    with pytest.raises(PoseFileError, match="holds one frame"):
        load_pose_frame(_write(tmp_path / "ok.json", [{"pose_keypoints_2d": _body25(STANDING)}]), index=1)


def test_export_and_read_back_real_poses(tmp_path, dance_short_poses):
    seq = dance_short_poses
    files = save_openpose(seq, tmp_path / "op", "dance")
    assert [f.name for f in files[:2]] == ["dance_000000000000_keypoints.json", "dance_000000000001_keypoints.json"]
    doc = json.loads(files[0].read_text())
    assert (doc["canvas_width"], doc["canvas_height"]) == (seq.width, seq.height)
    person = doc["people"][0]
    assert len(person["pose_keypoints_2d"]) == 75 and len(person["face_keypoints_2d"]) == 210
    mid_hip = np.array(person["pose_keypoints_2d"][24:26])
    np.testing.assert_allclose(mid_hip, seq[0].xy[[B["right_hip"], B["left_hip"]]].mean(axis=0), atol=1e-3)
    back = load_openpose_folder(tmp_path / "op", fps=seq.fps)
    assert len(back) == len(seq) and (back.width, back.height) == (seq.width, seq.height)
    seen = seq.keypoints[..., 2] > 0
    assert (back.keypoints[..., 2] > 0).tolist() == seen.tolist()
    np.testing.assert_allclose(back.keypoints[seen][:, :2], seq.keypoints[seen][:, :2], atol=1e-3)  # 3 decimals
    assert load_sequence(tmp_path / "op").fps == 24.0  # a folder without a rate: like a folder of frames
    with pytest.raises(OutputError, match="already exists"):
        save_openpose(seq, tmp_path / "op", "dance")
    assert not list(tmp_path.glob(".op.*"))  # no temporary folder left behind


def test_folder_follows_one_person_and_marks_empty_frames(tmp_path):
    folder = tmp_path / "op"
    folder.mkdir()
    other = {k: (x + 120, y) for k, (x, y) in STANDING.items()}
    step = {k: (x + 4, y) for k, (x, y) in STANDING.items()}
    for i, people in enumerate([[STANDING], [other, step], [], [step]]):
        _write(folder / f"clip_{i:012d}_keypoints.json", [{"pose_keypoints_2d": _body25(p)} for p in people],
               canvas_width=300, canvas_height=200)
    seq = load_openpose_folder(folder, fps=30.0)
    assert seq.fps == 30.0 and len(seq) == 4
    assert seq.status.tolist() == [FrameStatus.DETECTED, FrameStatus.DETECTED, FrameStatus.MISSING, FrameStatus.DETECTED]
    assert seq.keypoints[1, B["neck"], 0] == 54  # the dancer who moved 4 px, not the other one
    (folder / "clip_000000000004_keypoints.json").write_text(json.dumps(
        {"people": [{"pose_keypoints_2d": _body25(STANDING)}], "canvas_width": 640, "canvas_height": 480}))
    with pytest.raises(PoseFileError, match="different canvas sizes"):
        load_openpose_folder(folder, fps=30.0)


def test_openpose_person_fills_missing_with_zeros(dance_short_poses):
    frame = dance_short_poses[0].copy()
    frame.keypoints[layout.RIGHT_HAND] = (np.nan, np.nan, 0.0)
    person = openpose_person(frame)
    assert person["hand_right_keypoints_2d"] == [0.0] * 63
    assert all(np.isfinite(person["pose_keypoints_2d"]))


def test_animate_from_an_openpose_folder_and_reference_pose(tmp_path, data_dir, dance_short_poses):
    """The CLI end to end: an OpenPose editor's reference pose for the character and a folder of OpenPose
    files as the dance."""
    from pose.extract import detect_image
    from pose.video import open_video, read_image

    folder = tmp_path / "dance_op"
    save_openpose(dance_short_poses, folder, "dance_short")
    ref = data_dir / "ref" / "anyone-5.png"
    h, w = read_image(ref).shape[:2]
    ref_json = tmp_path / "ref_openpose.json"
    ref_json.write_text(json.dumps({"people": [openpose_person(detect_image(ref))], "canvas_width": w,
                                    "canvas_height": h}))
    out = tmp_path / "out.mp4"
    run = subprocess.run([sys.executable, "-m", "animate.cli", "animate", str(ref), str(folder), "-o", str(out),
                          "--reference-pose", str(ref_json), "--size", "192x288"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    frames = list(open_video(out))
    assert len(frames) == len(dance_short_poses) and frames[0].shape == (288, 192, 3)
    assert "pose given" in run.stderr


def test_extract_checks_the_openpose_folder_before_detecting(tmp_path, data_dir):
    folder = tmp_path / "op"
    folder.mkdir()
    (folder / "dance_short_000000000000_keypoints.json").write_text("{}")
    run = subprocess.run([sys.executable, "-m", "animate.cli", "pose", "extract", str(data_dir / "dance_short.mp4"),
                          "-o", str(tmp_path / "p.json"), "--openpose", str(folder)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 2 and "already exists" in run.stderr and "--overwrite" in run.stderr
    assert not (tmp_path / "p.json").exists()


def test_openpose_folder_drives_with_its_gaps_filled(tmp_path, dance_short_poses):
    """OpenPose writes an empty 'people' list where it found nobody: as driving input, such frames are
    interpolated like the detector's own misses, and the poses smoothed."""
    from animate.api import Animator

    folder = tmp_path / "op"
    save_openpose(dance_short_poses, folder, "clip")
    for i in (10, 11):  # OpenPose lost the dancer for two frames
        (folder / f"clip_{i:012d}_keypoints.json").write_text(json.dumps(
            {"people": [], "canvas_width": dance_short_poses.width, "canvas_height": dance_short_poses.height}))
    with Animator(renderer="puppet") as animator:
        seq = animator.load_driving(folder, progress=False)
    assert len(seq) == 24 and seq.status[10] == FrameStatus.INTERPOLATED and seq.status[11] == FrameStatus.INTERPOLATED
    neck = seq.keypoints[:, B["neck"], :2]
    assert np.isfinite(neck).all()
    assert np.linalg.norm(neck[10] - (neck[9] + neck[12]) / 2) < 0.05 * dance_short_poses.height


def test_overwrite_removes_the_files_of_a_longer_earlier_export(tmp_path, dance_short_poses):
    """A shorter export over a longer one leaves no stale frames that a reader would take as its own; files of
    other names, and ones not numbered on from the new end, stay."""
    folder = tmp_path / "op"
    save_openpose(dance_short_poses.slice(0, 6), folder, "dance")
    (folder / "notes.json").write_text("{}")
    (folder / "other_000000000004_keypoints.json").write_text("{}")
    (folder / "dance_000000000009_keypoints.json").write_text("{}")  # not consecutive from the new end
    files = save_openpose(dance_short_poses.slice(0, 2), folder, "dance", overwrite=True)
    assert len(files) == 2
    assert sorted(p.name for p in folder.iterdir()) == [
        "dance_000000000000_keypoints.json", "dance_000000000001_keypoints.json",
        "dance_000000000009_keypoints.json", "notes.json", "other_000000000004_keypoints.json"]
    assert not list(tmp_path.glob(".op.*"))


@pytest.mark.skipif(not __import__("pathlib").Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_check_openpose_output_probes_that_the_folder_takes_files(tmp_path):
    """/proc passes the permission bits (root too) but takes no file: refused by the check, before any work."""
    from pose.openpose_json import check_openpose_output

    with pytest.raises(OutputError, match="cannot write /proc/op: folder /proc does not take new files"):
        check_openpose_output("/proc/op", "dance")
    check_openpose_output(tmp_path / "op", "dance")
    assert list(tmp_path.iterdir()) == []  # the probe file is gone, no folder created


def test_openpose_files_are_staged_inside_the_folder(tmp_path, dance_short_poses, monkeypatch):
    """The files were staged beside the folder, in its parent: a folder that is a mount point (Docker's
    ``-v host:/out``) then failed after the whole extraction ('Invalid cross-device link'), and a writable
    folder in a read-only parent was refused. The staging folder is now inside it, and removed after."""
    import pose.openpose_json as opj

    folder = tmp_path / "out"
    folder.mkdir()
    moves = []
    real = opj.publish
    monkeypatch.setattr(opj, "publish", lambda src, dst: (moves.append(Path(src)), real(src, dst)))
    opj.save_openpose(dance_short_poses.slice(0, 3), folder, "dance")
    assert len(moves) == 3 and all(p.parent.parent == folder for p in moves)
    assert sorted(p.name for p in folder.iterdir()) == [opj.openpose_name("dance", i) for i in range(3)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_full_disk_while_writing_openpose_files_is_one_line(tmp_path, dance_short_poses, monkeypatch):
    import errno

    import pose.openpose_json as opj

    calls = []
    original = Path.write_text

    def write_text(self, *args, **kwargs):  # the disk fills up at the third file
        calls.append(self)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    folder = tmp_path / "new"
    with pytest.raises(OutputError, match=r"cannot write OpenPose files to .*new \(No space left on device\); "
                                          "free some space"):
        opj.save_openpose(dance_short_poses.slice(0, 5), folder, "dance")
    assert list(tmp_path.iterdir()) == []  # the new folder and its staging folder are gone


def test_openpose_folder_is_created_with_missing_parents(tmp_path, dance_short_poses):
    """`-o a/b/p.json` and `--render a/b/s.mp4` create their folders, but `--openpose a/b/op` was refused
    ('folder a/b does not exist; create it first'). The OpenPose folder is now created like them."""
    from pose.openpose_json import check_openpose_output

    folder = tmp_path / "a" / "b" / "op"
    check_openpose_output(folder, "dance")
    files = save_openpose(dance_short_poses.slice(0, 2), folder, "dance")
    assert [p.name for p in files] == sorted(p.name for p in folder.iterdir())
    assert len(load_openpose_folder(folder, 24.0)) == 2
