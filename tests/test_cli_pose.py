"""`posedrive pose ...` end to end on real data, plus its one-line errors and exit codes."""

from __future__ import annotations

import json

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
