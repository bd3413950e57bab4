"""Variable-frame-rate videos put back on an even clock (pose.frame_times), on a real stalled recording."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from pose import layout
from pose.extract import extract_poses
from pose.frame_times import is_uneven, nominal_rate, to_even_clock
from pose.sequence import FrameStatus, PoseSequence, empty_keypoints
from pose.video import ffmpeg_exe


def test_rate_and_unevenness():
    steady = np.arange(10) / 24
    assert nominal_rate(steady) == pytest.approx(24) and not is_uneven(steady)
    jitter = steady + np.array([0, 0.004, -0.003, 0.002, 0, -0.004, 0.003, 0, 0.001, 0])  # phone jitter
    assert not is_uneven(jitter)
    stalled = np.r_[steady[:5], steady[5:] + 0.5]
    assert is_uneven(stalled) and nominal_rate(stalled) == pytest.approx(24)


def test_even_clock_interpolates_short_steps_and_holds_stalls():
    kps = np.stack([empty_keypoints() for _ in range(4)])
    kps[:, :2, :2] = np.array([0.0, 10.0, 20.0, 100.0])[:, None, None]  # x = y = 0, 10, 20, 100
    kps[:, :2, 2] = 0.9
    seq = PoseSequence(kps, 200, 200, 10.0)
    # shown at 0, 0.1, 0.3 (one frame dropped: interpolated) and 1.0 s (a 0.7 s stall: held)
    out = to_even_clock(seq, np.array([0.0, 0.1, 0.3, 1.0]), 10.0)
    assert len(out) == 11 and out.fps == 10.0
    np.testing.assert_allclose(out.keypoints[:4, 0, 0], [0, 10, 15, 20])
    assert (out.keypoints[4:10, 0, 0] == 20).all() and out.keypoints[10, 0, 0] == 100
    assert (out.status == FrameStatus.DETECTED).all()  # every instant shows the person
    assert out.meta["frame_times"] == {"shown_frames": 4, "fps": 10.0, "max_gap_s": pytest.approx(1 / 3),
                                       "interpolated": 1, "held": 6}


def test_stalled_recording_keeps_time(tmp_path, data_dir, raw_every_frame_poses):
    """tests/data/dance_short.mp4 with frames 8-15 dropped and their time kept (a recording that stalled for
    a third of a second): the poses after the stall land on the instants they were filmed."""
    stalled = tmp_path / "stalled.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(data_dir / "dance_short.mp4"), "-vf",
                    r"select='not(between(n\,8\,15))'", "-fps_mode", "vfr", "-c:v", "libx264", "-crf", "12",
                    str(stalled)], check=True)
    seq = extract_poses(stalled, detect_every=1, workers=1, smoothing=None, progress=False)
    assert len(seq) == 24 and seq.fps == 24.0 and seq.meta["frame_times"]["shown_frames"] == 16
    assert seq.meta["frame_times"]["held"] == 8 and seq.detection_rate() == 1.0
    np.testing.assert_array_equal(seq.keypoints[8:16, :, :2], np.repeat(seq.keypoints[7:8, :, :2], 8, axis=0))
    body = layout.BODY
    err = np.linalg.norm(seq.keypoints[16:, body, :2] - raw_every_frame_poses.keypoints[16:, body, :2], axis=-1)
    assert np.nanmedian(err) < 3.0  # after the stall, each pose matches its own instant
    steady = extract_poses(data_dir / "dance_short.mp4", detect_every=1, workers=1, progress=False)
    assert "frame_times" not in steady.meta


def test_poses_between_keyframes_get_a_confidence():
    """Poses interpolated between detector keyframes carry confidence 0; put on the even clock they count
    as detected, and kept 0 they halved ``pose show``'s mean confidence on a QA pass's stalled clip."""
    kps = np.stack([empty_keypoints() for _ in range(4)])
    kps[:, layout.BODY, :2] = 50.0
    kps[:, layout.BODY, 2] = 0.8
    status = np.array([FrameStatus.DETECTED, FrameStatus.INTERPOLATED, FrameStatus.INTERPOLATED,
                       FrameStatus.DETECTED])
    seq = PoseSequence(kps, 200, 200, 10.0, status, np.array([0.9, 0.0, 0.0, 0.9], np.float32))
    out = to_even_clock(seq, np.array([0.0, 0.1, 0.2, 0.5]), 10.0)
    assert (out.status == FrameStatus.DETECTED).all()
    np.testing.assert_allclose(out.confidence, [0.9, 0.8, 0.8, 0.8, 0.8, 0.9], rtol=1e-6)


@pytest.fixture(scope="module")
def raw_every_frame_poses(data_dir):
    return extract_poses(data_dir / "dance_short.mp4", detect_every=1, workers=1, smoothing=None,
                         fill_gaps=False, progress=False)
