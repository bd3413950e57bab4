"""Numbered PNG frames as an output (pose/image_sequence.py): lossless, alpha kept, atomic."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from animate.writers import write_video
from pose.errors import OutputError
from pose.image_sequence import (
    ImageSequenceWriter,
    check_sequence_output,
    frame_path,
    is_image_sequence,
    sequence_frames,
)


def _frames(n: int, channels: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (24, 32, channels), dtype=np.uint8) for _ in range(n)]


def test_names():
    assert is_image_sequence("shots/dance_%05d.png") and is_image_sequence("f%d.PNG")
    assert not is_image_sequence("dance.png") and not is_image_sequence("dance_%05d.mp4")
    assert frame_path("shots/dance_%05d.png", 7).as_posix() == "shots/dance_00007.png"
    for bad in ("a_%d_%d.png", "a_%d%%.png", "a%s_%d.png"):
        with pytest.raises(OutputError, match="frame-number field"):
            check_sequence_output(bad)


def test_rgb_and_rgba_frames_are_written_losslessly(tmp_path):
    frames = _frames(3)
    assert write_video(frames, tmp_path / "rgb" / "f_%03d.png", 24.0) == tmp_path / "rgb" / "f_%03d.png"
    back = [cv2.cvtColor(cv2.imread(str(tmp_path / "rgb" / f"f_{i:03d}.png")), cv2.COLOR_BGR2RGB) for i in range(3)]
    assert all((a == b).all() for a, b in zip(frames, back))
    clear = _frames(2, 4)
    write_video(clear, tmp_path / "rgba_%d.png", 24.0)
    png = cv2.imread(str(tmp_path / "rgba_1.png"), cv2.IMREAD_UNCHANGED)
    assert (cv2.cvtColor(png, cv2.COLOR_BGRA2RGBA) == clear[1]).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rgb", "rgba_0.png", "rgba_1.png"]  # no temp folder


def test_existing_sequence_needs_overwrite_and_a_failure_leaves_nothing(tmp_path):
    write_video(_frames(2), tmp_path / "f_%02d.png", 24.0)
    with pytest.raises(OutputError, match="already exists"):
        write_video(_frames(2), tmp_path / "f_%02d.png", 24.0)

    def broken():
        yield from _frames(2)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_video(broken(), tmp_path / "g_%02d.png", 24.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f_00.png", "f_01.png"]  # nothing of g, no temp folder
    with pytest.raises(OutputError, match="opened for"), ImageSequenceWriter(tmp_path / "h_%d.png", 24.0, (32, 24)) as w:
        w.write(np.zeros((24, 32, 4), np.uint8))  # RGBA into an RGB sequence
    assert not list(tmp_path.glob("h_*")) and not list(tmp_path.glob(".*"))


def test_overwriting_a_longer_sequence_leaves_none_of_its_frames(tmp_path):
    write_video(_frames(5), tmp_path / "f_%02d.png", 24.0)
    (tmp_path / "f_07.png").write_bytes(b"not part of the run")  # after a gap: not this sequence's frame
    short = _frames(2)[::-1]
    write_video(short, tmp_path / "f_%02d.png", 24.0, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f_00.png", "f_01.png", "f_07.png"]
    back = cv2.cvtColor(cv2.imread(str(tmp_path / "f_01.png")), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(back, short[1])


def test_cli_animate_to_transparent_png_frames(tmp_path, data_dir):
    from animate.cli import main

    pattern = tmp_path / "shots" / "dance_%05d.png"
    assert main(["animate", str(data_dir / "ref" / "anyone-2.png"), str(data_dir / "dance_short.mp4"),
                 "-o", str(pattern), "--size", "96x128", "--end", "3", "--background", "transparent"]) == 0
    names = sorted(p.name for p in (tmp_path / "shots").iterdir())
    assert names == ["dance_00000.png", "dance_00001.png", "dance_00002.png"]
    png = cv2.imread(str(tmp_path / "shots" / names[0]), cv2.IMREAD_UNCHANGED)
    assert png.shape == (128, 96, 4) and (png[..., 3] == 0).mean() > 0.4 and (png[..., 3] == 255).any()


def test_any_frame_of_an_earlier_sequence_is_refused_up_front(tmp_path):
    (tmp_path / "f_003.png").write_bytes(b"x")  # not frame 0, and the run will write fewer frames
    with pytest.raises(OutputError, match=r"f_003.png already exists \(1 frame"):
        check_sequence_output(tmp_path / "f_%03d.png")
    (tmp_path / "f_1000.png").write_bytes(b"x")  # past the padding width
    (tmp_path / "f_03.png").write_bytes(b"x")    # not this pattern's name (too short)
    assert [p.name for p in sequence_frames(tmp_path / "f_%03d.png")] == ["f_003.png", "f_1000.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f_003.png", "f_03.png", "f_1000.png"]


def test_a_frame_appearing_while_rendering_leaves_none_of_the_new_ones(tmp_path):
    writer = ImageSequenceWriter(tmp_path / "g_%02d.png", 24.0, (32, 24))
    for frame in _frames(3):
        writer.write(frame)
    (tmp_path / "g_01.png").write_bytes(b"someone else's")
    with pytest.raises(OutputError, match="appeared while rendering"):
        writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g_01.png"]
    assert (tmp_path / "g_01.png").read_bytes() == b"someone else's"
