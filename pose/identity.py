"""Keep following the same person when another one passes in front of them.

mediapipe Holistic tracks one person from frame to frame. When a second person crosses in front of the
one it follows, the tracker can slide onto the one in front and stay with them: on a clip of two dancers
crossing (``tests/test_identity.py`` builds it from ``tests/data/dance_short.mp4``), it followed the
dancer in the red skirt up to the crossing and the one in the blue skirt after it, with no jump large
enough for the position checks to notice, since the two bodies overlap when it happens.

Their clothes tell them apart. For every detection, :func:`appearance` takes a colour histogram of the torso
and thighs (hue and saturation of coloured pixels, brightness of grey ones). The person followed is the one
seen in the first detections (:func:`reference_appearance`). :func:`stranger_runs` finds the runs of
detections that look unlike them, and :func:`recover_runs` detects each run again with the stranger painted
over (:func:`cover_person`). When someone who looks like the followed person turns up there, the run's poses
become theirs, and its frames where they are not found (hidden behind the other person) are marked missing;
up to :data:`BRIDGE_SECONDS` of them between two sightings are interpolated (:func:`bridge_hidden`: they
walk on behind the other), longer spans are filled like any other miss. When the followed person stays
hidden for the whole run and the tracker comes back to them by itself after it, the frames after the run are
detected again with the followed person painted over: the stranger found there, apart from them, shows that
the run was the stranger, and its frames are marked missing too. When nobody like them is found (the same
person in other light, or turned around in a top whose back differs), the run is left as it was: only a
second person who matches better moves the track. A video with one person costs one histogram per detection
(0.8 ms on the dance's 960-px frames). The detection again runs in the calling process; once it has run a
mediapipe graph there, later extractions in that process spawn their workers instead of forking them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np

from . import layout
from .sequence import FrameStatus, PoseFrame, keypoint_valid

HUE_BINS = 16
"""Hue bins of the coloured pixels' histogram."""
SATURATION_BINS = 4
"""Saturation bins of the coloured pixels' histogram (from :data:`GREY_SATURATION` to 255)."""
GREY_BINS = 8
"""Brightness bins of the grey (unsaturated or dark) pixels' histogram."""
SIGNATURE_SIZE = HUE_BINS * SATURATION_BINS + GREY_BINS
"""Length of an :func:`appearance` vector."""
GREY_SATURATION = 50
"""Pixels below this saturation (0-255) have no reliable hue: they count by brightness."""
DARK_VALUE = 40
"""Pixels below this brightness (0-255) count by brightness too."""
TORSO_SHRINK = 0.7
"""The torso's quadrilateral (shoulders, hips) shrunk about its centre to this fraction: its sides hold arms
and background when the person turns."""
THIGH_WIDTH = 0.2
"""Width of the strips sampled along the thighs, in torso lengths (neck to mid-hip)."""
MIN_PIXELS = 30
"""Fewer sampled pixels than this give no signature."""
SAMPLE_PIXELS = 8000
"""Pixels sampled at most (on a regular grid): a histogram of 72 bins needs no more, and the detector's
960-px frames would otherwise cost 2.8 ms a detection instead of 0.8."""
REFERENCE_DETECTIONS = 8
"""The followed person's look is the mean of this many first detections with a signature."""
STRANGER = 0.45
"""Hellinger distance to the followed person's look above which a detection looks like someone else. On the
bundled dance (one dancer, 12 s, turning and raising her arms) the distance stays below 0.28; after the
tracker slid onto the other dancer of the crossing clip it is 0.64-0.71."""
SIMILAR = 0.25
"""A run of strangers goes on over neighbouring detections above this distance, and a detection found again
counts as the followed person below it."""
MIN_STRANGERS = 2
"""Detections above :data:`STRANGER` a run needs."""
PROBE_SECONDS = 4.0
"""A run is given up (left as it was) when nobody like the followed person is found within this many seconds
of its start. Two people crossing overlap for about a second at walking pace (1.1 s on the crossing clip,
whose dancers pass within 27 frames at 24 fps); a false alarm (the followed person in other light) costs
the detections of this long."""
GIVE_UP_AFTER_RUNS = 3
"""After this many runs in which the followed person was not found elsewhere, the remaining runs are kept
without looking (the person's look keeps changing, e.g. under stage lights: nobody else is there)."""
MIN_FOUND = 2
"""Detections of the followed person a run needs before its poses are replaced (one could be a fluke)."""
COVER_MARGIN = 0.35
"""Margin around the covered person's keypoints painted over, in torso lengths (hair, clothes, hands beyond
the joints)."""
BRIDGE_SECONDS = 3.0
"""Frames where the followed person is hidden behind the other, between two frames where they are seen, are
interpolated from those two over at most this long (they walk on behind the other person); longer spans are
filled like any miss (held)."""
MIN_SHIFT = 0.5
"""A person found on a covered frame must stand this many torso lengths away from the person covered (else
it is the covered person seen past the cover's edge)."""

_TORSO_QUAD = [layout.B[n] for n in ("right_shoulder", "left_shoulder", "left_hip", "right_hip")]
_THIGHS = [(layout.B["right_hip"], layout.B["right_knee"]), (layout.B["left_hip"], layout.B["left_knee"])]
_BODY = slice(0, layout.NUM_BODY + layout.NUM_FEET)


def _torso(keypoints: np.ndarray, threshold: float) -> tuple[np.ndarray, float] | None:
    """Torso corners ``(4, 2)`` (right/left shoulder, left/right hip) and length, or None when one is unseen."""
    quad = keypoints[_TORSO_QUAD]
    if not keypoint_valid(quad, threshold).all():
        return None
    corners = quad[:, :2].astype(np.float64)
    length = float(np.linalg.norm(corners[:2].mean(axis=0) - corners[2:].mean(axis=0)))
    return (corners, length) if length > 1.0 else None


def appearance(rgb: np.ndarray, keypoints: np.ndarray, threshold: float = 0.3) -> np.ndarray | None:
    """Colour signature of the person whose keypoints are given, or None when their torso is not seen.

    Args:
        rgb: ``(H, W, 3)`` uint8 frame the keypoints were detected on.
        keypoints: ``(K, 3)`` keypoints in ``rgb``'s pixels (:mod:`pose.layout`).
        threshold: minimum score of the shoulders, hips and knees used.

    Returns:
        ``(SIGNATURE_SIZE,)`` float32 histogram summing to 1: hue x saturation of the coloured pixels, then
        brightness of the grey ones, over the shrunk torso and strips along the thighs.
    """
    torso = _torso(keypoints, threshold)
    if torso is None:
        return None
    corners, length = torso
    h, w = rgb.shape[:2]
    centre = corners.mean(axis=0)
    quad = centre + TORSO_SHRINK * (corners - centre)
    strips = []
    for hip, knee in _THIGHS:
        a, b = keypoints[hip], keypoints[knee]
        if keypoint_valid(b, threshold):
            strips.append((a[:2] + 0.15 * (b[:2] - a[:2]), a[:2] + 0.85 * (b[:2] - a[:2])))
    pad = THIGH_WIDTH * length
    pts = np.concatenate([quad, *[np.asarray(s) for s in strips]]) if strips else quad
    x0, y0 = np.floor(pts.min(axis=0) - pad).astype(int)
    x1, y1 = np.ceil(pts.max(axis=0) + pad).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    offset = np.array([x0, y0])
    cv2.fillConvexPoly(mask, np.round(quad - offset).astype(np.int32), 1)
    thickness = max(1, round(THIGH_WIDTH * length))
    for a, b in strips:
        cv2.line(mask, tuple(int(v) for v in np.round(a - offset)), tuple(int(v) for v in np.round(b - offset)),
                 1, thickness)
    stride = max(1, int(np.sqrt(mask.size / SAMPLE_PIXELS)))
    sel = mask[::stride, ::stride].astype(bool)
    if int(sel.sum()) < MIN_PIXELS:
        return None
    crop = np.ascontiguousarray(rgb[y0:y1:stride, x0:x1:stride])
    hsv = cv2.cvtColor(crop, cv2.COLOR_RGB2HSV)[sel].astype(np.int32)
    hue, sat, val = hsv[:, 0], hsv[:, 1], hsv[:, 2]
    grey = (sat < GREY_SATURATION) | (val < DARK_VALUE)
    colour_bin = (np.minimum(hue * HUE_BINS // 180, HUE_BINS - 1) * SATURATION_BINS
                  + np.minimum((sat - GREY_SATURATION) * SATURATION_BINS // (256 - GREY_SATURATION),
                               SATURATION_BINS - 1))
    bins = np.where(grey, HUE_BINS * SATURATION_BINS + val * GREY_BINS // 256, colour_bin)
    hist = np.bincount(bins, minlength=SIGNATURE_SIZE).astype(np.float32)
    return hist / hist.sum()


def appearance_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Hellinger distance of two :func:`appearance` signatures: 0 for the same colours, 1 for none shared."""
    return float(np.sqrt(max(0.0, 1.0 - float(np.sum(np.sqrt(np.asarray(p, np.float64) * q))))))


def reference_appearance(signatures: np.ndarray) -> np.ndarray | None:
    """The followed person's look: the mean of the first :data:`REFERENCE_DETECTIONS` signatures.

    Args:
        signatures: ``(T, SIGNATURE_SIZE)``, NaN rows where a frame has none.
    """
    have = np.flatnonzero(np.all(np.isfinite(signatures), axis=1))[:REFERENCE_DETECTIONS]
    if len(have) == 0:
        return None
    ref = signatures[have].mean(axis=0)
    return ref / ref.sum()


def distances_to(reference: np.ndarray, signatures: np.ndarray) -> np.ndarray:
    """``(T,)`` :func:`appearance_distance` of each signature to ``reference``; NaN where a frame has none."""
    out = np.full(len(signatures), np.nan)
    for t in np.flatnonzero(np.all(np.isfinite(signatures), axis=1)):
        out[t] = appearance_distance(reference, signatures[t])
    return out


def stranger_runs(distances: np.ndarray) -> list[tuple[int, int]]:
    """Runs ``(first, last)`` (inclusive positions) of detections that look like someone else.

    A run is a maximal stretch of signatures above :data:`SIMILAR` (positions without one, NaN, neither
    break nor end it) holding at least :data:`MIN_STRANGERS` above :data:`STRANGER`.
    """
    have = np.flatnonzero(np.isfinite(distances))
    runs: list[tuple[int, int]] = []
    current: list[int] = []
    for t in [*have, None]:
        if t is not None and distances[t] > SIMILAR:
            current.append(int(t))
            continue
        if current and int(np.sum(distances[current] > STRANGER)) >= MIN_STRANGERS:
            runs.append((current[0], current[-1]))
        current = []
    return runs


def cover_person(rgb: np.ndarray, keypoints: np.ndarray, threshold: float = 0.3) -> np.ndarray:
    """A copy of ``rgb`` with the person whose keypoints are given painted over (mean colour of the frame).

    The box of their body and feet keypoints, grown by :data:`COVER_MARGIN` torso lengths (a fifth of the
    box's height when the torso is unseen), is filled; ``rgb`` itself is not modified.
    """
    body = keypoints[_BODY]
    seen = keypoint_valid(body, threshold)
    out = rgb.copy()
    if not seen.any():
        return out
    pts = body[seen, :2]
    torso = _torso(keypoints, threshold)
    margin = COVER_MARGIN * torso[1] if torso is not None else 0.2 * float(np.ptp(pts[:, 1]))
    h, w = rgb.shape[:2]
    x0, y0 = np.floor(pts.min(axis=0) - margin).astype(int)
    x1, y1 = np.ceil(pts.max(axis=0) + margin).astype(int)
    out[max(y0, 0):min(y1, h), max(x0, 0):min(x1, w)] = np.round(rgb.reshape(-1, 3).mean(axis=0)).astype(np.uint8)
    return out


@dataclass
class RunResult:
    """What :func:`recover_runs` did with one run of strangers (positions inclusive)."""

    first: int
    last: int
    recovered: list[int] = field(default_factory=list)
    """Positions where the followed person was found again."""
    hidden: list[int] = field(default_factory=list)
    """Positions of the run where they were not found (marked missing)."""
    kept: bool = False
    """True when the run was left as it was: the followed person was not found (fewer than :data:`MIN_FOUND`
    times within :data:`PROBE_SECONDS`), nor the stranger apart from them after the run."""
    other_seen: bool = False
    """True when the run's stranger was seen apart from the followed person just after the run (the tracker
    came back by itself): the whole run showed the stranger, and the followed person was hidden."""


def recover_runs(
    runs: list[tuple[int, int]],
    keypoints: np.ndarray,
    status: np.ndarray,
    keyframe: np.ndarray,
    reference: np.ndarray,
    frames: Callable[[int, int], Iterator[tuple[int, np.ndarray, tuple[float, float]]]],
    detector_factory: Callable[[], Callable[[np.ndarray], PoseFrame]],
    fps: float,
    looks: np.ndarray | None = None,
) -> list[RunResult]:
    """Detect each run of strangers again with the stranger painted over; edits ``keypoints``/``status``.

    When the followed person turns up (at least :data:`MIN_FOUND` times within :data:`PROBE_SECONDS` of the
    run's start), the run's keyframes take their poses, and those where they do not are marked missing.
    When they do not, but the tracker came back to them by itself after the run, the frames just after it
    are searched the other way round, with the followed person painted over: if the stranger is found there,
    apart from them, the run showed the stranger while the followed person was hidden, and all of its
    keyframes are marked missing.

    Args:
        runs: from :func:`stranger_runs` (sequence positions, inclusive).
        keypoints: ``(T, K, 3)`` in source pixels; replaced in place on the run's keyframes when the run is
            recovered.
        status: ``(T,)`` :class:`FrameStatus` values, edited in place alike.
        keyframe: ``(T,)`` bool, the positions the detector ran on (only those are detected again).
        reference: the followed person's look (:func:`reference_appearance`).
        frames: ``frames(first, last)`` yields ``(position, rgb, (sx, sy))`` for the positions
            ``first..last``: the frame as given to the detector and the factors from its pixels to source
            pixels.
        detector_factory: makes a fresh detector (tracking from frame to frame) for each search.
        fps: frame rate of the positions (for :data:`PROBE_SECONDS`).
        looks: ``(T, SIGNATURE_SIZE)`` signatures of the detections (NaN rows where none): the stranger's
            look is their mean over the run. Without them only the followed person is searched for.

    Returns:
        One :class:`RunResult` per run.
    """
    results = []
    fruitless = 0
    probe = max(1, round(PROBE_SECONDS * fps))
    for first, last in runs:
        result = RunResult(first, last)
        results.append(result)
        if fruitless >= GIVE_UP_AFTER_RUNS:
            result.kept = True
            continue
        found = _covered_search(first, last, keypoints, status, keyframe, frames, detector_factory,
                                looks_right=lambda rgb, kp: _distance(rgb, kp, reference) <= SIMILAR,
                                stop=lambda pos, hits, give_up=first + probe: len(hits) < MIN_FOUND and pos >= give_up)
        if len(found) >= MIN_FOUND:
            hidden = [pos for pos in range(first, last + 1) if keyframe[pos] and pos not in found]
            for pos, kp in found.items():
                keypoints[pos] = kp
                status[pos] = FrameStatus.DETECTED
            _mark_missing(keypoints, status, hidden)
            result.recovered, result.hidden = sorted(found), hidden
            continue
        stranger = None if looks is None else _stranger_look(looks[first:last + 1], reference)
        after = min(len(status) - 1, last + probe)
        if stranger is not None and last + 1 <= after:
            # the stranger's look is the mean over the run, which mixes in some of the followed person where
            # the two overlapped: closer to it than to the followed person, and within STRANGER, will do
            apart = _covered_search(last + 1, after, keypoints, status, keyframe, frames, detector_factory,
                                    looks_right=lambda rgb, kp, look=stranger: _is_stranger(rgb, kp, look, reference),
                                    stop=lambda pos, hits: len(hits) >= MIN_FOUND)
            if len(apart) >= MIN_FOUND:
                hidden = [pos for pos in range(first, last + 1) if keyframe[pos]]
                _mark_missing(keypoints, status, hidden)
                result.hidden, result.other_seen = hidden, True
                continue
        fruitless += 1
        result.kept = True
    return results


def _covered_search(first: int, last: int, keypoints: np.ndarray, status: np.ndarray, keyframe: np.ndarray,
                    frames: Callable, detector_factory: Callable, looks_right: Callable[[np.ndarray, np.ndarray], bool],
                    stop: Callable[[int, dict], bool]) -> dict[int, np.ndarray]:
    """Detect the keyframes ``first..last`` again with the person tracked there painted over; the poses (in
    source pixels) of those where someone for whom ``looks_right(rgb, keypoints)`` holds stands apart from
    them. ``stop(position, hits so far)`` ends the search early."""
    hits: dict[int, np.ndarray] = {}
    detect = detector_factory()
    stream = frames(first, last)
    try:
        for pos, rgb, (sx, sy) in stream:
            if stop(pos, hits):
                break
            if not keyframe[pos]:
                continue
            tracked = keypoints[pos].copy()
            tracked[:, 0] /= sx
            tracked[:, 1] /= sy
            is_detected = status[pos] == FrameStatus.DETECTED
            frame = detect(cover_person(rgb, tracked) if is_detected else rgb)
            if frame.has_person and looks_right(rgb, frame.keypoints) and _apart(frame.keypoints,
                                                                                tracked if is_detected else None):
                kp = frame.keypoints.copy()
                kp[:, 0] *= sx
                kp[:, 1] *= sy
                hits[pos] = kp
    finally:
        for closable in (stream, detect):
            close = getattr(closable, "close", None)
            if close is not None:
                close()
    return hits


def _mark_missing(keypoints: np.ndarray, status: np.ndarray, positions: list[int]) -> None:
    for pos in positions:
        keypoints[pos] = np.nan
        keypoints[pos, :, 2] = 0.0
        status[pos] = FrameStatus.MISSING


def _stranger_look(looks: np.ndarray, reference: np.ndarray) -> np.ndarray | None:
    """Mean signature of the detections that look like someone else (above :data:`STRANGER`), or None."""
    rows = [sig for sig in looks if np.all(np.isfinite(sig)) and appearance_distance(reference, sig) > STRANGER]
    if not rows:
        return None
    mean = np.mean(rows, axis=0)
    return mean / mean.sum()


def _distance(rgb: np.ndarray, keypoints: np.ndarray, reference: np.ndarray) -> float:
    sig = appearance(rgb, keypoints)
    return np.inf if sig is None else appearance_distance(reference, sig)


def _is_stranger(rgb: np.ndarray, found: np.ndarray, stranger: np.ndarray, reference: np.ndarray) -> bool:
    """Whether ``found`` looks like the stranger (within :data:`STRANGER`, and closer than to the followed)."""
    d = _distance(rgb, found, stranger)
    return d <= STRANGER and d < _distance(rgb, found, reference)


def _apart(found: np.ndarray, covered: np.ndarray | None) -> bool:
    """Whether the person ``found`` on a covered frame stands away from the person covered (when any): more
    than :data:`MIN_SHIFT` torso lengths between their torsos' centres (else it is the covered person seen
    through the cover's edge)."""
    if covered is None:
        return True
    mine, theirs = _torso(found, 0.3), _torso(covered, 0.3)
    if mine is None or theirs is None:
        return False
    shift = np.linalg.norm(mine[0].mean(axis=0) - theirs[0].mean(axis=0))
    return float(shift) > MIN_SHIFT * mine[1]


def bridge_hidden(keypoints: np.ndarray, status: np.ndarray, results: Iterable[RunResult], max_frames: int) -> int:
    """Interpolate the followed person across the frames where they were hidden; edits the arrays in place.

    Every stretch of ``MISSING`` frames (after the keyframes' in-betweens were filled) that reaches into a
    recovered run, lies between two frames with the person and is at most ``max_frames`` long is filled by
    linear interpolation of the keypoints seen in both bounding frames (others stay missing) and gets status
    ``INTERPOLATED``: the character walks on behind the other dancer instead of freezing and jumping.

    Args:
        keypoints: ``(T, K, 3)``.
        status: ``(T,)`` :class:`FrameStatus` values.
        results: from :func:`recover_runs` (kept runs are skipped).
        max_frames: longest stretch interpolated (:data:`BRIDGE_SECONDS` x the frame rate).

    Returns:
        The number of frames filled.
    """
    seen = np.isin(status, (FrameStatus.DETECTED, FrameStatus.INTERPOLATED))
    recovered = [(r.first, r.last) for r in results if r.hidden]
    # stretches [begin, end) of MISSING frames; one starts before its run's first hidden keyframe
    edges = np.flatnonzero(np.diff(np.concatenate([[0], status == FrameStatus.MISSING, [0]]).astype(np.int8)))
    filled = 0
    for begin, end in edges.reshape(-1, 2):
        a, b = begin - 1, end  # the frames with the person around the stretch
        if (a < 0 or b >= len(status) or not seen[a] or not seen[b] or end - begin > max_frames
                or not any(begin <= last and first < end for first, last in recovered)):
            continue
        both = keypoint_valid(keypoints[[a, b]]).all(axis=0)
        w = (np.arange(1, b - a, dtype=np.float32) / (b - a))[:, None, None]
        span = np.full((b - a - 1, keypoints.shape[1], 3), np.nan, np.float32)
        span[:, both] = (1.0 - w) * keypoints[a, both] + w * keypoints[b, both]
        span[:, ~both, 2] = 0.0
        keypoints[a + 1:b] = span
        status[a + 1:b] = FrameStatus.INTERPOLATED
        filled += b - a - 1
    return filled


def describe(results: Iterable[RunResult], start: int, step: int) -> list[dict]:
    """JSON-ready summary of :func:`recover_runs`' results in source frame numbers (for ``meta``)."""
    return [{"frames": [start + r.first * step, start + r.last * step], "recovered": len(r.recovered),
             "hidden": len(r.hidden), "kept": r.kept, "other_seen": r.other_seen} for r in results]
