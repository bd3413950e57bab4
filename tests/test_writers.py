"""animate.writers: streamed atomic writing, audio kept and trimmed, nothing partial left behind."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from animate.writers import check_output_path, ffmpeg_exe, has_audio, write_video
from pose.errors import InputError, OutputError

FPS = 10
SIZE = (64, 48)  # width, height


def _frames(n: int, start: int = 0):
    for i in range(start, start + n):
        frame = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
        frame[:, : 4 + 4 * (i % 12)] = (200, 40, 40)  # a growing red bar: frames differ
        yield frame


def _decode_video(path: Path) -> np.ndarray:
    from pose.video import open_video

    with open_video(path) as video:
        return np.stack(list(video))


def _decode_audio(path: Path, rate: int = 8000) -> np.ndarray:
    res = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-vn", "-ac", "1", "-ar", str(rate), "-f", "s16le", "-"],
        capture_output=True, check=True,
    )
    return np.frombuffer(res.stdout, dtype=np.int16).astype(np.float32)


def _dominant_hz(samples: np.ndarray, rate: int = 8000) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1.0 / rate)[np.argmax(spectrum)])


@pytest.fixture(scope="module")
def clip_with_audio(tmp_path_factory) -> Path:
    """2 s test video at 10 fps whose audio is 440 Hz for the first second and 880 Hz for the second."""
    path = tmp_path_factory.mktemp("media") / "src.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc=size={SIZE[0]}x{SIZE[1]}:rate={FPS}:duration=2",
         "-f", "lavfi", "-i", "aevalsrc=sin(2*PI*if(lt(t\\,1)\\,440\\,880)*t):s=44100:d=2",
         "-shortest", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(path)],
        check=True, capture_output=True,
    )
    return path


def test_write_silent_video_roundtrip(tmp_path):
    out = write_video(_frames(7), tmp_path / "a.mp4", FPS)
    frames = _decode_video(out)
    assert frames.shape == (7, SIZE[1], SIZE[0], 3)
    expected = np.stack(list(_frames(7)))
    assert np.abs(frames.astype(int) - expected).mean() < 4  # lossy codec, but the same pictures
    assert not has_audio(out)
    assert sorted(os.listdir(tmp_path)) == ["a.mp4"]  # no temp files left


def test_audio_kept_and_trimmed_to_range(tmp_path, clip_with_audio):
    assert has_audio(clip_with_audio)
    # frames 10..17 of the driving clip: the audio must start at 1.0 s (880 Hz) and last 0.8 s.
    out = write_video(_frames(8), tmp_path / "b.mp4", FPS, audio_from=clip_with_audio, audio_start=1.0)
    assert has_audio(out)
    audio = _decode_audio(out)
    assert 0.7 * 8000 < len(audio) < 0.95 * 8000
    assert abs(_dominant_hz(audio[400:]) - 880) < 20
    # from the start of the clip: 440 Hz
    out2 = write_video(_frames(8), tmp_path / "c.mp4", FPS, audio_from=clip_with_audio)
    assert abs(_dominant_hz(_decode_audio(out2)[400:]) - 440) < 20
    assert len(_decode_video(out2)) == 8
    assert sorted(os.listdir(tmp_path)) == ["b.mp4", "c.mp4"]


def test_the_default_audio_track_is_kept(tmp_path, clip_with_audio):
    """A video with a guide tone first and the music second, marked default: the first track was kept."""
    two = tmp_path / "two.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(clip_with_audio), "-f", "lavfi", "-i",
                    "sine=frequency=1000:duration=2", "-map", "0:v", "-map", "1:a", "-map", "0:a", "-c:v", "copy",
                    "-c:a", "aac", "-disposition:a:0", "0", "-disposition:a:1", "default", str(two)], check=True)
    out = write_video(_frames(8), tmp_path / "o.mp4", FPS, audio_from=two)
    assert abs(_dominant_hz(_decode_audio(out)[400:]) - 440) < 20  # the music (440 Hz first), not the 1 kHz tone
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(two), "-map", "0", "-c", "copy", "-disposition:a", "0",
                    str(tmp_path / "none.mp4")], check=True)
    out = write_video(_frames(8), tmp_path / "p.mp4", FPS, audio_from=tmp_path / "none.mp4")
    assert abs(_dominant_hz(_decode_audio(out)[400:]) - 1000) < 20  # none marked: the first


def _audio_packets(path: Path) -> int:
    res = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:a:0", "-c", "copy", "-f",
                          "framecrc", "-"], capture_output=True, text=True, check=False)
    return sum(line.startswith("0,") for line in res.stdout.splitlines())


def test_audio_shorter_than_the_video_keeps_every_frame(tmp_path, clip_with_audio):
    """The audio was muxed with -shortest: where the driving's audio ended before the rendered frames did (a
    clip whose sound stops early, or starts 1.5 s in here), the copied video was cut there with it, and the
    run still reported every frame. An .avi got an audio stream without any audio in it."""
    out = write_video(_frames(12), tmp_path / "s.mp4", FPS, audio_from=clip_with_audio, audio_start=1.5)
    assert len(_decode_video(out)) == 12  # 0.5 s of audio for 1.2 s of frames: 5 frames before
    assert 0.3 * 8000 < len(_decode_audio(out)) < 0.7 * 8000
    avi = write_video(_frames(8), tmp_path / "s.avi", FPS, audio_from=clip_with_audio)
    assert len(_decode_video(avi)) == 8 and _audio_packets(avi) > 10 and len(_decode_audio(avi)) > 0.7 * 8000


def test_driving_without_audio_gives_silent_video(tmp_path, data_dir):
    out = write_video(_frames(3), tmp_path / "d.mp4", FPS, audio_from=data_dir / "dance_short.mp4")
    assert not has_audio(out) and len(_decode_video(out)) == 3


def test_existing_output_needs_overwrite(tmp_path):
    path = tmp_path / "e.mp4"
    path.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="already exists.*--overwrite"):
        write_video(_frames(2), path, FPS)
    assert path.read_bytes() == b"keep me"
    write_video(_frames(2), path, FPS, overwrite=True)
    assert len(_decode_video(path)) == 2
    link = tmp_path / "link.mp4"  # a link to a file not there yet (a mount to come): replaced only when asked
    link.symlink_to(tmp_path / "elsewhere.mp4")
    with pytest.raises(OutputError, match="link.mp4 already exists"):
        write_video(_frames(2), link, FPS)
    assert link.is_symlink()


def test_unwritable_output(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot create folder"):
        write_video(_frames(2), blocker / "sub" / "o.mp4", FPS)
    with pytest.raises(OutputError, match="is a folder"):
        check_output_path(tmp_path)
    if os.geteuid() != 0:  # root ignores permissions
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            with pytest.raises(OutputError, match="not writable"):
                write_video(_frames(2), ro / "o.mp4", FPS)
        finally:
            ro.chmod(0o700)
    # the same refusal as root would get it (root ignores the bits above): the folder's probe file is denied
    import errno
    import tempfile

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(OutputError, match="folder .* is not writable"):
        check_output_path(tmp_path / "o.mp4")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_folder_that_takes_no_files_fails_before_rendering(tmp_path):
    """/proc passes the permission check (for root too) but takes no new file: found by check_output_path,
    before any frame is rendered, not when the writer opens its temp file."""
    with pytest.raises(OutputError, match="cannot write /proc/o.mp4: folder /proc does not take new files"):
        check_output_path("/proc/o.mp4")
    check_output_path(tmp_path / "o.mp4")
    assert list(tmp_path.iterdir()) == []  # the probe file is gone
    # a name the file system takes, but not with the temp file's additions: refused now, not at the end
    with pytest.raises(OutputError, match="name is too long.*shorter file name"):
        check_output_path(tmp_path / ("x" * 250 + ".mp4"))


def test_missing_folder_is_created(tmp_path):
    out = write_video(_frames(2), tmp_path / "new" / "deeper" / "f.mp4", FPS)
    assert out.is_file()


def test_interrupt_mid_stream_leaves_nothing(tmp_path, clip_with_audio):
    def frames():
        yield from _frames(3)
        raise KeyboardInterrupt

    for kwargs in ({}, {"audio_from": clip_with_audio}):
        with pytest.raises(KeyboardInterrupt):
            write_video(frames(), tmp_path / "g.mp4", FPS, **kwargs)
        assert os.listdir(tmp_path) == []


def test_existing_file_survives_failed_overwrite(tmp_path):
    path = tmp_path / "h.mp4"
    write_video(_frames(4), path, FPS)
    before = path.read_bytes()

    def frames():
        yield from _frames(2)
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError):
        write_video(frames(), path, FPS, overwrite=True)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["h.mp4"]


def test_bad_frames(tmp_path):
    with pytest.raises(InputError, match="no frames"):
        write_video(iter(()), tmp_path / "i.mp4", FPS)
    with pytest.raises(InputError, match="uint8 RGB"):
        write_video([np.zeros((8, 8), np.uint8)], tmp_path / "i.mp4", FPS)
    bad = [np.zeros((8, 8, 3), np.uint8), np.zeros((10, 8, 3), np.uint8)]
    with pytest.raises(InputError, match="every frame must be"):
        write_video(bad, tmp_path / "i.mp4", FPS)
    with pytest.raises(InputError, match="fps"):
        write_video(_frames(1), tmp_path / "i.mp4", 0)
    assert os.listdir(tmp_path) == []


def _codecs(path: Path) -> list[str]:
    """``video:<codec>`` / ``audio:<codec>`` of each stream of ``path`` (from ffmpeg's header)."""
    import re

    res = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True, check=False)
    return [f"{kind.lower()}:{codec}" for kind, codec in re.findall(r"Stream #\S+: (Video|Audio): (\w+)", res.stderr)]


@pytest.mark.parametrize("suffix, streams, max_mse", [
    (".webm", ["video:vp9", "audio:opus"], 65.0),  # 30 dB PSNR
    (".mkv", ["video:h264", "audio:aac"], 65.0),
    (".gif", ["video:gif"], 200.0),  # no audio in a GIF: left out, not an error
])
def test_other_containers(tmp_path, clip_with_audio, suffix, streams, max_mse):
    out = write_video(_frames(12), tmp_path / f"e{suffix}", FPS, audio_from=clip_with_audio)
    assert _codecs(out) == streams
    frames = _decode_video(out)[:12]
    expected = np.stack(list(_frames(12)))
    assert len(frames) == 12 and np.mean((frames.astype(float) - expected) ** 2) < max_mse
    assert sorted(os.listdir(tmp_path)) == [f"e{suffix}"]  # no temp file, no GIF palette left


def test_unknown_container_fails_before_anything_is_written(tmp_path):
    for name in ("frames.png", "clip.flv"):
        with pytest.raises(OutputError, match=r"unknown format.*\.mp4.*\.webm.*\.gif"):
            check_output_path(tmp_path / name)
        with pytest.raises(OutputError, match="unknown format"):
            write_video(_frames(2), tmp_path / name, FPS)
    assert os.listdir(tmp_path) == []
    assert check_output_path(tmp_path / "report.json", video=False).name == "report.json"


def test_gif_interrupted_leaves_nothing(tmp_path):
    def frames():
        yield from _frames(3)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_video(frames(), tmp_path / "h.gif", FPS)
    assert os.listdir(tmp_path) == []


def test_refuse_overwriting_inputs_same_file_links_and_folders(tmp_path, monkeypatch):
    """An output that is one of the inputs is refused, whatever overwrite says: same path written another
    way, a symbolic or a hard link to it, a frame of a numbered-PNG output, or a file in an input folder."""
    from animate.writers import refuse_overwriting_inputs, same_file

    drv = tmp_path / "drv.mp4"
    drv.write_bytes(b"video")
    (tmp_path / "link.mp4").symlink_to(drv)
    os.link(drv, tmp_path / "hard.mp4")
    monkeypatch.chdir(tmp_path)
    for out in (drv, "drv.mp4", "./sub/../drv.mp4", tmp_path / "link.mp4", tmp_path / "hard.mp4"):
        with pytest.raises(OutputError, match=r"is the input .*drv.mp4.*choose another output"):
            refuse_overwriting_inputs(out, np.zeros((2, 2, 3), np.uint8), None, drv)
    assert same_file("drv.mp4", tmp_path / "hard.mp4") and not same_file(drv, tmp_path / "new.mp4")
    refuse_overwriting_inputs(tmp_path / "new.mp4", drv, None, np.zeros(3))  # another file: fine
    with pytest.raises(OutputError, match="--stats file s.json is the input"):
        refuse_overwriting_inputs("s.json", "s.json", name="--stats file")
    (tmp_path / "ref_00003.png").write_bytes(b"png")  # a frame of the pattern: replaced or removed
    with pytest.raises(OutputError, match="is the input ref_00003.png"):
        refuse_overwriting_inputs(tmp_path / "ref_%05d.png", "ref_00003.png")
    frames = tmp_path / "frames"
    frames.mkdir()
    with pytest.raises(OutputError, match="into the input folder"):
        refuse_overwriting_inputs(frames / "out_%05d.png", frames)
    refuse_overwriting_inputs(tmp_path / "out.mp4", frames)
    assert drv.read_bytes() == b"video"
