"""Variable-frame-rate videos: put the poses back on an even clock.

Screen recordings and some phone videos do not show their frames at a steady rate: a recording that stalls
keeps one picture on screen for half a second, then goes on. posedrive treats a pose sequence as evenly
spaced at its fps, so the frames after a stall would play early, and the character would dance ahead of the
music that plays with it. The packets' timestamps (:func:`pose.video.index_packets`) say when each frame is
shown; when they are uneven (:func:`is_uneven`), :func:`to_even_clock` resamples the poses at the video's
nominal rate (:func:`nominal_rate`, the typical spacing), interpolating between the two frames around each
instant, or holding the earlier one across a stall longer than ``max_gap_s`` (what the video shows).
"""

from __future__ import annotations

import numpy as np

from . import layout
from .sequence import FrameStatus, PoseSequence, body_confidence, keypoint_valid

UNEVEN_TOLERANCE = 0.5
"""Spacing that differs from the typical one by more than this fraction makes a video uneven."""

DEFAULT_MAX_GAP_S = 1.0 / 3.0
"""Longest stall, in seconds, interpolated across (like :data:`pose.gaps.DEFAULT_MAX_INTERP_GAP` at
24 fps); a longer one holds the frame shown before it."""


def nominal_rate(times: np.ndarray) -> float:
    """Frames per second of the typical spacing (the median interval) of display ``times`` (seconds)."""
    steps = np.diff(np.asarray(times, np.float64))
    steps = steps[steps > 0]
    return float(1.0 / np.median(steps)) if len(steps) else 0.0


def is_uneven(times: np.ndarray, tolerance: float = UNEVEN_TOLERANCE) -> bool:
    """True when some interval of ``times`` differs from the median interval by more than ``tolerance``."""
    steps = np.diff(np.asarray(times, np.float64))
    if len(steps) < 2:
        return False
    typical = float(np.median(steps))
    return typical > 0 and bool(np.any(np.abs(steps - typical) > tolerance * typical))


def to_even_clock(seq: PoseSequence, times: np.ndarray, fps: float,
                  max_gap_s: float = DEFAULT_MAX_GAP_S) -> PoseSequence:
    """Resample ``seq``, whose frame ``i`` is shown at ``times[i]`` seconds, at ``fps`` evenly spaced frames.

    Output frame ``j`` is the instant ``times[0] + j / fps``; its keypoints are interpolated linearly between
    the frames shown just before and just after it (a keypoint seen in only one of them is taken from that
    one), or the frame before is held when they are more than ``max_gap_s`` apart (what the video shows
    during a stall). Status: that of the nearer shown frame (a pose interpolated between detector keyframes
    counts as ``DETECTED``; ``meta["detect_every"]`` becomes 1), ``MISSING`` without any body keypoint;
    confidence of the frame before, or for such an interpolated pose (which had none) its body keypoints'
    mean score.

    Args:
        seq: poses, one per shown frame.
        times: ``(len(seq),)`` increasing display times in seconds.
        fps: the even rate (e.g. :func:`nominal_rate`).
        max_gap_s: longest interval interpolated across.

    Returns:
        A new sequence at ``fps`` covering ``times[0]`` to ``times[-1]``; ``meta["frame_times"]`` records
        the shown frames and the rate.
    """
    t = np.asarray(times, np.float64) - float(times[0])
    n = len(seq)
    if len(t) != n or n == 0:
        raise ValueError(f"need one display time per frame, got {len(t)} times for {n} frames")
    count = int(np.floor(t[-1] * fps + 1e-6)) + 1
    clock = np.arange(count) / fps
    before = np.clip(np.searchsorted(t, clock + 1e-9, side="right") - 1, 0, n - 1)
    after = np.minimum(before + 1, n - 1)
    span = t[after] - t[before]
    w = np.where(span > 0, (clock - t[before]) / np.where(span > 0, span, 1.0), 0.0).clip(0.0, 1.0)
    exact = np.isclose(clock, t[before], atol=0.5 / fps / 100)
    interp = ~exact & (span > 0) & (span <= max_gap_s)

    kps = seq.keypoints
    a, b = kps[before].astype(np.float64), kps[after].astype(np.float64)
    va, vb = keypoint_valid(a), keypoint_valid(b)
    out = a.copy()
    wk = w[:, None, None]
    both = (va & vb & interp[:, None])[..., None]
    out = np.where(both, (1.0 - wk) * a + wk * b, out)
    only_b = (~va & vb & interp[:, None])[..., None]
    out = np.where(only_b, b, out)

    # Status of the nearer shown frame; a pose the detector found on it or between its keyframes counts as
    # detected (the keyframe stride does not survive the new clock: ``detect_every`` becomes 1), and a
    # frame without any body keypoint is missing, for pose.gaps to fill.
    nearer = np.where(w < 0.5, before, after)
    status = seq.status[nearer].copy()
    status[status == FrameStatus.INTERPOLATED] = FrameStatus.DETECTED
    status[~keypoint_valid(out[:, : layout.NUM_BODY]).any(axis=1)] = FrameStatus.MISSING
    # confidence of the frame before; a pose interpolated between keyframes had none (0): its keypoints' own
    # body scores, as a detection's
    confidence = seq.confidence[before].copy()
    unscored = (confidence <= 0) & (status == FrameStatus.DETECTED)
    confidence[unscored] = body_confidence(out[unscored])
    meta = dict(seq.meta)
    meta["detect_every"] = 1
    meta["frame_times"] = {"shown_frames": n, "fps": round(float(fps), 6), "max_gap_s": max_gap_s,
                           "interpolated": int(interp.sum()), "held": int((~exact & ~interp).sum())}
    return PoseSequence(out.astype(np.float32), seq.width, seq.height, float(fps), status,
                        confidence.astype(np.float32), meta)
