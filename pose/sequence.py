"""Pose data: :class:`PoseFrame` (one person, one frame) and :class:`PoseSequence` (a video's worth).

Coordinate convention (used everywhere in posedrive):
    ``x, y`` are pixel coordinates in the image the pose belongs to (``width`` x ``height``), origin at
    the top-left corner, ``+x`` to the right, ``+y`` down; the centre of the top-left pixel is (0.5, 0.5)
    in continuous terms but posedrive simply uses OpenCV's convention (pixel ``(i, j)`` at ``x=j, y=i``).
    Each keypoint carries a ``score`` in [0, 1]; a missing keypoint has score 0 and ``x = y = NaN``.

The keypoint layout is :mod:`pose.layout` (134 whole-body keypoints).
"""

from __future__ import annotations

import copy
import enum
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import layout
from .errors import InputError


class FrameStatus(enum.IntEnum):
    """How a frame's pose was obtained."""

    DETECTED = 0      # detector found the person in this frame
    INTERPOLATED = 1  # short gap filled by interpolating neighbouring detections
    HELD = 2          # long gap: the last (or first) detected pose is held
    MISSING = 3       # no detection and not (yet) filled
    MANUAL = 4        # given by the user (override file / edited)


#: Statuses of frames whose pose was found (detected, or given by the user), not filled in.
POSE_FOUND = (FrameStatus.DETECTED, FrameStatus.MANUAL)


def empty_keypoints(n: int | None = None) -> np.ndarray:
    """Keypoint array with every keypoint missing.

    Args:
        n: number of frames; ``None`` gives one frame.

    Returns:
        ``(K, 3)`` or ``(n, K, 3)`` float32 array, ``x = y = NaN``, score 0.
    """
    shape = (layout.NUM_KEYPOINTS, 3) if n is None else (n, layout.NUM_KEYPOINTS, 3)
    kps = np.full(shape, np.nan, dtype=np.float32)
    kps[..., 2] = 0.0
    return kps


def body_confidence(keypoints: np.ndarray) -> np.ndarray:
    """``(T,)`` float32 confidence of ``(T, K, 3)`` poses: the mean score of the body keypoints (0 for missing)."""
    return np.nan_to_num(np.asarray(keypoints)[:, layout.BODY, 2]).mean(axis=1).astype(np.float32)


def keypoint_valid(keypoints: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """``(..., K)`` bool mask of usable keypoints: finite ``x``, ``y`` and a score above the threshold.

    Args:
        keypoints: ``(..., K, 3)`` ``[x, y, score]`` array.
        threshold: minimum score (inclusive); ``None`` means "present at all" (score > 0).
    """
    kps = np.asarray(keypoints)
    score = np.nan_to_num(kps[..., 2])
    ok = score > 0 if threshold is None else score >= threshold
    return ok & np.isfinite(kps[..., :2]).all(axis=-1)


_MAX_STATUS = max(FrameStatus)


def _check_status(status: object) -> FrameStatus:
    """One frame's status as a :class:`FrameStatus`; an unknown code is an :class:`InputError`."""
    try:
        return FrameStatus(status)
    except ValueError:
        raise InputError(f"pose frame status must be a FrameStatus code 0..{int(_MAX_STATUS)} "
                         f"({', '.join(s.name.lower() for s in FrameStatus)}), got {status!r}") from None


def _check_statuses(status: object) -> np.ndarray:
    """``(n,)`` uint8 status codes; unknown codes (negative, too large, fractional) are an :class:`InputError`."""
    raw = np.asarray(status).reshape(-1)
    if raw.dtype == np.uint8:  # the usual case: one comparison
        if raw.size and raw.max() > _MAX_STATUS:
            bad = int(np.argmax(raw > _MAX_STATUS))
            raise InputError(f"pose sequence status[{bad}] is {int(raw[bad])}, not a FrameStatus code "
                             f"0..{int(_MAX_STATUS)}; use FrameStatus values")
        return raw
    if raw.dtype.kind not in "biuf":
        raise InputError(f"pose sequence status must hold FrameStatus codes 0..{int(_MAX_STATUS)}, got {raw.dtype} "
                         f"values")
    ok = (raw >= 0) & (raw <= _MAX_STATUS)
    if raw.dtype.kind == "f":
        ok &= raw == np.floor(raw)
    if not ok.all():
        bad = int(np.argmin(ok))
        raise InputError(f"pose sequence status[{bad}] is {raw[bad]!r}, not a FrameStatus code 0..{int(_MAX_STATUS)}; "
                         f"use FrameStatus values")
    return raw.astype(np.uint8)


def _check_keypoints(kps: np.ndarray, ndim: int) -> np.ndarray:
    kps = np.asarray(kps, dtype=np.float32)
    if kps.ndim != ndim or kps.shape[-2:] != (layout.NUM_KEYPOINTS, 3):
        want = "(K, 3)" if ndim == 2 else "(T, K, 3)"
        raise InputError(f"keypoints must have shape {want} with K={layout.NUM_KEYPOINTS}, got {kps.shape}")
    return kps


@dataclass
class PoseFrame:
    """One person's whole-body pose in one image.

    Attributes:
        keypoints: ``(134, 3)`` float32 ``[x, y, score]`` in pixels (see module docstring).
        width: image width in pixels.
        height: image height in pixels.
        status: how the pose was obtained.
    """

    keypoints: np.ndarray
    width: int
    height: int
    status: FrameStatus = FrameStatus.DETECTED

    def __post_init__(self) -> None:
        self.keypoints = _check_keypoints(self.keypoints, 2)
        self.width, self.height = int(self.width), int(self.height)
        if self.width <= 0 or self.height <= 0:
            raise InputError(f"pose frame size must be positive, got {self.width}x{self.height}; give the size "
                             f"of the image the pose belongs to")
        self.status = _check_status(self.status)

    @classmethod
    def empty(cls, width: int, height: int) -> PoseFrame:
        """A frame with no keypoints (status ``MISSING``)."""
        return cls(empty_keypoints(), width, height, FrameStatus.MISSING)

    # --- parts -------------------------------------------------------------------------------------
    def part(self, name: str) -> np.ndarray:
        """Keypoints of one part (``body``, ``feet``, ``face``, ``left_hand``, ``right_hand``), a view."""
        return self.keypoints[layout.PARTS[name]]

    @property
    def body(self) -> np.ndarray:
        """``(18, 3)`` OpenPose-18 body keypoints (a view)."""
        return self.keypoints[layout.BODY]

    @property
    def xy(self) -> np.ndarray:
        """``(134, 2)`` coordinates (a view)."""
        return self.keypoints[:, :2]

    @property
    def scores(self) -> np.ndarray:
        """``(134,)`` scores (a view)."""
        return self.keypoints[:, 2]

    def visible(self, threshold: float = 0.3) -> np.ndarray:
        """``(134,)`` bool mask of keypoints with score >= ``threshold`` and finite coordinates."""
        return keypoint_valid(self.keypoints, threshold)

    @property
    def has_person(self) -> bool:
        """True when at least two body keypoints are visible."""
        return int(self.visible()[layout.BODY].sum()) >= 2

    def confidence(self) -> float:
        """Mean body-keypoint score (0 when no person)."""
        return float(np.nan_to_num(self.body[:, 2]).mean())

    # --- geometry ----------------------------------------------------------------------------------
    def bbox(self, threshold: float = 0.3) -> tuple[float, float, float, float] | None:
        """``(x0, y0, x1, y1)`` of visible keypoints, or ``None`` when none is visible."""
        vis = self.visible(threshold)
        if not vis.any():
            return None
        pts = self.xy[vis]
        return float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())

    def transformed(self, matrix: np.ndarray, width: int | None = None, height: int | None = None) -> PoseFrame:
        """Apply a 2x3 affine ``matrix`` to every keypoint (scores kept).

        Args:
            matrix: ``(2, 3)`` affine map from this frame's pixels to the new image's pixels.
            width, height: size of the new image (default: unchanged).
        """
        m = np.asarray(matrix, dtype=np.float64)
        xy = self.xy.astype(np.float64)
        new = self.keypoints.copy()
        new[:, :2] = (xy @ m[:, :2].T + m[:, 2]).astype(np.float32)
        return PoseFrame(new, width or self.width, height or self.height, self.status)

    def resized(self, width: int, height: int) -> PoseFrame:
        """Map the pose onto a ``width`` x ``height`` canvas, scaled to fit and centred (aspect kept)."""
        return self.transformed(fit_matrix(self.width, self.height, width, height), width, height)

    def mirrored(self) -> PoseFrame:
        """Horizontal mirror image, with left/right keypoints swapped so the labels stay correct."""
        new = self.keypoints[layout.flip_permutation()].copy()
        new[:, 0] = self.width - new[:, 0]
        return PoseFrame(new, self.width, self.height, self.status)

    def copy(self) -> PoseFrame:
        return PoseFrame(self.keypoints.copy(), self.width, self.height, self.status)


def fit_matrix(src_w: int, src_h: int, dst_w: int, dst_h: int, *, cover: bool = False) -> np.ndarray:
    """2x3 affine map that scales a ``src`` image to fit inside ``dst`` (aspect kept) and centres it.

    With ``cover=True`` it scales to cover ``dst`` instead (the overflowing borders fall outside).

    Raises:
        InputError: a size is not positive.
    """
    if not (src_w > 0 and src_h > 0 and dst_w > 0 and dst_h > 0):
        raise InputError(f"cannot map a {src_w}x{src_h} image onto {dst_w}x{dst_h}: sizes must be positive")
    s = (max if cover else min)(dst_w / src_w, dst_h / src_h)
    return np.array([[s, 0.0, (dst_w - s * src_w) / 2.0], [0.0, s, (dst_h - s * src_h) / 2.0]])


def _whole_number(value: Any) -> bool:
    """An int (not a bool) or numpy integer."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


@dataclass
class PoseSequence:
    """Whole-body poses of one person over the frames of a video.

    Attributes:
        keypoints: ``(T, 134, 3)`` float32 ``[x, y, score]`` in pixels of a ``width`` x ``height`` frame.
        width, height: frame size in pixels.
        fps: frames per second of the source.
        status: ``(T,)`` uint8 :class:`FrameStatus` of each frame.
        confidence: ``(T,)`` float32 per-frame detection confidence (mean body score at detection time;
            0 for frames that were filled).
        meta: free-form metadata (source path, detector name, smoothing settings, ...); JSON-serialisable.
    """

    keypoints: np.ndarray
    width: int
    height: int
    fps: float
    status: np.ndarray | None = None
    confidence: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.keypoints = _check_keypoints(self.keypoints, 3)
        n = len(self.keypoints)
        self.width, self.height, self.fps = int(self.width), int(self.height), float(self.fps)
        if self.width <= 0 or self.height <= 0:
            raise InputError(f"pose sequence size must be positive, got {self.width}x{self.height}")
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise InputError(f"pose sequence fps must be a finite number > 0, got {self.fps}")
        if self.status is None:
            self.status = np.full(n, FrameStatus.DETECTED, dtype=np.uint8)
        if self.confidence is None:
            self.confidence = body_confidence(self.keypoints)
        self.status = _check_statuses(self.status)
        self.confidence = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        if len(self.status) != n or len(self.confidence) != n:
            raise InputError(
                f"pose sequence has {n} frames but {len(self.status)} status and {len(self.confidence)} confidence values"
            )

    # --- construction ------------------------------------------------------------------------------
    @classmethod
    def from_frames(cls, frames: Sequence[PoseFrame], fps: float, meta: dict | None = None) -> PoseSequence:
        """Stack frames (all of one size) into a sequence."""
        if not frames:
            raise InputError("cannot build a pose sequence from zero frames")
        w, h = frames[0].width, frames[0].height
        if any((f.width, f.height) != (w, h) for f in frames):
            raise InputError("all frames of a pose sequence must have the same image size")
        kps = np.stack([f.keypoints for f in frames])
        status = np.array([int(f.status) for f in frames], dtype=np.uint8)
        conf = np.array([f.confidence() if f.status == FrameStatus.DETECTED else 0.0 for f in frames], np.float32)
        return cls(kps, w, h, fps, status, conf, dict(meta or {}))

    # --- access ------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.keypoints)

    def __getitem__(self, index: int) -> PoseFrame:
        if not isinstance(index, (int, np.integer)):
            raise TypeError("use PoseSequence.slice(start, stop, step) for ranges")
        return PoseFrame(self.keypoints[index], self.width, self.height, FrameStatus(int(self.status[index])))

    def __iter__(self) -> Iterator[PoseFrame]:
        for i in range(len(self)):
            yield self[i]

    def slice(self, start: int = 0, stop: int | None = None, step: int = 1) -> PoseSequence:
        """Frames ``start:stop:step`` as a new sequence (fps divided by ``step``; ``meta`` deep-copied, with
        the source frame range ``start``/``end``/``step`` of an extraction moved to the frames kept).

        ``start`` and ``stop`` follow Python's slicing rules (negative counts from the end); ``step`` must be
        an integer >= 1.

        Raises:
            InputError: a non-integer index, or ``step < 1``.
        """
        for name, value in (("start", start), ("stop", stop), ("step", step)):
            if value is not None and not _whole_number(value):
                raise InputError(f"PoseSequence.slice {name} must be an integer, got {value!r}")
        if step is None or step < 1:
            hint = ("; to reverse the frames use PoseSequence.from_frames(list(seq)[::-1], seq.fps)"
                    if step is not None and step < 0 else "")
            raise InputError(f"PoseSequence.slice step must be an integer >= 1 (negative steps are not supported), "
                             f"got {step!r}{hint}")
        sl = slice(start, stop, step)
        first = sl.indices(len(self))[0]
        meta = copy.deepcopy(self.meta)
        every = self.detect_every
        if every > 1:
            # carry the keyframe pattern over (see detector_frames): a slice that starts between keyframes keeps
            # it as a phase; one that strides over it keeps it only when it lands on keyframes alone
            phase = (self.detect_phase + first) % every
            meta.pop("detect_phase", None)
            if step == 1:
                if phase:
                    meta["detect_phase"] = phase
            elif step % every == 0 and phase == 0:
                meta["detect_every"] = 1
            else:
                meta.pop("detect_every", None)
        src_start, src_step = meta.get("start"), meta.get("step", 1)
        if _whole_number(src_start) and _whole_number(src_step):
            # the source frames the slice covers, so its frames still map onto the video (and its audio)
            count = len(range(*sl.indices(len(self))))
            meta["start"] = src_start + first * src_step
            meta["step"] = src_step * step
            meta["end"] = meta["start"] + count * meta["step"]
        return PoseSequence(
            self.keypoints[sl].copy(), self.width, self.height, self.fps / step,
            self.status[sl].copy(), self.confidence[sl].copy(), meta,
        )

    def copy(self, keypoints: np.ndarray | None = None, **changes) -> PoseSequence:
        """Deep copy (arrays and ``meta``, nested values included), optionally replacing the keypoints or other
        fields (a replacement is used as given, not copied)."""
        fields = {
            "keypoints": self.keypoints.copy() if keypoints is None else keypoints,
            "width": self.width, "height": self.height, "fps": self.fps,
            "status": self.status.copy() if "status" not in changes else None,
            "confidence": self.confidence.copy() if "confidence" not in changes else None,
            "meta": copy.deepcopy(self.meta) if "meta" not in changes else None,
        }
        fields.update(changes)
        return PoseSequence(**fields)

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self) / self.fps

    @property
    def detect_every(self) -> int:
        """Keyframe stride of the extraction (``meta["detect_every"]``, 1 when absent): the detector ran on
        every ``detect_every``-th frame and the frames in between were interpolated by design."""
        try:
            return max(1, int(self.meta.get("detect_every", 1)))
        except (TypeError, ValueError):
            return 1

    @property
    def detect_phase(self) -> int:
        """Where the keyframe pattern starts: frame ``i`` was a keyframe when ``(i + detect_phase) %
        detect_every == 0`` (``meta["detect_phase"]``, set by :meth:`slice` on a part that starts between
        keyframes; 0 when absent)."""
        try:
            return max(0, int(self.meta.get("detect_phase", 0)))
        except (TypeError, ValueError):
            return 0

    def detector_frames(self) -> np.ndarray:
        """``(T,)`` bool: frames the detector was run on.

        Every frame, unless the sequence was extracted with a keyframe stride ``N = detect_every > 1``; then
        the frames ``(i + detect_phase) % N == 0`` plus any other frame with status ``DETECTED`` (the last
        frame is always detected so that interpolation has an end point).
        """
        every = self.detect_every
        if every == 1:
            return np.ones(len(self), dtype=bool)
        return ((np.arange(len(self)) + self.detect_phase) % every == 0) | (self.status == FrameStatus.DETECTED)

    def detection_rate(self) -> float:
        """Fraction of the frames the detector ran on (:meth:`detector_frames`) in which it found the person
        (or the user gave the pose: ``MANUAL``).

        Frames skipped by design under a keyframe stride are not counted, so the rate does not depend on it.
        """
        ran = self.detector_frames()
        if not ran.any():
            return 0.0
        # a frame counts when it is marked detected (or given by the user) and shows a person (a hand-edited
        # file may mark a frame detected whose keypoints are all missing)
        person = keypoint_valid(self.keypoints[ran][:, layout.BODY]).sum(axis=1) >= 2
        return float(np.mean(np.isin(self.status[ran], POSE_FOUND) & person))

    def gaps(self) -> list[tuple[int, int]]:
        """Runs of frames without a detection, as ``(start, stop)`` half-open index ranges.

        Under a keyframe stride, a run made only of frames the detector was not run on (the in-betweens of
        two detected keyframes) is not a gap.
        """
        missing = ~np.isin(self.status, POSE_FOUND)
        ran = self.detector_frames()
        out: list[tuple[int, int]] = []
        start = None
        for i, m in enumerate(missing):
            if m and start is None:
                start = i
            elif not m and start is not None:
                if ran[start:i].any():
                    out.append((start, i))
                start = None
        if start is not None and ran[start:].any():
            out.append((start, len(self)))
        return out

    def transformed(self, matrix: np.ndarray, width: int | None = None, height: int | None = None) -> PoseSequence:
        """Apply one 2x3 affine map to every frame (see :meth:`PoseFrame.transformed`)."""
        m = np.asarray(matrix, dtype=np.float64)
        kps = self.keypoints.copy()
        xy = kps[..., :2].astype(np.float64)
        kps[..., :2] = (xy @ m[:, :2].T + m[:, 2]).astype(np.float32)
        return self.copy(kps, width=width or self.width, height=height or self.height)

    def resized(self, width: int, height: int) -> PoseSequence:
        """Map every frame onto a ``width`` x ``height`` canvas, scaled to fit and centred."""
        return self.transformed(fit_matrix(self.width, self.height, width, height), width, height)

    def summary(self) -> dict:
        """Numbers a user wants to see first: frames, fps, size, detection rate, gaps."""
        counts = {s.name.lower(): int(np.sum(self.status == s)) for s in FrameStatus}
        ran = self.detector_frames()
        return {
            "frames": len(self),
            "fps": self.fps,
            "duration_s": round(self.duration, 3),
            "size": [self.width, self.height],
            "detection_rate": round(self.detection_rate(), 4),
            "status_counts": counts,
            "gaps": [list(g) for g in self.gaps()],
            # over the frames the detector ran on, like the detection rate (in-betweens have confidence 0)
            "mean_confidence": round(float(self.confidence[ran].mean()) if ran.any() else 0.0, 4),
            "meta": self.meta,
        }
