"""Tests of pose.smoothing: jitter goes down a lot, steps are followed within two frames, gaps reset."""

from __future__ import annotations

import numpy as np
import pytest

from pose import layout
from pose.errors import ConfigError
from pose.sequence import FrameStatus, PoseSequence, empty_keypoints
from pose.smoothing import OneEuroConfig, person_scale, smooth_sequence

FPS = 24.0
W, H = 1080, 1920
PERSON_H = 1400.0  # px, like the dancer in MusePose's dance.mp4
NOISE = 0.003 * PERSON_H  # detector jitter, ~0.3 % of the body height


def _body(t: np.ndarray) -> np.ndarray:
    """(T, 18, 2) a standing body of height PERSON_H."""
    base = np.zeros((len(t), layout.NUM_BODY, 2))
    base[..., 0] = 540 + np.linspace(-150, 150, layout.NUM_BODY)
    base[..., 1] = 250 + np.linspace(0, PERSON_H, layout.NUM_BODY)
    return base


def _sequence(xy: np.ndarray, fps: float = FPS, status=None) -> PoseSequence:
    kps = empty_keypoints(len(xy))
    kps[:, layout.BODY, :2] = xy
    kps[:, layout.BODY, 2] = 0.9
    return PoseSequence(kps, W, H, fps, status=status)


def _jitter(z: np.ndarray) -> float:
    """Mean absolute second difference over time (px / frame^2)."""
    return float(np.nanmean(np.abs(np.diff(z, n=2, axis=0))))


@pytest.fixture(scope="module")
def dance_like():
    """4 s still, then 4 s of dance-like motion (0.7-1.9 Hz, up to 0.08 body heights), plus noise."""
    rng = np.random.default_rng(0)
    n = int(8 * FPS)
    t = np.arange(n) / FPS
    truth = _body(t)
    moving = t >= 4.0
    tm = t[moving][:, None] - 4.0
    truth[moving, :, 0] += 0.08 * PERSON_H * np.sin(2 * np.pi * 0.7 * tm) + 0.03 * PERSON_H * np.sin(2 * np.pi * 1.9 * tm)
    truth[moving, :, 1] += 0.05 * PERSON_H * np.sin(2 * np.pi * 1.1 * tm)
    noisy = truth + rng.normal(0.0, NOISE, truth.shape)
    return truth, noisy, moving


def test_jitter_reduced_without_lag(dance_like):
    truth, noisy, moving = dance_like
    out = smooth_sequence(_sequence(noisy))
    sm = out.keypoints[:, layout.BODY, :2].astype(np.float64)
    still = slice(0, int(np.argmax(moving)))
    # still: jitter down by at least 3x (measured ~4.5x)
    assert _jitter(noisy[still]) / _jitter(sm[still]) > 3.0
    # moving: jitter still reduced, and the error to the truth stays within 2x the raw detector noise
    mv = np.flatnonzero(moving)[4:]
    assert _jitter(sm[mv]) < _jitter(noisy[mv])
    rmse_raw = np.sqrt(np.mean((noisy[mv] - truth[mv]) ** 2))
    rmse = np.sqrt(np.mean((sm[mv] - truth[mv]) ** 2))
    assert rmse < 2.0 * rmse_raw, (rmse, rmse_raw)


def test_step_is_followed_within_two_frames():
    n = 40
    xy = _body(np.arange(n))
    step = 0.25 * PERSON_H
    xy[20:, :, 0] += step
    out = smooth_sequence(_sequence(xy)).keypoints[:, layout.BODY, 0].astype(np.float64)
    frac = (out[20:] - xy[0, :, 0]) / step
    assert (frac[2] >= 0.9).all(), frac[:4, 0]     # 90 % of the step after two frames
    assert (frac[6] >= 0.99).all()
    np.testing.assert_allclose(out[:20], xy[:20, :, 0], atol=1e-3)  # a still pose is unchanged


def test_scale_awareness():
    """The same motion at half resolution is smoothed identically (up to the scale)."""
    rng = np.random.default_rng(1)
    xy = _body(np.arange(60)) + rng.normal(0, NOISE, (60, layout.NUM_BODY, 2))
    a = smooth_sequence(_sequence(xy)).keypoints[..., :2]
    b = smooth_sequence(_sequence(xy / 2)).keypoints[..., :2]
    np.testing.assert_allclose(a[:, layout.BODY], 2 * b[:, layout.BODY], rtol=1e-4, atol=1e-3)
    assert person_scale(_sequence(xy)) == pytest.approx(PERSON_H, rel=0.02)


def test_missing_keypoints_reset_the_filter():
    n = 30
    xy = _body(np.arange(n))
    xy[15:, :, 0] += 300.0  # the person jumps while a keypoint is missing
    seq = _sequence(xy)
    kps = seq.keypoints.copy()
    kps[12:15, 4] = [np.nan, np.nan, 0.0]
    out = smooth_sequence(seq.copy(kps)).keypoints
    assert np.isnan(out[12:15, 4, :2]).all() and (out[12:15, 4, 2] == 0).all()
    # restarts at the new detection instead of sliding from the old position
    assert out[15, 4, 0] == pytest.approx(xy[15, 4, 0], abs=1e-3)
    assert out[15, 3, 0] < xy[15, 3, 0] - 10  # a continuously tracked neighbour is smoothed (lags)


def test_held_frames_are_not_smeared():
    n = 30
    xy = _body(np.arange(n))
    xy[10:, :, 0] += 200.0
    status = np.full(n, FrameStatus.DETECTED, np.uint8)
    status[5:10] = FrameStatus.HELD
    out = smooth_sequence(_sequence(xy, status=status)).keypoints[:, layout.BODY, :2]
    np.testing.assert_array_equal(out[5:10], _sequence(xy).keypoints[5:10, layout.BODY, :2])
    np.testing.assert_allclose(out[10], xy[10], atol=1e-3)  # fresh start after the held run


def test_input_unchanged_and_meta():
    rng = np.random.default_rng(2)
    seq = _sequence(_body(np.arange(20)) + rng.normal(0, 3, (20, layout.NUM_BODY, 2)))
    before = seq.keypoints.copy()
    out = smooth_sequence(seq, OneEuroConfig(min_cutoff=0.5, beta=10))
    np.testing.assert_array_equal(np.nan_to_num(seq.keypoints), np.nan_to_num(before))
    assert out.meta["smoothing"]["parts"]["all"]["beta"] == 10
    assert not np.allclose(out.keypoints[:, layout.BODY, :2], before[:, layout.BODY, :2])


@pytest.mark.parametrize("kwargs, field", [
    ({"min_cutoff": 0}, "min_cutoff"), ({"beta": -1}, "beta"), ({"d_cutoff": float("nan")}, "d_cutoff"),
])
def test_config_validation(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        OneEuroConfig(**kwargs)


def test_bad_part_name():
    seq = _sequence(_body(np.arange(5)))
    with pytest.raises(ConfigError, match="torso"):
        smooth_sequence(seq, {"torso": OneEuroConfig()})


@pytest.fixture(scope="module")
def real_raw(data_dir):
    """Unsmoothed, unfilled detections of the real dance clip (24 frames, every frame detected)."""
    extract = pytest.importorskip("pose.extract")
    return extract.extract_poses(data_dir / "dance_short.mp4", smoothing=False, fill_gaps=False, detect_every=1,
                                 progress=False)


@pytest.mark.parametrize("added_noise", [0.0, 0.004])
def test_real_dance_jitter_reduced_without_lag(real_raw, added_noise):
    """On the real clip (plus optional noise of 0.4 % of body height): jitter down, no lag beyond 1 frame."""
    raw = real_raw.keypoints[:, layout.BODY, :2].astype(np.float64)
    height = np.nanmedian(np.linalg.norm(raw[:, 1] - np.nanmean(raw[:, [10, 13]], axis=1), axis=1))
    noisy = raw + np.random.default_rng(1).normal(0.0, added_noise * height, raw.shape)
    kps = real_raw.keypoints.copy()
    kps[:, layout.BODY, :2] = noisy
    out = smooth_sequence(real_raw.copy(kps)).keypoints[:, layout.BODY, :2].astype(np.float64)
    assert _jitter(noisy) / _jitter(out) > 1.4  # measured 1.74 on the clean clip
    # the smoothed track lines up best with the input at lag 0 or 1 frame, and stays within 1 % of body height
    errors = [np.nanmean(np.abs(out[lag:] - noisy[:len(noisy) - lag])) for lag in range(4)]
    assert int(np.argmin(errors)) <= 1, errors
    assert errors[0] < 0.01 * height
