"""Tests of pose.gaps: short gaps interpolated exactly, long and edge gaps held and flagged."""

from __future__ import annotations

import numpy as np
import pytest

from pose import layout
from pose.errors import ConfigError
from pose.gaps import DEFAULT_SCORE_DECAY, fill_gaps, gap_report
from pose.sequence import FrameStatus, PoseSequence, empty_keypoints

W, H, FPS = 540, 960, 24.0
N = 40

# A standing person on a 540x960 frame (roughly frame 0 of the MusePose dance at that size).
_BODY = np.array([
    [270, 160], [270, 215], [225, 218], [205, 300], [200, 375], [315, 212], [335, 295], [345, 370],
    [240, 400], [238, 530], [236, 650], [300, 400], [302, 530], [304, 650],
    [260, 150], [280, 150], [250, 158], [290, 158],
], dtype=np.float32)


def _sequence() -> PoseSequence:
    """N frames of the person swaying sideways and raising the left wrist, body + right hand present."""
    kps = empty_keypoints(N)
    t = np.arange(N, dtype=np.float32)
    for i in range(N):
        body = _BODY.copy()
        body[:, 0] += 3.0 * t[i]
        body[layout.B["left_wrist"], 1] -= 4.0 * t[i]
        kps[i, layout.BODY, :2] = body
        kps[i, layout.BODY, 2] = 0.9
        wrist = body[layout.B["right_wrist"]]
        kps[i, layout.RIGHT_HAND, :2] = wrist + np.linspace(0, 40, layout.NUM_HAND)[:, None] * [0.3, 1.0]
        kps[i, layout.RIGHT_HAND, 2] = 0.8
    return PoseSequence(kps, W, H, FPS)


def _drop_frames(seq: PoseSequence, frames) -> PoseSequence:
    kps = seq.keypoints.copy()
    status = seq.status.copy()
    for f in frames:
        kps[f] = empty_keypoints()
        status[f] = FrameStatus.MISSING
    return seq.copy(kps, status=status, confidence=np.where(status == FrameStatus.DETECTED, seq.confidence, 0))


def test_short_frame_gap_is_interpolated_exactly_linearly():
    full = _sequence()
    seq = _drop_frames(full, range(10, 15))  # 5-frame gap, bounded by frames 9 and 15
    out = fill_gaps(seq, max_interp_gap=8)
    # the motion is linear in time, so interpolation must recover it (float32 precision)
    np.testing.assert_allclose(out.keypoints[10:15, :, :2][full.keypoints[10:15, :, 2] > 0],
                               full.keypoints[10:15, :, :2][full.keypoints[10:15, :, 2] > 0], atol=1e-3)
    assert (out.status[10:15] == FrameStatus.INTERPOLATED).all()
    assert (out.status[:10] == FrameStatus.DETECTED).all() and (out.status[15:] == FrameStatus.DETECTED).all()
    np.testing.assert_allclose(out.keypoints[12, layout.BODY, 2], 0.9 * DEFAULT_SCORE_DECAY, atol=1e-6)
    assert (out.confidence[10:15] == 0).all()
    # keypoints never detected (face, left hand) stay missing
    assert (out.keypoints[12, layout.FACE, 2] == 0).all() and np.isnan(out.keypoints[12, layout.FACE, :2]).all()
    assert out.meta["gaps"]["interpolated_frames"] == 5


def test_input_is_not_modified():
    seq = _drop_frames(_sequence(), range(10, 15))
    before = seq.keypoints.copy()
    status = seq.status.copy()
    fill_gaps(seq)
    np.testing.assert_array_equal(np.nan_to_num(seq.keypoints, nan=-7), np.nan_to_num(before, nan=-7))
    np.testing.assert_array_equal(seq.status, status)


def test_long_gap_holds_the_last_detection_and_is_flagged():
    full = _sequence()
    seq = _drop_frames(full, range(10, 22))  # 12 frames > 8
    out = fill_gaps(seq, max_interp_gap=8)
    assert (out.status[10:22] == FrameStatus.HELD).all()
    # the whole gap holds frame 9: the pose changes when the person is seen again, at frame 22
    np.testing.assert_allclose(out.keypoints[10:22, layout.BODY, :2], np.repeat(full.keypoints[9:10, layout.BODY, :2], 12, 0))
    np.testing.assert_allclose(out.keypoints[22, layout.BODY, :2], full.keypoints[22, layout.BODY, :2])
    assert np.allclose(out.keypoints[10:22, layout.BODY, 2], 0.9 * DEFAULT_SCORE_DECAY)
    assert (out.confidence[10:22] == 0).all()


def test_held_frames_hold_the_last_pose_not_older_keypoints():
    """A hand lost a few frames before the person is not brought back from its older detection."""
    full = _sequence()
    kps = full.keypoints.copy()
    kps[5:10, layout.RIGHT_HAND] = empty_keypoints()[layout.RIGHT_HAND]  # hand lost at 5, person at 10
    seq = _drop_frames(full.copy(kps), range(10, 22))
    out = fill_gaps(seq, max_interp_gap=8)
    assert (out.status[10:22] == FrameStatus.HELD).all()
    np.testing.assert_allclose(out.keypoints[10:22, layout.BODY, :2], np.repeat(full.keypoints[9:10, layout.BODY, :2], 12, 0))
    assert (out.keypoints[10:22, layout.RIGHT_HAND, 2] == 0).all()
    assert np.isnan(out.keypoints[10:22, layout.RIGHT_HAND, :2]).all()
    # the same at the start: the first pose after the gap, without a hand it lacks
    kps = full.keypoints.copy()
    kps[3:6, layout.RIGHT_HAND] = empty_keypoints()[layout.RIGHT_HAND]
    out = fill_gaps(_drop_frames(full.copy(kps), [0, 1, 2]), max_interp_gap=8)
    np.testing.assert_allclose(out.keypoints[0, layout.BODY, :2], full.keypoints[3, layout.BODY, :2])
    assert (out.keypoints[:3, layout.RIGHT_HAND, 2] == 0).all()


def test_leading_and_trailing_gaps_are_held():
    full = _sequence()
    seq = _drop_frames(full, [0, 1, 2, N - 2, N - 1])
    out = fill_gaps(seq, max_interp_gap=8)
    assert (out.status[[0, 1, 2, N - 2, N - 1]] == FrameStatus.HELD).all()
    np.testing.assert_allclose(out.keypoints[0, :, :2][layout.BODY], full.keypoints[3, layout.BODY, :2])
    np.testing.assert_allclose(out.keypoints[N - 1, layout.BODY, :2], full.keypoints[N - 3, layout.BODY, :2])


def test_per_keypoint_gap_inside_detected_frames():
    full = _sequence()
    kps = full.keypoints.copy()
    lw = layout.B["left_wrist"]
    kps[5:8, lw] = [np.nan, np.nan, 0.0]      # 3-frame occlusion: interpolated
    kps[20:35, layout.RIGHT_HAND] = empty_keypoints()[layout.RIGHT_HAND]  # 15 frames: left missing
    seq = full.copy(kps)
    out = fill_gaps(seq, max_interp_gap=8)
    np.testing.assert_allclose(out.keypoints[5:8, lw, :2], full.keypoints[5:8, lw, :2], atol=1e-3)
    assert (out.keypoints[5:8, lw, 2] < 0.9).all() and (out.keypoints[5:8, lw, 2] > 0).all()
    assert (out.status == FrameStatus.DETECTED).all()
    assert (out.keypoints[20:35, layout.RIGHT_HAND, 2] == 0).all()
    held = fill_gaps(seq, max_interp_gap=8, hold_keypoints=True)
    assert (held.keypoints[20:35, layout.RIGHT_HAND, 2] > 0).all()
    np.testing.assert_allclose(held.keypoints[20, layout.RIGHT_HAND, :2], full.keypoints[19, layout.RIGHT_HAND, :2])


def test_max_interp_gap_boundary():
    full = _sequence()
    seq = _drop_frames(full, range(10, 18))  # exactly 8 frames
    assert (fill_gaps(seq, max_interp_gap=8).status[10:18] == FrameStatus.INTERPOLATED).all()
    assert (fill_gaps(seq, max_interp_gap=7).status[10:18] == FrameStatus.HELD).all()


def test_gap_report_and_validation():
    seq = _drop_frames(_sequence(), [3, 4, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29])
    rep = gap_report(seq, max_interp_gap=8)
    assert rep.frame_gaps == [(3, 5), (20, 30)]
    assert rep.interpolated_frames == 2 and rep.held_frames == 10
    assert rep.longest_keypoint_gap[layout.B["neck"]] == 10
    assert rep.as_dict()["frame_gaps"] == [[3, 5], [20, 30]]
    with pytest.raises(ConfigError, match="max_interp_gap"):
        fill_gaps(seq, max_interp_gap=-1)
    with pytest.raises(ConfigError, match="score_decay"):
        fill_gaps(seq, score_decay=0.0)


def test_spline_follows_an_arc_across_a_gap_and_linear_cuts_the_chord():
    full = _sequence()
    kps = full.keypoints.copy()
    lw = layout.B["left_wrist"]
    t = np.arange(N)
    kps[:, lw, 0] = 300 + 80 * np.cos(t * 0.2)  # the wrist circles
    kps[:, lw, 1] = 300 + 80 * np.sin(t * 0.2)
    truth = full.copy(kps)
    seq = _drop_frames(truth, range(12, 17))
    spline = fill_gaps(seq, max_interp_gap=8)
    linear = fill_gaps(seq, max_interp_gap=8, method="linear")
    err_s = np.linalg.norm(spline.keypoints[12:17, lw, :2] - kps[12:17, lw, :2], axis=-1)
    err_l = np.linalg.norm(linear.keypoints[12:17, lw, :2] - kps[12:17, lw, :2], axis=-1)
    assert err_s.max() < 0.5 * err_l.max()
    # the straight line joins the two bounding detections
    w = (np.arange(12, 17) - 11) / 6.0
    np.testing.assert_allclose(linear.keypoints[12:17, lw, :2],
                               (1 - w)[:, None] * kps[11, lw, :2] + w[:, None] * kps[17, lw, :2], atol=1e-3)
    assert spline.meta["gaps"]["method"] == "makima" and linear.meta["gaps"]["method"] == "linear"
    with pytest.raises(ConfigError, match="method"):
        fill_gaps(seq, method="cubic")


def test_spline_with_too_few_detections_falls_back_to_a_line():
    full = _sequence()
    kps = full.keypoints.copy()
    lw = layout.B["left_wrist"]
    kps[:, lw] = [np.nan, np.nan, 0.0]
    kps[3, lw], kps[7, lw] = [100, 100, 0.9], [140, 60, 0.9]  # only two detections of the wrist
    out = fill_gaps(full.copy(kps), max_interp_gap=8)
    np.testing.assert_allclose(out.keypoints[5, lw, :2], [120, 80], atol=1e-3)


def test_all_missing_sequence_is_returned_unchanged():
    kps = empty_keypoints(5)
    seq = PoseSequence(kps, W, H, FPS, status=np.full(5, FrameStatus.MISSING))
    out = fill_gaps(seq)
    assert (out.status == FrameStatus.MISSING).all() and (out.keypoints[..., 2] == 0).all()
