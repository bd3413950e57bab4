"""`posedrive pose ...` end to end on real data, plus its one-line errors and exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import pytest

from animate.cli import main
from pose.io import load_sequence


def _frames(path):
    cap = cv2.VideoCapture(str(path))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    size = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    cap.release()
    return n, size


def test_extract_show_retarget_render(data_dir, tmp_path, capsys):
    seq_path, skel = tmp_path / "dance.json", tmp_path / "skel.mp4"
    assert main(["-q", "pose", "extract", str(data_dir / "dance_short.mp4"), "-o", str(seq_path),
                 "--render", str(skel)]) == 0
    seq = load_sequence(seq_path)
    assert len(seq) == 24 and seq.fps == pytest.approx(24.0)
    assert seq.detection_rate() > 0.9
    assert _frames(skel) == (24, (360, 640))

    assert main(["pose", "show", str(seq_path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 24 and summary["detection_rate"] > 0.9

    out = tmp_path / "fitted.npz"
    assert main(["-q", "pose", "retarget", str(seq_path), "--reference", str(data_dir / "ref" / "musepose_ref.png"),
                 "-o", str(out)]) == 0
    fitted = load_sequence(out)
    assert (fitted.width, fitted.height) == (704, 1216) and len(fitted) == 24

    video = tmp_path / "musepose.mp4"
    assert main(["-q", "pose", "render", str(out), "-o", str(video), "--style", "musepose", "--size", "352x608"]) == 0
    assert _frames(video) == (24, (352, 608))


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, f"error is not one line: {err!r}"
    return err


def test_bad_inputs_exit_2_with_one_line(data_dir, tmp_path, capsys):
    out = tmp_path / "x.json"
    assert main(["pose", "extract", str(tmp_path / "missing.mp4"), "-o", str(out)]) == 2
    assert "missing.mp4" in _error(capsys)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x01not a video" * 100)
    assert main(["pose", "extract", str(corrupt), "-o", str(out)]) == 2
    assert "corrupt.mp4" in _error(capsys)
    assert not out.exists() and not list(tmp_path.glob(".*part*"))

    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"schema": "something-else"}))
    assert main(["pose", "show", str(wrong)]) == 2
    assert "wrong.json" in _error(capsys)

    seq_path = tmp_path / "seq.json"
    seq_path.write_text("{}")
    assert main(["pose", "retarget", str(seq_path), "--reference", str(data_dir / "ref" / "musepose_ref.png"),
                 "-o", str(out)]) == 2
    _error(capsys)


def test_failed_command_leaves_no_new_output_folder(data_dir, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x01not a video" * 100)
    assert main(["pose", "extract", str(corrupt), "-o", str(tmp_path / "a" / "b" / "x.json"),
                 "--render", str(tmp_path / "c" / "skel_%03d.png")]) == 2
    _error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.mp4"]
    assert main(["eval", str(corrupt), "--out-dir", str(tmp_path / "e" / "f")]) == 2
    _error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.mp4"]


def test_no_person_in_reference_suggests_override(dance_short_poses, data_dir, tmp_path, capsys):
    from pose.io import save_sequence

    seq_path = save_sequence(dance_short_poses.slice(0, 3), tmp_path / "seq.json")
    ref = data_dir / "no_person.png"
    assert main(["pose", "retarget", str(seq_path), "--reference", str(ref), "-o", str(tmp_path / "o.json")]) == 2
    err = _error(capsys)
    assert "no_person.png" in err and "--reference-pose" in err
    assert not (tmp_path / "o.json").exists()


def test_existing_output_needs_overwrite(dance_short_poses, tmp_path, capsys):
    from pose.io import save_sequence

    seq_path = save_sequence(dance_short_poses.slice(0, 2), tmp_path / "seq.json")
    video = tmp_path / "skel.mp4"
    video.write_bytes(b"keep me")
    assert main(["pose", "render", str(seq_path), "-o", str(video)]) == 2
    assert "--overwrite" in _error(capsys)
    assert video.read_bytes() == b"keep me"
    assert main(["-q", "pose", "render", str(seq_path), "-o", str(video), "--overwrite"]) == 0
    assert _frames(video)[0] == 2


def test_usage_error_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["pose", "render"])
    assert exc.value.code == 2


def test_render_skeleton_png_frames(dance_short_poses, tmp_path, capsys):
    """Skeleton frames as numbered PNGs (for ControlNet tools), the same images as the video's frames."""
    from pose.io import save_sequence
    from pose.render import render_pose

    poses = tmp_path / "poses.json"
    save_sequence(dance_short_poses.slice(0, 3), poses)
    assert main(["pose", "render", str(poses), "-o", str(tmp_path / "skel" / "s_%03d.png")]) == 0
    names = sorted(p.name for p in (tmp_path / "skel").iterdir())
    assert names == ["s_000.png", "s_001.png", "s_002.png"]
    png = cv2.cvtColor(cv2.imread(str(tmp_path / "skel" / "s_001.png")), cv2.COLOR_BGR2RGB)
    expected = render_pose(dance_short_poses[1], style="openpose", size=(dance_short_poses.width, dance_short_poses.height))
    assert png.shape == expected.shape and (png == expected).all()  # lossless
    assert main(["pose", "render", str(poses), "-o", str(tmp_path / "skel" / "s_%03d.png")]) == 2
    assert "already exists" in capsys.readouterr().err


def _no_detection(monkeypatch):
    """Make the detection fail the test: a check that comes after it is too late."""
    import pose.extract

    def detect(*args, **kwargs):
        raise AssertionError("the outputs must be checked before the detection")

    monkeypatch.setattr(pose.extract, "extract_poses", detect)


def test_extract_openpose_overwrite_removes_stale_files(data_dir, dance_short_poses, tmp_path, capsys):
    """--openpose DIR --overwrite over the files of a longer run: none of those is left to be read as a frame."""
    from pose.openpose_json import save_openpose

    folder = tmp_path / "op"
    save_openpose(dance_short_poses, folder, "dance_short")  # an earlier run of 24 frames
    (folder / "notes.json").write_text("{}")
    assert main(["-q", "pose", "extract", str(data_dir / "dance_short.mp4"), "-o", str(tmp_path / "p.json"),
                 "--openpose", str(folder), "--end", "3", "--overwrite"]) == 0
    assert sorted(p.name for p in folder.glob("dance_short_*")) == [
        f"dance_short_{i:012d}_keypoints.json" for i in range(3)]
    assert (folder / "notes.json").exists()


def test_extract_checks_every_output_before_detecting(data_dir, tmp_path, monkeypatch, capsys):
    _no_detection(monkeypatch)
    video = str(data_dir / "dance_short.mp4")
    out = tmp_path / "y.npz"
    cases = [
        (["--style", "fancy", "--render", str(tmp_path / "s.mp4")], "fancy"),
        (["--style", "fancy"], "fancy"),
        (["--render", str(tmp_path / "s.xyz")], "s.xyz"),
        (["--render", str(tmp_path / "skel" / "s.png")], "s.png"),  # a PNG without a frame field: no video
        (["--openpose", str(out)], "-o and --openpose both name"),  # found only after the detection, before
        (["--render", str(tmp_path / "r.mp4"), "--openpose", str(tmp_path / "r.mp4")], "--render and --openpose"),
    ]
    if Path("/proc/self").is_dir():  # takes no new file, whatever the permission bits say (root too)
        cases += [(["--render", "/proc/s.mp4"], "/proc/s.mp4"), (["--openpose", "/proc/op"], "/proc/op")]
    for extra, named in cases:
        assert main(["pose", "extract", video, "-o", str(out), *extra]) == 2, extra
        err = _error(capsys)
        assert named in err, err
    assert main(["pose", "extract", video, "-o", str(tmp_path / "y.txt")]) == 2
    err = _error(capsys)
    assert "y.txt" in err and ".npz" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_extract_removes_its_outputs_when_a_later_step_fails(dance_short_poses, data_dir, tmp_path, monkeypatch,
                                                            capsys):
    import pose.extract
    import pose.openpose_json
    from pose.errors import OutputError

    monkeypatch.setattr(pose.extract, "extract_poses", lambda *a, **k: dance_short_poses.slice(0, 3))

    def full_disk(*args, **kwargs):
        raise OutputError("cannot write OpenPose files: disk full")

    monkeypatch.setattr(pose.openpose_json, "save_openpose", full_disk)
    keep = tmp_path / "keep.txt"
    keep.write_text("x")
    for render in (tmp_path / "s.mp4", tmp_path / "skel" / "s_%03d.png"):
        assert main(["-q", "pose", "extract", str(data_dir / "dance_short.mp4"), "-o", str(tmp_path / "p.json"),
                     "--render", str(render), "--openpose", str(tmp_path / "op")]) == 2
        assert "disk full" in _error(capsys)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]  # no pose file, video, frames or folder


def test_retarget_scales_a_reference_pose_of_another_size(dance_short_poses, tmp_path, caplog):
    """--reference-pose of a 360x640 image with a 400x700 reference: fitted to the image, with a warning."""
    import numpy as np

    from pose.io import save_pose_frame, save_sequence

    seq_path = save_sequence(dance_short_poses.slice(0, 3), tmp_path / "seq.json")
    ref_pose = save_pose_frame(dance_short_poses[0], tmp_path / "ref_pose.json")
    image = tmp_path / "ref.png"
    cv2.imwrite(str(image), np.full((700, 400, 3), 200, np.uint8))
    out = tmp_path / "fit.json"
    with caplog.at_level("WARNING"):
        assert main(["-q", "pose", "retarget", str(seq_path), "--reference", str(image), "--reference-pose",
                     str(ref_pose), "-o", str(out)]) == 0
    fitted = load_sequence(out)
    assert (fitted.width, fitted.height) == (400, 700)
    assert "is for a 360x640 image but the reference" in caplog.text and "400x700" in caplog.text
    # the body the poses are fitted to is the reference pose scaled into the image (as `animate` does)
    from pose.io import load_pose_frame
    from pose.retarget import retarget

    expected = retarget(load_sequence(seq_path), load_pose_frame(ref_pose).resized(400, 700))
    np.testing.assert_allclose(fitted.keypoints, expected.keypoints, atol=1e-3)


def test_output_that_is_an_input_is_refused_even_with_overwrite(dance_short_poses, data_dir, tmp_path, monkeypatch,
                                                                 capsys):
    from pose.io import save_sequence
    from pose.openpose_json import save_openpose

    _no_detection(monkeypatch)
    seq_path = save_sequence(dance_short_poses.slice(0, 3), tmp_path / "dance.json")
    before = seq_path.read_bytes()
    (tmp_path / "link.json").symlink_to(seq_path)
    ref = str(data_dir / "ref" / "musepose_ref.png")
    runs = [
        ["retarget", str(seq_path), "--reference", ref, "-o", str(seq_path)],
        ["retarget", str(tmp_path / "link.json"), "--reference", ref, "-o", str(tmp_path / "sub" / ".." / "dance.json")],
        ["retarget", str(tmp_path / "other.json"), "--reference", ref, "--reference-pose", str(seq_path),
         "-o", str(seq_path)],
        ["render", str(seq_path), "-o", str(seq_path)],
    ]
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):
        cv2.imwrite(str(frames / f"{i:05d}.png"), cv2.imread(ref))
    runs += [["extract", str(frames), "-o", str(tmp_path / "p.json"), "--render", str(frames / "%05d.png")],
             ["extract", str(frames), "-o", str(tmp_path / "p.json"), "--openpose", str(frames)]]
    op = tmp_path / "op"
    save_openpose(dance_short_poses.slice(0, 2), op, "d")
    runs.append(["retarget", str(op), "--reference", ref, "-o", str(op / "fitted.json")])
    for cmd in runs:
        assert main(["pose", *cmd, "--overwrite"]) == 2, cmd
        assert "input" in _error(capsys)
    assert seq_path.read_bytes() == before
    assert sorted(p.name for p in frames.iterdir()) == ["00000.png", "00001.png"]
    assert len(list(op.iterdir())) == 2 and not (tmp_path / "p.json").exists()


def test_render_keeps_to_the_output_limits(dance_short_poses, tmp_path, capsys):
    """A pose file may state a canvas up to 65536 px and 1000 fps; ``pose render`` wrote what it was given (a
    60000-px canvas asked for 10 GiB and crashed with a traceback). The canvas is now drawn shrunk to 4096 px,
    a rate above 240 fps and a --size above 4096 px are refused."""
    from pose.io import save_sequence
    from pose.sequence import PoseSequence

    seq = dance_short_poses.slice(0, 2)
    scale = 60000 / seq.height
    huge = PoseSequence(seq.keypoints * [scale, scale, 1], round(seq.width * scale), 60000, seq.fps, seq.status)
    assert main(["-q", "pose", "render", str(save_sequence(huge, tmp_path / "huge.json")), "-o",
                 str(tmp_path / "huge.mp4")]) == 0
    frames, (w, h) = _frames(tmp_path / "huge.mp4")
    assert frames == 2 and h == 4096 and abs(w - 4096 * seq.width / seq.height) <= 2
    fast = PoseSequence(seq.keypoints, seq.width, seq.height, 1000.0, seq.status)
    assert main(["pose", "render", str(save_sequence(fast, tmp_path / "fast.json")), "-o",
                 str(tmp_path / "fast.mp4")]) == 2
    assert "fast.json runs at 1000 fps, above the 240 fps" in _error(capsys)
    with pytest.raises(SystemExit) as exc:
        main(["pose", "render", str(tmp_path / "huge.json"), "-o", str(tmp_path / "big.mp4"), "--size", "10000x10000"])
    assert exc.value.code == 2 and "at most 4096 px" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fast.json", "huge.json", "huge.mp4"]


def test_ctrl_c_just_after_an_output_is_in_place_takes_it_away(dance_short_poses, data_dir, tmp_path, monkeypatch,
                                                                capsys):
    """A QA pass's SIGINT landing after the skeleton video was moved into place, before it was listed as
    written, left it behind while the CLI said no partial output was kept. Other files stay."""
    from animate import cli_pose
    import pose.extract

    monkeypatch.setattr(pose.extract, "extract_poses", lambda *a, **k: dance_short_poses.slice(0, 3))
    real = cli_pose.write_skeleton_video

    def interrupted_after(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_pose, "write_skeleton_video", interrupted_after)
    keep = tmp_path / "skel" / "notes.txt"  # not this run's output
    keep.parent.mkdir()
    keep.write_bytes(b"x")
    for render in (tmp_path / "s.mp4", tmp_path / "skel" / "s_%03d.png"):
        assert main(["-q", "pose", "extract", str(data_dir / "dance_short.mp4"), "-o", str(tmp_path / "p.json"),
                     "--render", str(render)]) == 130
        assert sorted(p.name for p in tmp_path.iterdir()) == ["skel"] and os.listdir(tmp_path / "skel") == ["notes.txt"]


def test_messages_name_the_pose_file(dance_short_poses, data_dir, tmp_path, capsys):
    """A 1x1 canvas said "frame size ... must be positive, got 0x0"; poses without a body did not name their
    file; a window given with --window was shown as "a small person"."""
    from pose.io import save_sequence
    from pose.sequence import PoseSequence

    seq = dance_short_poses.slice(0, 2)
    tiny = PoseSequence(seq.keypoints * [1 / seq.width, 1 / seq.height, 1], 1, 1, seq.fps, seq.status)
    assert main(["pose", "render", str(save_sequence(tiny, tmp_path / "tiny.json")), "-o",
                 str(tmp_path / "t.mp4")]) == 2
    assert "tiny.json has a 1x1 canvas, too small for a video; pass --size" in _error(capsys)
    empty = seq.copy()
    empty.keypoints[:, :, 2] = 0.0
    path = save_sequence(empty, tmp_path / "nobody.json")
    assert main(["pose", "retarget", str(path), "--reference", str(data_dir / "ref" / "musepose_ref.png"), "-o",
                 str(tmp_path / "o.json")]) == 2
    assert f"{path}: the driving pose sequence has no frame with a visible body" in _error(capsys)
    windowed = seq.copy()
    windowed.meta.update(detector_options={"crop": [0.5, 0, 1, 1]}, person_search=False)
    assert main(["pose", "show", str(save_sequence(windowed, tmp_path / "w.json"))]) == 0
    assert "x 0.50-1.00, y 0.00-1.00 of the frame (given with --window, detected inside it)" in capsys.readouterr().out
