"""Reject detections whose body size jumps away from the person's track.

A pose detector shown a person who is half out of the frame, or only a sliver of one, can return a
collapsed skeleton with confident scores: on a driving clip whose dancer is hidden left of the shoulder,
mediapipe holistic put the hips level with the elbows and the nose 10 px above the neck, all visibilities
above 0.5. Driven by that pose, a character folds up for as long as the detection lasts and for the frames
interpolated towards it. Its body is also less than half the size it has a moment earlier and later, which
a real person never is (a camera cut aside), and that is what this module checks:

* the *relative scale* of a detected frame is the median, over the body bones whose two ends are both
  seen (:data:`SCALE_BONES`), of each bone's length divided by that bone's median length over all the
  sequence's detections. Foreshortening shortens some bones (a thigh in a squat, the torso in a bow), not
  the median over a dozen of them: on ``examples/assets/dance.mp4`` every detection lies within
  0.92-1.06;
* a detection is *implausible* when its relative scale differs by more than ``max_jump`` times (either way)
  from the median relative scale of the other detections less than ``window_s`` seconds away. A person
  walking towards the camera grows slowly and is followed by that median; frames right after a cut to a
  closer shot can be rejected until the new shot is the majority of the window, which only makes them held.

Rejected frames become ``MISSING``, to be interpolated or held like frames without a person
(:mod:`pose.gaps`). Frames with fewer than :data:`MIN_BONES` measurable bones, or fewer than
:data:`MIN_NEIGHBOURS` detections around them to compare with, are kept.
"""

from __future__ import annotations

import logging

import numpy as np

from .errors import ConfigError
from .layout import BODY_LIMBS
from .sequence import keypoint_valid

logger = logging.getLogger(__name__)

SCALE_BONES: tuple[tuple[int, int], ...] = BODY_LIMBS[:13]
"""Body bones measured: neck-shoulders, arms, neck-hips, legs and neck-nose (OpenPose-18 indices)."""

DEFAULT_MAX_JUMP = 1.6
"""Largest accepted ratio between a detection's relative scale and its neighbours' median."""

DEFAULT_WINDOW_S = 1.0
"""Half-width, in seconds, of the window of neighbouring detections compared with."""

SCORE_THRESHOLD = 0.3
"""Minimum score of both ends of a bone for it to be measured."""

MIN_BONES = 3
"""Bones a detection needs for its scale to be judged."""

MIN_NEIGHBOURS = 4
"""Other detections in the window needed to judge a detection."""


def relative_scales(keypoints: np.ndarray, detected: np.ndarray, threshold: float = SCORE_THRESHOLD) -> np.ndarray:
    """Body size of each detected frame relative to the sequence's typical size (see module docstring).

    Args:
        keypoints: ``(T, K, 3)`` ``[x, y, score]`` in the layout of :mod:`pose.layout`.
        detected: ``(T,)`` bool, the frames to measure (the detector's hits).
        threshold: minimum score of both ends of a measured bone.

    Returns:
        ``(T,)`` float64: the median over measurable bones of length / that bone's median length; NaN for
        frames not in ``detected`` or with fewer than :data:`MIN_BONES` measurable bones.
    """
    kps = np.asarray(keypoints, dtype=np.float64)
    detected = np.asarray(detected, bool)
    seen = keypoint_valid(kps, threshold) & detected[:, None]
    a, b = np.array(SCALE_BONES).T
    lengths = np.linalg.norm(kps[:, a, :2] - kps[:, b, :2], axis=-1)  # (T, bones)
    lengths[~(seen[:, a] & seen[:, b]) | ~(lengths > 0)] = np.nan
    typical = np.full(len(SCALE_BONES), np.nan)
    measured = np.isfinite(lengths).any(axis=0)
    typical[measured] = np.nanmedian(lengths[:, measured], axis=0)
    ratio = lengths / typical
    count = np.isfinite(ratio).sum(axis=1)
    scales = np.full(len(kps), np.nan)
    enough = count >= MIN_BONES
    if enough.any():
        scales[enough] = np.nanmedian(ratio[enough], axis=1)
    return scales


def implausible_frames(keypoints: np.ndarray, detected: np.ndarray, fps: float, *,
                       max_jump: float = DEFAULT_MAX_JUMP, window_s: float = DEFAULT_WINDOW_S) -> np.ndarray:
    """Detected frames whose body size jumps away from the detections around them.

    Args:
        keypoints: ``(T, K, 3)`` keypoints.
        detected: ``(T,)`` bool, the detector's hits (only these are judged and compared with).
        fps: frame rate of the sequence, to turn ``window_s`` into frames.
        max_jump: largest accepted ratio (> 1) between a frame's relative scale and the median of its
            neighbours'. Default :data:`DEFAULT_MAX_JUMP`.
        window_s: neighbours are the other measured detections at most this many seconds away.

    Returns:
        ``(T,)`` bool, True for the rejected frames.
    """
    if not max_jump > 1.0:
        raise ConfigError(f"max_jump must be > 1, got {max_jump!r}")
    if not (window_s > 0 and fps > 0):
        raise ConfigError(f"window_s and fps must be positive, got window_s={window_s!r} fps={fps!r}")
    log_scale = np.log(relative_scales(keypoints, detected))
    frames = np.flatnonzero(np.isfinite(log_scale))
    bad = np.zeros(len(log_scale), bool)
    reach = window_s * fps
    limit = np.log(max_jump)
    lo = np.searchsorted(frames, frames - reach, side="left")
    hi = np.searchsorted(frames, frames + reach, side="right")
    for i, t in enumerate(frames):
        near = np.concatenate([frames[lo[i]:i], frames[i + 1:hi[i]]])
        if len(near) >= MIN_NEIGHBOURS and abs(log_scale[t] - np.median(log_scale[near])) > limit:
            bad[t] = True
    return bad
