"""The puppet drawn over a plain colour or a picture instead of its own background (animate/puppet/backdrop.py,
``posedrive animate --background``)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from animate.puppet.backdrop import COLOURS, PLATE, backdrop_image, parse_backdrop
from animate.renderer import create_renderer
from pose.errors import ConfigError
from pose.sequence import PoseSequence


def test_backdrop_values(data_dir):
    assert parse_backdrop(None) == PLATE and parse_backdrop("plate") == PLATE
    assert parse_backdrop("Green") == COLOURS["green"] and parse_backdrop("#FF8000") == (255, 128, 0)
    assert parse_backdrop("00ff00") == (0, 255, 0) and parse_backdrop([1, 2, 3]) == (1, 2, 3)
    assert parse_backdrop(str(data_dir / "dance_000.jpg")) == data_dir / "dance_000.jpg"
    for bad in ("nosuch.png", "#12345", [0, 0, 256], [0, 0], 7, [True, 0, 0]):
        with pytest.raises(ConfigError, match="background"):
            parse_backdrop(bad)
    with pytest.raises(ConfigError, match="nosuch.png"):
        create_renderer("puppet", background="nosuch.png")


def test_picture_covers_the_canvas(data_dir):
    picture = data_dir / "dance_000.jpg"  # 540x960 portrait
    wide = backdrop_image(parse_backdrop(str(picture)), (400, 100))
    assert wide.shape == (100, 400, 3) and wide.dtype == np.uint8
    plain = backdrop_image((10, 20, 30), (8, 6))
    assert plain.shape == (6, 8, 3) and (plain == (10, 20, 30)).all()
    assert backdrop_image(PLATE, (8, 6)) is None


@pytest.fixture(scope="module")
def character(data_dir):
    from pose.extract import detect_image

    rgb = cv2.cvtColor(cv2.resize(cv2.imread(str(data_dir / "ref" / "anyone-2.png")), (240, 320),
                                  interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    return rgb, detect_image(rgb)


def _first_frame(character, **options):
    """The puppet of ``character`` prepared with ``options`` and its render of the reference pose."""
    rgb, pose = character
    renderer = create_renderer("puppet", **options)
    renderer.prepare(rgb, pose)
    return renderer, next(iter(renderer.render(PoseSequence.from_frames([pose], fps=24.0))))


@pytest.fixture(scope="module")
def on_plate(character):
    """The default render, and the pixels well inside and well outside the character's cut-out."""
    plate, frame = _first_frame(character)
    inside = cv2.erode((plate.alpha > 0.99).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    outside = cv2.dilate((plate.alpha > 0.01).astype(np.uint8), np.ones((15, 15), np.uint8)) == 0
    assert plate.channels == 3 and inside.sum() > 2000 and outside.sum() > 20000
    return frame, inside, outside


def test_green_screen_keeps_the_character_and_nothing_of_its_background(character, on_plate):
    rgb, _ = character
    plate_frame, inside, outside = on_plate
    _, on_green = _first_frame(character, background="green")
    assert (np.abs(on_green[inside].astype(int) - plate_frame[inside]).max(axis=1) <= 2).mean() > 0.99
    assert (on_green[outside] == COLOURS["green"]).all()  # the reference's wall is gone
    # the silhouette's soft edge mixes the character's colours with the green, not with the old wall
    edge = ~inside & ~outside
    wall = np.median(rgb[outside], axis=0)
    assert np.abs(on_green[edge].astype(float) - wall).max(axis=1).mean() > 40


def test_cli_background_picture_and_errors(tmp_path, data_dir, capsys):
    from animate.cli import main

    out = tmp_path / "on_picture.mp4"
    ref = str(data_dir / "ref" / "anyone-2.png")
    driving = str(data_dir / "dance_short.mp4")
    assert main(["animate", ref, driving, "-o", str(out), "--size", "192x256", "--end", "4",
                 "--background", str(data_dir / "dance_100.jpg")]) == 0
    assert out.exists()
    assert main(["animate", ref, driving, "-o", str(tmp_path / "x.mp4"), "--background", "nosuch.png"]) == 2
    assert "nosuch.png" in capsys.readouterr().err
    assert main(["animate", ref, driving, "-o", str(tmp_path / "y.mp4"), "--background", "green",
                 "--renderer", "diffusion"]) == 2
    assert "works with the puppet renderer" in capsys.readouterr().err
    assert not (tmp_path / "x.mp4").exists() and not (tmp_path / "y.mp4").exists()
    assert not [p for p in Path(tmp_path).iterdir() if p.name.startswith(".")]


def _decode_rgba(path: Path, size: tuple[int, int]) -> np.ndarray:
    """All frames of ``path`` as ``(T, H, W, 4)`` RGBA, alpha included (VP9 needs libvpx to decode it)."""
    import subprocess

    from pose.video import ffmpeg_exe

    decoder = ["-c:v", "libvpx-vp9"] if path.suffix == ".webm" else []
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", *decoder, "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgba",
                          "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, size[1], size[0], 4)


def test_transparent_frames_keep_the_character_and_its_alpha(character, on_plate):
    plate_frame, inside, outside = on_plate
    clear, rgba = _first_frame(character, background="transparent")
    assert clear.channels == 4
    assert rgba.shape == plate_frame.shape[:2] + (4,) and rgba.dtype == np.uint8
    # opaque on her (a few pixels where two layers' soft edges meet keep at least 95 %), clear around her
    assert (rgba[inside, 3] == 255).mean() > 0.95 and rgba[inside, 3].min() >= 0.95 * 255
    assert (rgba[outside, 3] == 0).all()
    assert (np.abs(rgba[inside, :3].astype(int) - plate_frame[inside]).max(axis=1) <= 2).mean() > 0.99
    # straight alpha: a half-covered edge pixel keeps the character's colour, not one darkened towards black
    edge = (rgba[..., 3] > 40) & (rgba[..., 3] < 215)
    assert edge.sum() > 50
    assert rgba[edge, :3].astype(float).mean() > 0.6 * rgba[inside, :3].astype(float).mean()


def test_transparent_video_has_an_alpha_channel(tmp_path, data_dir):
    from animate.cli import main

    ref = str(data_dir / "ref" / "anyone-2.png")
    driving = str(data_dir / "dance_short.mp4")
    for suffix in (".webm", ".mov"):
        out = tmp_path / f"clear{suffix}"
        assert main(["animate", ref, driving, "-o", str(out), "--size", "192x256", "--end", "3",
                     "--background", "transparent"]) == 0
        frames = _decode_rgba(out, (192, 256))
        assert len(frames) == 3
        alpha = frames[..., 3]
        assert (alpha == 0).mean() > 0.4 and (alpha == 255).mean() > 0.05, suffix  # clear around, opaque on her
    # H.264 has no alpha: refused before any pose work, nothing written
    assert main(["animate", ref, driving, "-o", str(tmp_path / "clear.mp4"), "--background", "transparent"]) == 2
    assert not (tmp_path / "clear.mp4").exists()


def test_api_default_output_of_a_transparent_render_is_webm(tmp_path, data_dir):
    from animate.api import Animator

    with Animator(renderer__options__background="transparent", output__dir=str(tmp_path)) as animator:
        path = animator.animate(data_dir / "ref" / "anyone-2.png", data_dir / "dance_short.mp4", end=2,
                                size=(128, 192), progress=False)
        frames = list(animator.stream(data_dir / "ref" / "anyone-2.png", data_dir / "dance_short.mp4", end=2,
                                      size=(128, 192), progress=False))
    assert path.suffix == ".webm" and path.exists()
    assert frames[0].shape == (192, 128, 4)


def test_background_picture_in_a_yaml_is_found_beside_it(tmp_path, data_dir):
    import shutil

    from animate.config import load_config

    shutil.copy(data_dir / "dance_000.jpg", tmp_path / "stage.jpg")
    yaml = tmp_path / "job.yaml"
    yaml.write_text("renderer:\n  options: {background: stage.jpg}\n")
    options = load_config(yaml).renderer_options()
    assert options["background"] == str(tmp_path / "stage.jpg")
    create_renderer("puppet", **options)  # valid: the picture exists
