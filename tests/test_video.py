"""pose.video: streamed reading of real clips and frame folders, image conversion, atomic writing."""

from __future__ import annotations

import logging
import subprocess

import cv2
import numpy as np
import pytest

from pose.errors import InputError, OutputError, VideoError
from pose.video import (
    VideoWriter,
    ffmpeg_exe,
    first_frame,
    fit_size,
    index_packets,
    natural_key,
    open_video,
    read_image,
    to_rgb,
)


# ---------------------------------------------------------------------------------------------- reading
def test_dance_short_streams_24_frames(data_dir):
    with open_video(data_dir / "dance_short.mp4") as src:
        assert src.fps == pytest.approx(24.0)
        assert (src.width, src.height) == (360, 640)
        assert src.frame_count == 24
        it = iter(src)
        first = next(it)
        assert src.frames_read == 1  # streamed: one frame decoded and handed over at a time
        assert first.shape == (640, 360, 3) and first.dtype == np.uint8
        rest = sum(1 for _ in it)
    assert rest == 23
    assert 20 < first.mean() < 240  # a real picture, not a blank buffer


def test_downscale_in_decoder_keeps_source_size(data_dir):
    with open_video(data_dir / "dance_short.mp4", max_size=320, end=2) as src:
        frames = list(src)
    assert (src.width, src.height) == (180, 320)
    assert (src.source_width, src.source_height) == (360, 640)
    assert src.scale == pytest.approx((2.0, 2.0))
    assert len(frames) == 2 and frames[0].shape == (320, 180, 3)


def test_seek_is_frame_exact(data_dir):
    with open_video(data_dir / "dance_short.mp4") as src:
        all_frames = [f.copy() for f in src]
    with open_video(data_dir / "dance_short.mp4", start=13, end=16) as src:
        part = [f.copy() for f in src]
    assert len(part) == 3
    for got, want in zip(part, all_frames[13:16]):
        assert np.array_equal(got, want)
    # and frame 12 differs from 13 (the check above could not pass by accident)
    assert np.abs(all_frames[12].astype(int) - all_frames[13].astype(int)).mean() > 0.5


def test_frame_folder_natural_order_and_fps(tmp_path):
    for i, name in enumerate(["f10.png", "f2.png", "f1.png"]):
        img = np.full((8, 6, 3), [10, 20, 30 + int(name[1:-4])], np.uint8)
        cv2.imwrite(str(tmp_path / name), img[:, :, ::-1])
    (tmp_path / "notes.txt").write_text("ignored")
    with open_video(tmp_path) as src:
        blue = [int(f[0, 0, 2]) for f in src]
        assert src.fps == 24.0 and src.frame_count == 3
    assert blue == [31, 32, 40]
    with open_video(tmp_path, fps=12.5) as src:
        assert src.fps == 12.5
    assert sorted(["a10", "a9", "a100"], key=natural_key) == ["a9", "a10", "a100"]


def test_folder_with_mixed_sizes_names_the_frame(tmp_path):
    cv2.imwrite(str(tmp_path / "0.png"), np.zeros((8, 6, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "1.png"), np.zeros((9, 6, 3), np.uint8))
    with open_video(tmp_path) as src, pytest.raises(VideoError, match="1.png"):
        list(src)


def test_missing_video(tmp_path):
    with pytest.raises(VideoError, match="missing.mp4.*does not exist"):
        open_video(tmp_path / "missing.mp4")


def test_corrupt_video(tmp_path):
    bad = tmp_path / "garbage.mp4"
    bad.write_bytes(b"\x00\x01 not a video at all " * 200)
    with pytest.raises(VideoError, match="garbage.mp4") as info:
        open_video(bad)
    assert "\n" not in str(info.value)


def test_empty_file_and_empty_folder(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoError, match="empty.mp4"):
        open_video(empty)
    folder = tmp_path / "frames"
    folder.mkdir()
    with pytest.raises(VideoError, match="frames.*no images"):
        open_video(folder)


def test_truncated_without_index_is_an_error(data_dir, tmp_path):
    # dance_short.mp4 keeps its index (moov) at the end: half a file cannot be opened at all
    data = (data_dir / "dance_short.mp4").read_bytes()
    cut = tmp_path / "half.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match="half.mp4"), open_video(cut) as src:
        list(src)


def test_truncated_stream_warns_and_keeps_frames(data_dir, tmp_path, caplog):
    # with the index first (faststart), a cut file opens and decoding stops early
    fast = tmp_path / "fast.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(data_dir / "dance_short.mp4"), "-c", "copy",
                    "-movflags", "+faststart", str(fast)], check=True)
    data = fast.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING, logger="pose.video"), open_video(cut) as src:
        n = sum(1 for _ in src)
    assert 2 <= n < 24
    assert any("truncated" in r.getMessage() and "cut.mp4" in r.getMessage() for r in caplog.records)


def test_video_without_frames(tmp_path):
    audio = tmp_path / "audio_only.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "0.5",
                    "-c:a", "aac", str(audio)], check=True)
    with pytest.raises(VideoError, match="audio_only.mp4"), open_video(audio) as src:
        list(src)


def test_start_past_the_end(data_dir):
    with pytest.raises(VideoError, match="no decodable frame"):
        with open_video(data_dir / "dance_short.mp4", start=100) as src:
            list(src)


# ----------------------------------------------------------------------------------------------- images
def test_read_image_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200                 # red, fully transparent ...
    rgba[:2, :, 3] = 255               # ... except the top half, opaque
    rgba[2, :, 3] = 128                # half transparent row
    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    img = read_image(tmp_path / "a.png")
    assert img.shape == (4, 4, 3) and img.dtype == np.uint8
    assert tuple(img[0, 0]) == (200, 0, 0)
    assert tuple(img[3, 0]) == (255, 255, 255)
    assert abs(int(img[2, 0, 1]) - 127) <= 1  # 50 % white over black green channel
    assert tuple(read_image(tmp_path / "a.png", background=(0, 0, 0))[3, 0]) == (0, 0, 0)


def test_read_image_gray_and_16_bit(tmp_path):
    gray = np.arange(16, dtype=np.uint8).reshape(4, 4) * 16
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    img = read_image(tmp_path / "g.png")
    assert img.shape == (4, 4, 3) and np.array_equal(img[..., 0], gray) and np.array_equal(img[..., 2], gray)
    deep = np.zeros((2, 2, 3), np.uint16)
    deep[0, 0] = (65535, 32768, 0)  # RGB
    cv2.imwrite(str(tmp_path / "d.png"), deep[:, :, ::-1])
    img16 = read_image(tmp_path / "d.png")
    assert img16.dtype == np.uint8 and tuple(img16[0, 0]) == (255, 128, 0)


def test_read_image_errors(tmp_path):
    with pytest.raises(InputError, match="nope.png"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="bad.png.*cannot be decoded"):
        read_image(tmp_path / "bad.png")


def test_gif_images_are_read(tmp_path, data_dir):
    """OpenCV here decodes no GIF: a GIF reference was refused as "cannot be decoded". Its first frame is
    read with Pillow, the palette's transparent colour as alpha."""
    from PIL import Image

    from pose.video import decode_image

    rgb = cv2.cvtColor(cv2.imread(str(data_dir / "dance_000.jpg")), cv2.COLOR_BGR2RGB)[::8, ::8]
    frames = [Image.fromarray(rgb).quantize(256), Image.fromarray(255 - rgb).quantize(256)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    img = read_image(tmp_path / "a.gif")
    assert img.shape == rgb.shape and np.abs(img.astype(int) - rgb).mean() < 4  # the first frame, palette error
    cut = Image.new("P", (4, 2), 0)
    cut.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    cut.paste(1, (0, 0, 2, 2))  # left half red, right half the transparent colour 0
    cut.save(tmp_path / "cut.gif", transparency=0)
    rgba = decode_image(tmp_path / "cut.gif")
    assert rgba.shape == (2, 4, 4) and tuple(rgba[0, 0]) == (200, 10, 10, 255) and rgba[0, 3, 3] == 0


def test_to_rgb_arrays_and_pil():
    from PIL import Image

    assert to_rgb(np.ones((2, 3), np.float32)).tolist() == np.full((2, 3, 3), 255).tolist()
    assert to_rgb(np.zeros((2, 3, 1), bool)).shape == (2, 3, 3)
    pil = Image.new("LA", (3, 2), (100, 0))  # fully transparent gray -> white
    assert tuple(to_rgb(pil)[0, 0]) == (255, 255, 255)
    with pytest.raises(InputError, match="shape"):
        to_rgb(np.zeros((2, 3, 5), np.uint8))
    with pytest.raises(InputError):
        to_rgb("not an image")


def test_fit_size():
    assert fit_size(1080, 1920, 960) == (540, 960)
    assert fit_size(100, 50, 960) == (100, 50)
    assert fit_size(704, 1216, 960) == (556, 960)


# ---------------------------------------------------------------------------------------------- writing
def _frames(n, w=64, h=48):
    for i in range(n):
        f = np.zeros((h, w, 3), np.uint8)
        f[:, : (i + 1) * w // n] = (200, 60, 20)
        yield f


def test_writer_roundtrip(tmp_path):
    out = tmp_path / "out.mp4"
    finalized = []
    with VideoWriter(out, 12, (64, 48), on_finalize=lambda p: finalized.append(p.exists())) as w:
        for f in _frames(10):
            w.write(f)
    assert finalized == [True]
    with open_video(out) as src:
        frames = list(f.copy() for f in src)
        assert src.fps == pytest.approx(12.0)
    assert len(frames) == 10 and frames[0].shape == (48, 64, 3)
    assert abs(int(frames[-1][24, 32, 0]) - 200) < 12  # colours survive (RGB order kept)
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_writer_exception_leaves_nothing(tmp_path):
    out = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="boom"), VideoWriter(out, 24, (64, 48)) as w:
        for i, f in enumerate(_frames(6)):
            w.write(f)
            if i == 3:
                raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_writer_refuses_overwrite(tmp_path):
    out = tmp_path / "keep.mp4"
    out.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="keep.mp4.*already exists"):
        VideoWriter(out, 24, (64, 48))
    assert out.read_bytes() == b"keep me"
    with VideoWriter(out, 24, (64, 48), overwrite=True) as w:
        for f in _frames(2):
            w.write(f)
    assert out.stat().st_size > 100
    assert len(list(tmp_path.iterdir())) == 1


def test_writer_bad_destination_and_frames(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        VideoWriter(tmp_path / "no" / "dir" / "x.mp4", 24, (64, 48))
    w = VideoWriter(tmp_path / "x.mp4", 24, (64, 48))
    with pytest.raises(OutputError, match="64x48"):
        w.write(np.zeros((10, 10, 3), np.uint8))
    w.abort()
    assert list(tmp_path.iterdir()) == []
    w2 = VideoWriter(tmp_path / "y.mp4", 24, (64, 48))
    with pytest.raises(OutputError, match="no frames"):
        w2.close()
    assert list(tmp_path.iterdir()) == []


def test_writer_odd_size_is_padded(tmp_path):
    out = tmp_path / "odd.mp4"
    with VideoWriter(out, 24, (63, 47)) as w:
        for f in _frames(3, 63, 47):
            w.write(f)
    with open_video(out) as src:
        assert (src.width, src.height) == (64, 48)
        assert sum(1 for _ in src) == 3


def test_writer_output_has_ordinary_permissions(tmp_path):
    import os
    import stat

    umask = os.umask(0o022)
    try:
        with VideoWriter(tmp_path / "v.mp4", 24, (32, 32)) as writer:
            writer.write(np.zeros((32, 32, 3), np.uint8))
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "v.mp4").stat().st_mode) == 0o644


def test_rotated_phone_video_is_read_upright(tmp_path, data_dir, caplog):
    """A video with a display rotation (as phones record portrait) is decoded in its display orientation,
    without imageio-ffmpeg's warning that the size read differs from the stored one (printed even with -q)."""
    caplog.set_level(logging.WARNING)
    rotated = tmp_path / "rotated.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-display_rotation:v:0", "90", "-i",
                    str(data_dir / "dance_short.mp4"), "-c", "copy", str(rotated)], check=True)
    with open_video(data_dir / "dance_short.mp4") as src:
        upright = next(iter(src))
    with open_video(rotated) as src:
        assert (src.width, src.height) == (640, 360)
        first = next(iter(src))
    assert first.shape == (360, 640, 3)
    error = min(np.abs(first.astype(int) - np.rot90(upright, k).astype(int)).mean() for k in (1, -1))
    assert error < 3.0
    assert not [r for r in caplog.records if r.name.startswith("imageio")], caplog.text


# ------------------------------------------------------------------------ packet index, keyframe decoding
def _reencode(src, dst, *args):
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(src), "-an", "-c:v", "libx264", "-preset", "veryfast",
                    *args, str(dst)], check=True)
    return dst


def test_index_packets_counts_frames_and_finds_key_frames(data_dir, tmp_path):
    index = index_packets(data_dir / "dance_short.mp4")
    with open_video(data_dir / "dance_short.mp4") as src:
        decoded = sum(1 for _ in src)
    assert index.frame_count == decoded == 24 and index.keyframes[0] == 0
    # B-frames (packets out of display order) and a key frame every 5 frames, as the encoder was told
    gop5 = _reencode(data_dir / "dance_short.mp4", tmp_path / "gop5.mp4", "-g", "5", "-keyint_min", "5",
                     "-sc_threshold", "0", "-bf", "2")
    index = index_packets(gop5)
    assert index.frame_count == 24 and index.keyframes.tolist() == [0, 5, 10, 15, 20]
    # not a video file: None, the callers then decode without it
    assert index_packets(tmp_path) is None
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    assert index_packets(tmp_path / "junk.mp4") is None


@pytest.mark.parametrize("start, end, offset, tail", [(0, None, 0, True), (5, 20, 5, True), (7, 24, 0, False)])
def test_iter_keyframes_in_the_decoder_matches_reading_every_frame(data_dir, start, end, offset, tail):
    path = data_dir / "dance_short.mp4"
    count = (24 if end is None else end) - start
    with open_video(path, max_size=320, start=start, end=end) as src:
        plain = [(i, f.copy()) for i, f in src.iter_keyframes(3, offset, tail)]
        assert src.frames_read == count
    with open_video(path, max_size=320, start=start, end=end) as src:
        selected = [(i, f.copy()) for i, f in src.iter_keyframes(3, offset, tail, count=count)]
        assert src.frames_read == count
    assert [i for i, _ in selected] == [i for i, _ in plain]
    assert [i for i, _ in plain][:2] == [i for i in range(count) if (offset + i) % 3 == 0][:2]
    assert (plain[-1][0] == count - 1) == (tail or (offset + count - 1) % 3 == 0)
    for (_, a), (_, b) in zip(selected, plain):
        assert np.array_equal(a, b)


def test_skip_deblocking_only_when_shrinking_and_stays_close(data_dir, tmp_path):
    # H.264 with the deblocking filter on (x264's default) and a compression that needs it
    path = _reencode(data_dir / "dance_short.mp4", tmp_path / "x264.mp4", "-crf", "30")
    with open_video(path, max_size=320) as src:
        normal = np.stack([f.copy() for f in src]).astype(np.float64)
    with open_video(path, max_size=320, skip_deblocking=True) as src:
        fast = np.stack([f.copy() for f in src]).astype(np.float64)
    mse = ((normal - fast) ** 2).mean()
    assert 0 < mse and 10 * np.log10(255 ** 2 / mse) > 38  # different decoding, the same picture for a detector
    with open_video(path, skip_deblocking=True, end=3) as src:  # full size: the filter is kept
        full = np.stack([f.copy() for f in src])
    with open_video(path, end=3) as src:
        assert np.array_equal(full, np.stack([f.copy() for f in src]))


def test_first_frame_matches_open_video(data_dir, tmp_path):
    with open_video(data_dir / "dance_short.mp4") as src:
        want = next(iter(src)).copy()
    assert np.array_equal(first_frame(data_dir / "dance_short.mp4"), want)
    cv2.imwrite(str(tmp_path / "f1.png"), want[..., ::-1])
    assert np.array_equal(first_frame(tmp_path), want)
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(VideoError, match="junk.mp4"):
        first_frame(tmp_path / "junk.mp4")


def test_header_probe_is_cached_per_file_version(data_dir, tmp_path, monkeypatch):
    from pose import video

    clip = tmp_path / "clip.mp4"
    clip.write_bytes((data_dir / "dance_short.mp4").read_bytes())
    calls = []
    real = video._read_header
    monkeypatch.setattr(video, "_read_header", lambda p: calls.append(p) or real(p))
    for _ in range(3):
        with open_video(clip) as src:
            assert src.frame_count == 24
    assert len(calls) == 1
    _reencode(data_dir / "dance_short.mp4", clip, "-frames:v", "10")  # same path, new content
    with open_video(clip) as src:
        assert src.frame_count == 10
    assert len(calls) == 2


@pytest.mark.parametrize("orientation", range(1, 9))
def test_read_image_applies_the_exif_orientation(tmp_path, data_dir, orientation):
    """Phone photos store the pixels sideways with an EXIF orientation; they are read upright, as PIL's
    ImageOps.exif_transpose shows them (and so is their alpha, for the character mask)."""
    from PIL import Image, ImageOps

    from animate.api import alpha_mask, load_rgb
    from pose.video import EXIF_ORIENTATION_TAG

    stored = Image.open(data_dir / "dance_000.jpg").convert("RGB").resize((90, 160))
    exif = Image.Exif()
    exif[EXIF_ORIENTATION_TAG] = orientation
    path = tmp_path / f"photo_{orientation}.png"  # lossless, so the comparison is exact
    stored.save(path, exif=exif)
    shown = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    assert shown.shape[:2] == ((90, 160) if orientation >= 5 else (160, 90))
    assert np.array_equal(read_image(path), shown)
    assert np.array_equal(load_rgb(Image.open(path)), shown)

    rgba = stored.convert("RGBA")
    rgba.putalpha(Image.fromarray(np.tile((np.arange(90) < 30).astype(np.uint8) * 255, (160, 1))))
    rgba.save(path, exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).getchannel("A"))
    assert np.array_equal(alpha_mask(path), expected) and np.array_equal(alpha_mask(Image.open(path)), expected)


def test_phone_photo_jpeg_is_upright(tmp_path, data_dir):
    """A JPEG stored sideways with orientation 6 (the usual portrait phone photo) reads as the portrait."""
    from PIL import Image

    upright = Image.open(data_dir / "dance_000.jpg").convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "IMG_0001.jpg"
    upright.transpose(Image.Transpose.ROTATE_90).save(path, exif=exif, quality=95)
    got = read_image(path)
    assert got.shape == (960, 540, 3)
    assert np.abs(got.astype(int) - np.asarray(upright)).mean() < 4


def test_audio_only_file_says_it_has_no_video(tmp_path):
    import subprocess

    from pose.errors import VideoError
    from pose.video import ffmpeg_exe, open_video

    path = tmp_path / "song.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono", "-t", "0.5",
                    "-c:a", "aac", str(path)], check=True)
    with pytest.raises(VideoError, match="song.mp4 has no video stream"):
        open_video(path)


def test_whole_read_of_a_video_with_longer_audio_is_not_called_truncated(tmp_path, data_dir, caplog):
    """The container's duration is the audio's (2 s for a 1 s picture): reading the file whole used to warn
    that it was 'probably truncated' after its 24 frames (seen in `posedrive eval` of such a clip). A file
    really cut short still warns."""
    import logging
    import subprocess

    from pose.video import ffmpeg_exe, open_video

    clip = data_dir / "dance_short.mp4"
    long_audio = tmp_path / "long_audio.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(clip), "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
                    "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", str(long_audio)], check=True)
    with caplog.at_level(logging.WARNING, logger="pose.video"), open_video(long_audio) as video:
        assert video.frame_count == 48  # the header's guess
        assert len(list(video)) == 24
    assert "truncated" not in caplog.text
    front, cut = tmp_path / "front.mp4", tmp_path / "cut.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(clip), "-c", "copy", "-movflags", "+faststart", str(front)],
                   check=True)
    data = front.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])  # the index (moov) is at the front: the frames' data is cut
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pose.video"), open_video(cut) as video:
        assert 0 < len(list(video)) < 24
    assert "probably truncated" in caplog.text
