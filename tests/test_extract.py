"""pose.extract on real data: the dance clip, frame folders, skeleton video, no-person inputs."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from pose import layout
from pose.errors import InputError, NoPersonError
from pose.extract import _chunks, detect_image, extract_poses
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
        detect_image(data_dir / "ref" / "anyone-1.png")
    msg = str(info.value)
    assert "anyone-1.png" in msg and "--reference-pose" in msg and "\n" not in msg


def test_detect_image_array_and_skeleton(data_dir):
    img = read_image(data_dir / "dance_100.jpg")
    assert detect_image(img).has_person
    rgba = np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])
    assert detect_image(rgba).has_person
    skel = detect_image(data_dir / "skeleton" / "anyone-video-2_000.png")
    assert skel.body[B["neck"], 2] == 1.0
