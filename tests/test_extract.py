"""pose.extract on real data: the dance clip, frame folders, skeleton video, no-person inputs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.interpolate import Akima1DInterpolator

from pose import layout
from pose.errors import ConfigError, InputError, NoPersonError
from pose.extract import (
    _balanced_chunks,
    _chunks,
    auto_detect_every,
    detect_image,
    extract_poses,
    interpolate_between_keyframes,
)
from pose.sequence import FrameStatus, PoseSequence
from pose.video import VideoWriter, read_image

B = layout.B


def test_dance_short(dance_short_poses):
    seq = dance_short_poses
    assert len(seq) == 24 and seq.fps == pytest.approx(24.0) and (seq.width, seq.height) == (360, 640)
    assert seq.detection_rate() >= 0.95
    body = seq.keypoints[:, :14]
    assert (body[..., 2] > 0.5).mean() > 0.95
    assert np.nanmin(body[..., 0]) > -20 and np.nanmax(body[..., 0]) < 380
    hips_y = body[:, [B["right_hip"], B["left_hip"]], 1].mean(axis=1)
    assert (body[:, B["nose"], 1] < hips_y).all()
    m = seq.meta
    assert m["source"].endswith("dance_short.mp4") and m["detector"] == "mediapipe"
    assert m["frames_decoded"] == 24 and m["fill_gaps"] is True


def test_range_and_step(data_dir, dance_short_poses):
    seq = extract_poses(data_dir / "dance_short.mp4", start=4, end=16, step=2, smoothing=None, progress=False)
    assert len(seq) == 6 and seq.fps == pytest.approx(12.0)
    assert seq.meta["start"] == 4 and seq.meta["step"] == 2
    # same frames as the full run (frame 4 starts a new track, so allow a little detector noise)
    full = dance_short_poses.keypoints[4:16:2, :14, :2]
    err = np.nanmedian(np.linalg.norm(seq.keypoints[:, :14, :2] - full, axis=-1))
    assert err < 8.0  # pixels on a 640-pixel-high frame


def test_chunks_cover_the_range_once():
    for start, stop, step, w in [(0, 288, 1, 2), (5, 100, 3, 2), (0, 7, 1, 3), (0, 24, 2, 4)]:
        got = [f for a, b in _chunks(start, stop, step, w) for f in range(a, b, step)]
        assert got == list(range(start, stop, step))


def test_balanced_chunks_count_the_decode_from_the_key_frame():
    # one key frame at 0 (a long GOP): the second range's decoder decodes from frame 0, so it gets fewer frames
    ranges = _balanced_chunks(0, 288, 2, 3, np.array([0, 250]), decode_cost=0.08)
    assert [f for a, b in ranges for f in range(a, b)] == list(range(288))
    assert len(ranges) == 2 and ranges[0][1] % 3 == 0 and ranges[0][1] > 144
    # key frames every 24 frames: the split is (nearly) even
    even = _balanced_chunks(0, 288, 2, 3, np.arange(0, 288, 24), decode_cost=0.08)
    assert abs(even[0][1] - 144) <= 12
    # several workers, a start offset, frames that do not divide evenly
    many = _balanced_chunks(7, 100, 3, 4, np.array([0, 50]), decode_cost=0.1)
    assert [f for a, b in many for f in range(a, b)] == list(range(7, 100))
    assert len(many) <= 3 and all((a - 7) % 4 == 0 for a, _ in many)


def test_packet_index_that_disagrees_with_the_header_is_ignored(data_dir, monkeypatch, caplog):
    # e.g. interlaced video with one packet per field: twice as many packets as frames
    from pose import extract
    from pose.video import PacketIndex

    monkeypatch.setattr(extract, "index_packets", lambda path: PacketIndex(frame_count=48, keyframes=np.array([0])))
    with caplog.at_level("INFO", logger="pose.extract"):
        seq = extract_poses(data_dir / "dance_short.mp4", detect_every=2, workers=1, progress=False)
    assert len(seq) == 24 and seq.detection_rate() == pytest.approx(1.0)
    assert "not using the packet index" in caplog.text


def test_two_workers_match_one(data_dir, dance_short_poses):
    seq = extract_poses(data_dir / "dance_short.mp4", workers=2, progress=False)
    assert seq.meta["workers"] == 2 and len(seq) == 24 and seq.detection_rate() >= 0.95
    err = np.nanmedian(np.linalg.norm(seq.keypoints[:, :14, :2] - dance_short_poses.keypoints[:, :14, :2], axis=-1))
    assert err < 8.0


def test_pose_sequence_source_is_sliced_and_smoothed(dance_short_poses):
    out = extract_poses(dance_short_poses, start=2, end=10, fill_gaps=False, smoothing=None)
    assert len(out) == 8 and np.array_equal(out.keypoints, dance_short_poses.keypoints[2:10], equal_nan=True)
    with pytest.raises(InputError, match="frame range"):
        extract_poses(dance_short_poses, start=5, end=5)


def _folder(tmp_path, data_dir, names):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, name in enumerate(names):
        dst = frames / f"frame{i}.png"
        if name == "blank":
            cv2.imwrite(str(dst), np.full((960, 540, 3), 255, np.uint8))
        elif name == "cropped":  # the dancer walked out: only her feet remain at the top of the frame
            img = cv2.imread(str(data_dir / "dance_000.jpg"))
            out = np.full_like(img, 255)
            out[:60] = img[-60:]
            cv2.imwrite(str(dst), out)
        else:
            shutil.copy(data_dir / name, frames / f"frame{i}.jpg")
            dst.unlink(missing_ok=True)
    return frames


def test_dancer_leaving_the_frame(tmp_path, data_dir):
    names = ["dance_000.jpg", "dance_000.jpg", "blank", "cropped", "blank", "dance_000.jpg"]
    frames = _folder(tmp_path, data_dir, names)
    raw = extract_poses(frames, fill_gaps=False, smoothing=None, progress=False)
    assert len(raw) == 6 and raw.fps == 24.0
    assert raw.status.tolist()[:2] == [FrameStatus.DETECTED] * 2 and raw.status[5] == FrameStatus.DETECTED
    assert raw.status[2] == FrameStatus.MISSING and raw.status[4] == FrameStatus.MISSING
    assert np.isnan(raw.keypoints[2, :, :2]).all()
    filled = extract_poses(frames, max_interp_gap=8, progress=False)
    assert (filled.status[2:5] != FrameStatus.MISSING).all()
    assert np.isfinite(filled.keypoints[3, layout.BODY, :2]).all()


def test_no_person_anywhere(tmp_path):
    video = tmp_path / "empty_room.mp4"
    with VideoWriter(video, 24, (128, 224)) as w:
        for _ in range(4):
            w.write(np.full((224, 128, 3), 90, np.uint8))
    with pytest.raises(NoPersonError, match="empty_room.mp4.*another detector"):
        extract_poses(video, progress=False)


def test_skeleton_video_is_read_back(data_dir):
    seq = extract_poses(data_dir / "skeleton" / "anyone-video-1_kps_short.mp4", progress=False, smoothing=None)
    assert seq.meta["detector"] == "skeleton" and len(seq) == 12 and seq.fps == pytest.approx(30.0)
    assert (seq.width, seq.height) == (512, 704)
    assert seq.detection_rate() >= 11 / 12
    ok = seq.status == FrameStatus.DETECTED
    b = seq.keypoints[ok, :18]
    assert (b[:, 1:14, 2] > 0).mean() > 0.9
    assert (b[:, B["right_shoulder"], 0] < b[:, B["left_shoulder"], 0]).all()
    mid = b[:, [2, 5], :2].mean(axis=1)
    assert np.nanmax(np.linalg.norm(b[:, 1, :2] - mid, axis=1)) < 15
    # the same frame as the PNG of frame 0 gives the same joints
    from pose.skeleton_parse import parse_skeleton

    png = parse_skeleton(read_image(data_dir / "skeleton" / "anyone-video-1_000.png"))
    both = (png.body[:, 2] >= 1.0) & (b[0, :, 2] >= 1.0)
    assert np.median(np.linalg.norm(png.body[both, :2] - b[0, both, :2], axis=1)) < 2.0


@pytest.mark.parametrize("name", ["musepose_ref.png", "anyone-2.png", "anyone-3.png", "anyone-5.png"])
def test_detect_image_reference_characters(data_dir, name):
    f = detect_image(data_dir / "ref" / name)
    img = read_image(data_dir / "ref" / name)
    assert (f.width, f.height) == (img.shape[1], img.shape[0])
    b = f.body
    vis = b[:, 2] > 0.5
    assert vis[[B["nose"], B["neck"], B["right_shoulder"], B["left_shoulder"]]].all()
    hips = [i for i in (B["right_hip"], B["left_hip"]) if vis[i]]
    if hips:
        assert b[B["nose"], 1] < b[B["neck"], 1] < b[hips, 1].mean()
    assert b[B["right_shoulder"], 0] < b[B["left_shoulder"], 0]  # all face the camera


def test_detect_image_no_person(data_dir):
    with pytest.raises(NoPersonError) as info:
        detect_image(data_dir / "no_person.png")
    msg = str(info.value)
    assert "no_person.png" in msg and "--reference-pose" in msg and "\n" not in msg


def test_detect_image_retries_with_a_margin(data_dir, caplog):
    """anyone-1.png (an anime half-body that fills the frame): mediapipe finds her only with room around her."""
    import logging

    from pose.detectors import create_detector

    path = data_dir / "ref" / "anyone-1.png"
    rgb = read_image(path)
    with create_detector("mediapipe", static_image_mode=True) as det:
        assert not det(rgb).has_person  # as framed: nobody
    with caplog.at_level(logging.INFO, logger="pose.extract"):
        frame = detect_image(path)
    assert "margin" in caplog.text
    h, w = rgb.shape[:2]
    assert (frame.width, frame.height) == (w, h)
    b = frame.keypoints[:18]
    upper = [B[n] for n in ("nose", "neck", "right_shoulder", "left_shoulder", "right_wrist", "left_wrist")]
    assert (b[upper, 2] > 0.5).all()
    assert ((b[upper, 0] > 0) & (b[upper, 0] < w) & (b[upper, 1] > 0) & (b[upper, 1] < h)).all()
    assert b[B["nose"], 1] < b[B["neck"], 1] < b[B["right_wrist"], 1]  # hands clasped at the waist
    assert 0.3 * h < b[B["neck"], 1] < 0.6 * h and abs(b[B["neck"], 0] - 0.45 * w) < 0.1 * w
    assert frame.visible(0.3)[layout.FACE].sum() == layout.NUM_FACE


def test_detect_image_array_and_skeleton(data_dir):
    img = read_image(data_dir / "dance_100.jpg")
    assert detect_image(img).has_person
    rgba = np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])
    assert detect_image(rgba).has_person
    skel = detect_image(data_dir / "skeleton" / "anyone-video-2_000.png")
    assert skel.body[B["neck"], 2] == 1.0


# --------------------------------------------------------------------------------------------------
# keyframe stride (detect_every) and worker processes
# --------------------------------------------------------------------------------------------------
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def raw_every_frame(data_dir):
    """dance_short.mp4 detected on every frame, no gap filling or smoothing."""
    return extract_poses(data_dir / "dance_short.mp4", detect_every=1, workers=1, fill_gaps=False, smoothing=None,
                         progress=False)


def _median_px(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.nanmedian(np.linalg.norm(a[..., :2] - b[..., :2], axis=-1)))


@pytest.mark.parametrize("workers", [1, 2])
def test_keyframe_stride_matches_detecting_every_frame(data_dir, raw_every_frame, workers):
    seq = extract_poses(data_dir / "dance_short.mp4", detect_every=2, workers=workers, fill_gaps=False,
                        smoothing=None, progress=False)
    ref = raw_every_frame
    assert len(seq) == 24 and seq.meta["detect_every"] == 2 and seq.meta["workers"] == workers
    assert seq.meta["frames_decoded"] == 24 and seq.meta["detections"] == 13  # 0, 2, ..., 22 and the last, 23
    st = seq.status
    assert (st[0:23:2] == FrameStatus.DETECTED).all() and st[23] == FrameStatus.DETECTED
    assert (st[1:23:2] == FrameStatus.INTERPOLATED).all()
    assert (seq.confidence[1:23:2] == 0).all() and (seq.confidence[0::2] > 0.5).all()
    body = slice(0, 14)
    # keyframes: the same detections as detecting every frame (tracking from two frames back: < 2 px noise)
    assert _median_px(seq.keypoints[0::2, body], ref.keypoints[0::2, body]) < 2.0
    # in-betweens: a modified Akima spline through the keyframes, close to a real detection on a 640 px frame
    assert _median_px(seq.keypoints[1:23:2, body], ref.keypoints[1:23:2, body]) < 3.0
    keys = np.r_[0:23:2, 23]
    for k in range(1, 14):
        track = seq.keypoints[keys, k]
        if (track[:, 2] > 0).all():
            spline = Akima1DInterpolator(keys, track[:, :2].astype(np.float64), method="makima")
            np.testing.assert_allclose(seq.keypoints[1:22:2, k, :2], spline(np.arange(1, 22, 2)), atol=1e-3)
    # a frame skipped by design is not a failed detection
    assert seq.detection_rate() == pytest.approx(ref.detection_rate()) == pytest.approx(1.0)
    assert seq.gaps() == [] and seq.summary()["gaps"] == []
    # the in-betweens' zero confidence (by design) does not dilute the mean
    assert seq.summary()["mean_confidence"] == pytest.approx(float(seq.confidence[seq.detector_frames()].mean()),
                                                             abs=1e-4)
    assert seq.summary()["mean_confidence"] > 0.5


def test_stride_then_gap_fill_and_smoothing(data_dir):
    seq = extract_poses(data_dir / "dance_short.mp4", detect_every=3, workers=1, progress=False)
    assert seq.meta["detect_every"] == 3 and seq.detection_rate() == pytest.approx(1.0)
    assert np.isfinite(seq.keypoints[:, 1:14, :2]).all()  # every frame has a body after post-processing


def test_interpolate_between_keyframes_rules():
    n, k = 7, layout.NUM_KEYPOINTS
    kps = np.zeros((n, k, 3), np.float32)
    kps[..., 2] = 0.9
    kps[:, :, 0] = np.arange(n)[:, None] * 10.0
    kps[:, :, 1] = 5.0
    status = np.full(n, FrameStatus.DETECTED, np.uint8)
    keyframe = np.array([1, 0, 1, 0, 0, 1, 1], bool)  # gaps of 1 and 2 frames, then an adjacent pair
    kps[2, 3] = [np.nan, np.nan, 0.0]  # keypoint 3 lost at keyframe 2: held from keyframe 0
    kps[0, 4] = [np.nan, np.nan, 0.0]
    kps[2, 4] = [np.nan, np.nan, 0.0]  # keypoint 4 missing on both sides: stays missing
    kps[1] = 999.0  # non-keyframe rows are ignored
    out, st = interpolate_between_keyframes(kps, status, keyframe)
    assert st.tolist() == [0, 1, 0, 1, 1, 0, 0]
    assert out[1, 0, 0] == pytest.approx(10.0) and out[3, 0, 0] == pytest.approx(30.0)
    assert out[4, 0, 0] == pytest.approx(40.0) and out[3, 0, 2] == pytest.approx(0.9)
    assert out[1, 3, 0] == pytest.approx(0.0)  # held
    assert np.isnan(out[1, 4, :2]).all() and out[1, 4, 2] == 0
    # next to a keyframe without a person the in-betweens stay MISSING (for fill_gaps)
    status[5] = FrameStatus.MISSING
    out, st = interpolate_between_keyframes(kps, status, keyframe)
    assert st[3:5].tolist() == [FrameStatus.MISSING] * 2 and np.isnan(out[3:5, :, :2]).all()


def test_keyframe_interpolation_follows_curved_motion():
    # a wrist moving on a circle, detected every 3rd frame: the spline stays near the circle, chords cut inside
    n = 31
    t = np.arange(n)
    kps = np.zeros((n, layout.NUM_KEYPOINTS, 3), np.float32)
    kps[..., 0] = 100 + 50 * np.cos(t * 0.25)[:, None]
    kps[..., 1] = 100 + 50 * np.sin(t * 0.25)[:, None]
    kps[..., 2] = 0.9
    truth = kps.copy()
    keyframe = t % 3 == 0
    out, st = interpolate_between_keyframes(kps, np.full(n, FrameStatus.DETECTED, np.uint8), keyframe)
    inner = ~keyframe
    assert (st[inner] == FrameStatus.INTERPOLATED).all()
    err = np.linalg.norm(out[inner, 0, :2] - truth[inner, 0, :2], axis=-1)
    linear = np.linalg.norm(np.stack([np.interp(t, t[keyframe], truth[keyframe, 0, c]) for c in (0, 1)], -1)[inner]
                            - truth[inner, 0, :2], axis=-1)
    assert np.median(err) < 0.25 * np.median(linear) and err.max() < 0.5 * linear.max()


def test_detection_rate_counts_keyframes_only():
    n = 12
    kps = np.zeros((n, layout.NUM_KEYPOINTS, 3), np.float32)
    kps[..., 2] = 1.0
    status = np.where(np.arange(n) % 3 == 0, FrameStatus.DETECTED, FrameStatus.INTERPOLATED).astype(np.uint8)
    status[11] = FrameStatus.DETECTED  # the last frame is always detected
    status[4:9] = FrameStatus.MISSING  # keyframe 6 failed; the in-betweens on both sides were left missing
    seq = PoseSequence(kps, 64, 64, 24.0, status, meta={"detect_every": 3})
    assert seq.detector_frames().tolist() == [i % 3 == 0 or i == 11 for i in range(n)]
    assert seq.detection_rate() == pytest.approx(4 / 5)
    assert seq.gaps() == [(4, 9)]
    plain = seq.copy(meta={})  # without the stride every non-detected frame counts
    assert plain.detection_rate() == pytest.approx(4 / 12) and len(plain.gaps()) == 3
    assert seq.slice(3, 12).detect_every == 3 and seq.slice(0, 12, 3).detect_every == 1
    assert seq.slice(1, 12, 3).detect_every == 1 and "detect_every" not in seq.slice(1, 12, 3).meta
    # a part that starts between keyframes keeps the pattern (its in-betweens were counted as misses: a
    # QA run of frames 58-61 of the dance warned "3 of 4 frames had no person")
    part = seq.slice(1, 12)
    assert part.detect_every == 3 and part.detect_phase == 1
    assert part.detector_frames().tolist() == seq.detector_frames()[1:].tolist()
    assert part.slice(1).detector_frames().tolist() == seq.detector_frames()[2:].tolist()
    assert part.detection_rate() == pytest.approx(3 / 4)


@pytest.mark.parametrize("fps, frames, kwargs, expected", [
    (24, 288, {}, 3), (25, 300, {}, 3), (30, 300, {}, 4), (48, 480, {}, 5), (60, 600, {}, 5), (120, 1200, {}, 5),
    (16, 200, {}, 2),
    (12, 200, {}, 1),                        # too few frames per second to interpolate
    (24, 24, {}, 1), (30, None, {}, 1),       # short or unknown length
    (24, 288, {"is_folder": True}, 1), (24, 288, {"detector": "openpose"}, 1),
])
def test_auto_detect_every(fps, frames, kwargs, expected):
    assert auto_detect_every(fps, frames, **kwargs) == expected


def test_auto_stride_on_short_clip_detects_every_frame(dance_short_poses):
    assert dance_short_poses.meta["detect_every"] == 1 and dance_short_poses.meta["detections"] == 24


def test_invalid_detect_every_and_workers(data_dir):
    for bad in (0, 2.5, "fast", True):
        with pytest.raises(InputError, match="detect_every"):
            extract_poses(data_dir / "dance_short.mp4", detect_every=bad, progress=False)
    with pytest.raises(InputError, match="workers"):
        extract_poses(data_dir / "dance_short.mp4", workers=0, progress=False)


def test_chunks_align_on_keyframes():
    for start, stop, step, w, every in [(0, 288, 1, 2, 2), (0, 24, 1, 2, 5), (3, 100, 2, 3, 3), (0, 7, 1, 4, 2)]:
        ranges = _chunks(start, stop, step, w, every)
        got = [f for a, b in ranges for f in range(a, b, step)]
        assert got == list(range(start, stop, step))
        sizes = [len(range(a, b, step)) for a, b in ranges]
        assert all(s % every == 0 for s in sizes[:-1])


_STDIN_SCRIPT = """
import json, logging
logging.basicConfig(level=logging.WARNING)
import mediapipe as mp
from pose.extract import detect_image, extract_poses
from pose.video import read_image
if {setup!r} == "detect_image":
    detect_image({image!r})  # a counted mediapipe graph in this process: forking is no longer safe
elif {setup!r} == "other_graph":
    with mp.solutions.selfie_segmentation.SelfieSegmentation() as s:  # a graph pose.extract does not know of
        s.process(read_image({image!r}))
seq = extract_poses({video!r}, workers=2, detect_every=2, fill_gaps=False, smoothing=None, progress=False)
print(json.dumps({{"workers": seq.meta["workers"], "status": seq.status.tolist(), "rate": seq.detection_rate()}}))
"""


@pytest.mark.parametrize("setup", ["none", "detect_image", "other_graph"])
def test_workers_from_a_script_read_from_stdin(data_dir, setup):
    """`python - <<EOF` scripts (no file, no __main__ guard) must not crash when workers are used."""
    script = _STDIN_SCRIPT.format(setup=setup, image=str(data_dir / "dance_100.jpg"),
                                  video=str(data_dir / "dance_short.mp4"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["rate"] == 1.0 and out["status"][:4] == [0, 1, 0, 1] and len(out["status"]) == 24
    if setup == "none":  # forked
        assert out["workers"] == 2
    elif setup == "detect_image":  # cannot fork after a graph, cannot spawn without a main file
        assert out["workers"] == 1 and "using 1 worker" in proc.stderr
    else:  # the forked workers crash on the unknown graph: detected, redone in this process
        assert out["workers"] == 1 and "again in this process" in proc.stderr


def test_while_detecting_runs_once_and_its_errors_stop_the_workers(data_dir):
    calls: list[int] = []
    seq = extract_poses(data_dir / "dance_short.mp4", workers=2, detect_every=1, progress=False,
                        while_detecting=lambda: calls.append(1))
    assert calls == [1] and len(seq) == 24 and seq.meta["workers"] == 2

    class Boom(RuntimeError):
        pass

    def boom() -> None:
        raise Boom("reference failed")

    with pytest.raises(Boom):
        extract_poses(data_dir / "dance_short.mp4", workers=2, detect_every=1, progress=False, while_detecting=boom)
    import multiprocessing

    assert not [p for p in multiprocessing.active_children() if p.name.startswith("pose-extract")]
    calls.clear()
    extract_poses(seq, while_detecting=lambda: calls.append(1))
    assert calls == [1]


def test_start_past_the_end_is_a_clear_error(data_dir):
    with pytest.raises(InputError, match="ends before frame 500"):
        extract_poses(data_dir / "dance_short.mp4", start=500, progress=False)


def test_phone_video_with_a_rotation_flag_is_detected_upright(tmp_path, data_dir, raw_every_frame):
    """A phone filming upright stores landscape frames and a display rotation; the dancer must be found
    upright, in the displayed (portrait) frame's pixels, on every path (seek, keyframe select, workers).
    (tests/test_video.py checks the decoded frames themselves.)"""
    from pose.video import ffmpeg_exe

    side = tmp_path / "stored_sideways.mp4"
    phone = tmp_path / "phone.mp4"
    ffmpeg = [ffmpeg_exe(), "-v", "error", "-y"]
    subprocess.run([*ffmpeg, "-i", str(data_dir / "dance_short.mp4"), "-vf", "transpose=1", "-c:v", "libx264",
                    "-crf", "12", str(side)], check=True)
    subprocess.run([*ffmpeg, "-display_rotation", "90", "-i", str(side), "-c", "copy", str(phone)], check=True)
    for workers, every, start in ((1, 1, 0), (2, 2, 4)):
        seq = extract_poses(phone, detect_every=every, workers=workers, fill_gaps=False, smoothing=None,
                            progress=False, start=start)
        assert (seq.width, seq.height) == (360, 640) and len(seq) == 24 - start
        body = seq.keypoints[:, layout.BODY]
        assert _median_px(body, raw_every_frame.keypoints[start:, layout.BODY]) < 3.0


def test_two_dancers_one_is_followed_across_the_workers(tmp_path, data_dir, monkeypatch):
    """Two dancers side by side: each pose worker starts tracking afresh and the second one picked the other
    dancer; the switch at the workers' boundary is seen and the video detected again in one process."""
    import pose.extract as extract_module
    from pose.video import open_video

    frames = list(open_video(data_dir / "dance_short.mp4"))
    duo = tmp_path / "duo.mp4"
    with VideoWriter(duo, 24, (720, 640)) as w:
        for i, frame in enumerate(frames):
            w.write(np.concatenate([frame, frames[(i + 12) % len(frames)][:, ::-1]], axis=1))
    common = {"workers": 2, "detect_every": 2, "fill_gaps": False, "smoothing": None, "progress": False}
    monkeypatch.setattr(extract_module, "SWITCH_TORSOS", 1e9)  # the check off: the failure it is for
    mixed = extract_poses(duo, **common)
    assert mixed.meta["workers"] == 2 and len(set(mixed.keypoints[:, B["neck"], 0] > 360)) == 2
    monkeypatch.undo()
    seq = extract_poses(duo, **common)
    assert seq.meta["workers"] == 1 and seq.detection_rate() == 1.0
    assert len(set(seq.keypoints[:, B["neck"], 0] > 360)) == 1
    # a user picks the dancer on the right with a detection window (README, known limitations)
    right = extract_poses(duo, **common, detector_options={"crop": [0.5, 0.0, 1.0, 1.0]})
    assert right.meta["workers"] == 2 and (right.keypoints[:, B["neck"], 0] > 360).all()
    from animate.cli import main as cli_main
    from animate.config import load_config
    from pose.io import load_sequence

    assert cli_main(["pose", "extract", str(duo), "--window", "0.5,0,1,1", "-o", str(tmp_path / "right.json")]) == 0
    assert (load_sequence(tmp_path / "right.json").keypoints[:, B["neck"], 0] > 360).all()
    with pytest.raises(SystemExit):
        cli_main(["pose", "extract", str(duo), "--window", "0.5,0,0.4,1", "-o", str(tmp_path / "bad.json")])
    # posedrive animate --window sets the same detector option
    assert load_config(pose__detector_options__crop=[0.5, 0, 1, 1]).pose.detector_options == {"crop": [0.5, 0, 1, 1]}


def test_person_switch_rule(dance_short_poses):
    from pose.extract import _person_switch

    kps, status = dance_short_poses.keypoints.copy(), np.zeros(24, np.uint8)
    assert _person_switch(kps, status, np.array([12]), 24.0) is None  # one dancer moving
    kps[12:, :, 0] += 300  # someone else, 300 px to the right, from frame 12 on
    assert _person_switch(kps, status, np.array([6, 12]), 24.0) == 12
    status[2:22] = FrameStatus.MISSING  # the detections around the boundary are a second apart: no verdict
    assert _person_switch(kps, status, np.array([12]), 8.0) is None


@pytest.mark.parametrize("kwargs, error, match", [
    ({"max_interp_gap": -1}, ConfigError, "max_interp_gap"),
    ({"max_interp_gap": "8"}, ConfigError, "max_interp_gap"),
    ({"smoothing": "yes"}, ConfigError, "smoothing"),
    ({"smoothing": {"body": 1.0}}, ConfigError, "smoothing"),
    ({"max_scale_jump": 0.5}, ConfigError, "max_scale_jump"),
    ({"max_scale_jump": "x"}, ConfigError, "max_scale_jump"),
    ({"max_size": 0}, InputError, "max_size"),
    ({"max_size": "big"}, InputError, "max_size"),
])
def test_arguments_are_checked_before_decoding(data_dir, monkeypatch, kwargs, error, match):
    from pose import extract

    def no_decoding(*args, **kw):
        raise AssertionError("the video was opened before the arguments were checked")

    for name in ("open_video", "first_frame", "index_packets", "_detect_range", "_run_parallel"):
        monkeypatch.setattr(extract, name, no_decoding)
    with pytest.raises(error, match=match):
        extract_poses(data_dir / "dance_short.mp4", progress=False, **kwargs)


def test_end_past_the_last_frame_reads_to_the_end(data_dir):
    """end=100 on the 24-frame clip (one worker, keyframes every 3rd frame) lost the frames after the last
    regular keyframe, with a warning that the file was probably truncated: the worker was given the
    asked-for end instead of the video's."""
    seq = extract_poses(data_dir / "dance_short.mp4", end=100, detect_every=3, progress=False)
    assert len(seq) == 24 and seq.status[-1] == FrameStatus.DETECTED
