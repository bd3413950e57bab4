"""Retarget a driving pose sequence onto the reference character's body proportions and canvas.

Method (after MusePose's ``pose_align``, made robust to occlusions):

1. **Calibration.** Limb lengths of the driving person are measured on a calibration frame (``"auto"``:
   the first frame whose 14 main body joints are all visible; an ``int``: that frame; ``"median"``: the
   per-limb median over all frames where the limb is visible). The reference's limb lengths are measured on
   the reference pose. Only keypoints with score >= ``threshold`` are measured.
2. **Ratios.** For every limb (neck, shoulders, upper arms, forearms, torso sides, thighs, shins, eyes,
   ears) ``ratio = reference length / driving length``. A limb not measurable on one side borrows the
   symmetric limb's length on that side; if neither is measurable the *global ratio* is used (sum of
   reference over sum of driving lengths of the limbs measured on both). When a limb and its twin differ
   by more than 20 % on one body, the shorter is taken to be foreshortened and the longer length is used
   for both. Every ratio is clamped to
   ``[global / max_ratio_spread, global * max_ratio_spread]``. Rigid parts get one ratio each: hands (wrist
   to finger-base distances; fallback the forearm ratio), feet (ankle to toe/heel; fallback the shin ratio)
   and the 68-point face (jaw width, eye corners, nose-to-chin; fallback the eye/ear ratios).
3. **Kinematic walk.** In every frame, starting at the neck, each child joint is placed at
   ``parent_out + ratio * (child_drv - parent_drv)``: the driving limb's direction (joint angle) is kept and
   its length rescaled. The result is capped at ``max_stretch`` times the reference's own limb length, so a
   foreshortened calibration limb can never produce over-long ("gorilla") limbs. A joint whose parent is
   missing hangs from its nearest present ancestor. Hands, feet and face move rigidly with the wrist, ankle
   and nose, scaled by their part ratio.
4. **Placement.** The neck's travel (its displacement from the anchor frame) is mapped with the travel
   ratio (``root_motion``: by default the smaller of the global ratio and the scale that fits the driving
   frame onto the canvas), and anchored so the calibration frame's neck lands on the reference's neck
   (``anchor="neck"``) or its lowest ankle lands on the reference's lowest ankle height (``anchor="feet"``,
   x still from the neck).

Missing keypoints (score 0 / NaN) stay missing; scores are carried over unchanged. No division by a
length below ``_MIN_LENGTH`` pixels, so the output never holds inf or NaN for a present keypoint.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import layout
from .errors import ConfigError, InputError, NoPersonError
from .sequence import FrameStatus, PoseFrame, PoseSequence, keypoint_valid

logger = logging.getLogger(__name__)

B = layout.B
_MIN_LENGTH = 1e-3  # pixels; shorter segments are treated as unmeasurable

# (name, parent, child, symmetric limb name) in parent-before-child order, rooted at the neck.
LIMBS: tuple[tuple[str, int, int, str | None], ...] = (
    ("neck", B["neck"], B["nose"], None),
    ("right_shoulder", B["neck"], B["right_shoulder"], "left_shoulder"),
    ("left_shoulder", B["neck"], B["left_shoulder"], "right_shoulder"),
    ("right_upper_arm", B["right_shoulder"], B["right_elbow"], "left_upper_arm"),
    ("left_upper_arm", B["left_shoulder"], B["left_elbow"], "right_upper_arm"),
    ("right_forearm", B["right_elbow"], B["right_wrist"], "left_forearm"),
    ("left_forearm", B["left_elbow"], B["left_wrist"], "right_forearm"),
    ("right_torso", B["neck"], B["right_hip"], "left_torso"),
    ("left_torso", B["neck"], B["left_hip"], "right_torso"),
    ("right_thigh", B["right_hip"], B["right_knee"], "left_thigh"),
    ("left_thigh", B["left_hip"], B["left_knee"], "right_thigh"),
    ("right_shin", B["right_knee"], B["right_ankle"], "left_shin"),
    ("left_shin", B["left_knee"], B["left_ankle"], "right_shin"),
    ("right_eye", B["nose"], B["right_eye"], "left_eye"),
    ("left_eye", B["nose"], B["left_eye"], "right_eye"),
    ("right_ear", B["right_eye"], B["right_ear"], "left_ear"),
    ("left_ear", B["left_eye"], B["left_ear"], "right_ear"),
)
LIMB_NAMES: tuple[str, ...] = tuple(name for name, *_ in LIMBS)
_LIMB_INDEX = {name: i for i, name in enumerate(LIMB_NAMES)}
_CHILD_LIMB = {child: i for i, (_, _, child, _) in enumerate(LIMBS)}
# Limbs whose lengths define the global ratio (the head is left out: detectors place it least reliably).
_CORE_LIMBS = tuple(n for n in LIMB_NAMES if not n.endswith(("_eye", "_ear")))
_MAIN_JOINTS = tuple(range(14))  # nose .. left ankle
SYMMETRY_TOLERANCE = 1.2
"""Left and right limbs measured more than 20 % apart are taken to be foreshortened: the longer one counts."""


@dataclass(frozen=True)
class RigidPart:
    """A group of keypoints carried rigidly by one body joint and scaled by one ratio.

    Attributes:
        name: ratio name.
        indices: keypoint indices (into the 134 layout) of the part.
        anchor: body joint that carries the part.
        pairs: keypoint index pairs whose distances measure the part's size.
        fallback: limb names whose ratios are averaged when the part cannot be measured.
    """

    name: str
    indices: tuple[int, ...]
    anchor: int
    pairs: tuple[tuple[int, int], ...]
    fallback: tuple[str, ...]


def _hand_pairs(start: int) -> tuple[tuple[int, int], ...]:
    return tuple((start, start + j) for j in (1, 5, 9, 13, 17))


_F = layout.FACE.start
_FEET = layout.FEET.start
RIGID_PARTS: tuple[RigidPart, ...] = (
    RigidPart("face", tuple(range(layout.FACE.start, layout.FACE.stop)), B["nose"],
              ((_F + 0, _F + 16), (_F + 36, _F + 45), (_F + 27, _F + 8)), ("right_eye", "left_eye", "right_ear", "left_ear")),
    RigidPart("left_hand", tuple(range(layout.LEFT_HAND.start, layout.LEFT_HAND.stop)), B["left_wrist"],
              _hand_pairs(layout.LEFT_HAND.start), ("left_forearm", "right_forearm")),
    RigidPart("right_hand", tuple(range(layout.RIGHT_HAND.start, layout.RIGHT_HAND.stop)), B["right_wrist"],
              _hand_pairs(layout.RIGHT_HAND.start), ("right_forearm", "left_forearm")),
    RigidPart("left_foot", (_FEET + 0, _FEET + 1, _FEET + 2), B["left_ankle"],
              ((B["left_ankle"], _FEET + 0), (B["left_ankle"], _FEET + 2)), ("left_shin", "right_shin")),
    RigidPart("right_foot", (_FEET + 3, _FEET + 4, _FEET + 5), B["right_ankle"],
              ((B["right_ankle"], _FEET + 3), (B["right_ankle"], _FEET + 5)), ("right_shin", "left_shin")),
)
# Hands and feet are measured as one ratio per kind (the two sides pooled), like the limbs' symmetry rule.
_PART_SYMMETRY = {"left_hand": "right_hand", "right_hand": "left_hand", "left_foot": "right_foot", "right_foot": "left_foot"}


@dataclass
class RetargetParams:
    """Everything :func:`retarget` derived from the calibration (recorded in ``meta["retarget"]``).

    Attributes:
        global_ratio: reference size / driving size.
        limb_ratios: ratio per limb name (:data:`LIMB_NAMES`).
        limb_caps: maximum output length per limb in reference pixels (``inf`` = uncapped).
        part_ratios: ratio per rigid part name.
        calibration_frame: frame used for the lengths (``None`` for ``"median"``).
        anchor_frame: frame whose neck (or feet) is anchored to the reference.
        offset: ``(2,)`` translation added after the global map, in reference pixels.
        driving_root: ``(2,)`` driving neck at the anchor frame (driving pixels).
        reference_root: ``(2,)`` reference neck (reference pixels).
        motion_ratio: scale of the body's travel (the root's displacement from the anchor frame);
            ``None`` = ``global_ratio`` (see ``root_motion`` of :func:`retarget`).
    """

    global_ratio: float
    limb_ratios: dict[str, float]
    limb_caps: dict[str, float]
    part_ratios: dict[str, float]
    calibration_frame: int | None
    anchor_frame: int
    driving_root: np.ndarray
    reference_root: np.ndarray
    offset: np.ndarray = field(default_factory=lambda: np.zeros(2))
    motion_ratio: float | None = None

    def as_dict(self) -> dict:
        """JSON-serialisable form."""
        def r(v: float) -> float | None:
            return round(float(v), 5) if np.isfinite(v) else None

        return {
            "global_ratio": r(self.global_ratio),
            "limb_ratios": {k: r(v) for k, v in self.limb_ratios.items()},
            "limb_caps": {k: r(v) for k, v in self.limb_caps.items()},
            "part_ratios": {k: r(v) for k, v in self.part_ratios.items()},
            "calibration_frame": self.calibration_frame,
            "anchor_frame": self.anchor_frame,
            "offset": [r(v) for v in self.offset],
            "motion_ratio": r(self.global_ratio if self.motion_ratio is None else self.motion_ratio),
        }


# --- measuring -------------------------------------------------------------------------------------------
def _segments() -> list[tuple[int, int]]:
    """All measured segments: the limbs, then every rigid part's pairs."""
    segs = [(p, c) for _, p, c, _ in LIMBS]
    for part in RIGID_PARTS:
        segs.extend(part.pairs)
    return segs


_SEGMENTS = _segments()


def _segment_lengths(kps: np.ndarray, threshold: float) -> np.ndarray:
    """``(..., S)`` segment lengths; NaN where an end is not visible or the length is ~0."""
    vis = keypoint_valid(kps, threshold)
    a = np.array([s[0] for s in _SEGMENTS])
    b = np.array([s[1] for s in _SEGMENTS])
    d = np.linalg.norm(kps[..., a, :2].astype(np.float64) - kps[..., b, :2].astype(np.float64), axis=-1)
    ok = vis[..., a] & vis[..., b] & np.isfinite(d) & (d > _MIN_LENGTH)
    return np.where(ok, d, np.nan)


def _roots(body_kps: np.ndarray, threshold: float | None) -> np.ndarray:
    """``(..., 2)`` neck positions of ``(..., 18, 3)`` body keypoints, else the centroid of the visible body
    joints, NaN where none is visible."""
    kps = np.asarray(body_kps, dtype=np.float64)
    vis = keypoint_valid(kps, threshold)
    count = vis.sum(axis=-1)[..., None]
    centroid = np.where(vis[..., None], kps[..., :2], 0.0).sum(axis=-2) / np.maximum(count, 1)
    centroid = np.where(count > 0, centroid, np.nan)
    return np.where(vis[..., [B["neck"]]], kps[..., B["neck"], :2], centroid)


def _root(body_kps: np.ndarray, threshold: float) -> np.ndarray | None:
    """Neck position, or the centroid of the visible body joints, or ``None``."""
    root = _roots(body_kps, threshold)
    return root if np.isfinite(root).all() else None


def _lowest_ankle_y(kps: np.ndarray, threshold: float) -> float | None:
    ank = [B["right_ankle"], B["left_ankle"]]
    vis = keypoint_valid(kps[ank], threshold)
    return float(np.max(kps[ank][vis, 1])) if vis.any() else None


def _pick_calibration(driving: PoseSequence, calibration: str | int, threshold: float) -> tuple[int | None, int]:
    """Return ``(calibration_frame or None for median, anchor_frame)``."""
    n = len(driving)
    usable = np.isin(driving.status, [int(FrameStatus.DETECTED), int(FrameStatus.MANUAL)])
    vis = keypoint_valid(driving.keypoints[:, layout.BODY], threshold) & usable[:, None]
    n_vis = vis[:, list(_MAIN_JOINTS)].sum(axis=1)
    if not n_vis.any():
        raise NoPersonError("the driving pose sequence has no frame with a visible body; check the driving video")
    best = int(np.argmax(n_vis))
    if isinstance(calibration, (int, np.integer)) and not isinstance(calibration, bool):
        idx = int(calibration)
        if not -n <= idx < n:
            raise ConfigError(f"calibration frame {idx} is outside the driving sequence (0..{n - 1})")
        idx %= n
        if n_vis[idx] < 2:
            raise ConfigError(f"calibration frame {idx} shows no body; pick a frame where the person is visible")
        return idx, idx
    if calibration == "median":
        return None, best
    if calibration == "auto":
        full = np.flatnonzero(n_vis == len(_MAIN_JOINTS))
        if len(full):
            return int(full[0]), int(full[0])
        logger.info("no driving frame shows the whole body; calibrating on per-limb medians")
        return None, best
    raise ConfigError(f"calibration must be 'auto', 'median' or a frame index, got {calibration!r}")


def _robust_length(own: float, sym: float) -> float:
    """Length of a limb given its symmetric twin's: the twin's when unmeasured, and the longer of the two
    when they differ by more than :data:`SYMMETRY_TOLERANCE` (foreshortening only ever shortens a limb)."""
    if not np.isfinite(own):
        return sym
    if np.isfinite(sym) and max(own, sym) > SYMMETRY_TOLERANCE * min(own, sym):
        return max(own, sym)
    return own


def _ratio_or_nan(num: float, den: float) -> float:
    return num / den if np.isfinite(num) and np.isfinite(den) and den > _MIN_LENGTH else float("nan")


def _check_inputs(driving: object, reference: object) -> None:
    """``driving`` must be a :class:`PoseSequence` and ``reference`` a :class:`PoseFrame` (else a TypeError
    saying what to pass)."""
    if isinstance(driving, PoseFrame):
        raise TypeError("retarget's driving poses must be a PoseSequence, got a PoseFrame; wrap a single frame "
                        "with PoseSequence.from_frames([frame], fps)")
    if not isinstance(driving, PoseSequence):
        raise TypeError(f"retarget's driving poses must be a PoseSequence (from extract_poses or load_sequence), "
                        f"got {type(driving).__name__}")
    if isinstance(reference, PoseSequence):
        raise TypeError("retarget's reference must be one PoseFrame, got a PoseSequence; pass one of its frames, "
                        "e.g. seq[0], or detect_image(reference_image)")
    if not isinstance(reference, PoseFrame):
        is_path = isinstance(reference, (str, os.PathLike))
        hint = " (a path? detect its pose first with detect_image(path))" if is_path else ""
        raise TypeError(f"retarget's reference must be a PoseFrame, from detect_image(...) or load_pose_frame(...), "
                        f"got {type(reference).__name__}{hint}")


def _is_number(value: object) -> bool:
    """A real number, not NaN (``inf`` is one: no limit)."""
    return not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating)) \
        and not math.isnan(value)


def check_options(**options: Any) -> None:
    """Check the given keyword options of :func:`retarget` (``calibration``, ``anchor``, ``max_ratio_spread``,
    ``max_stretch``, ``threshold``, ``root_motion``; whether a calibration frame exists is checked against the
    driving sequence later).

    Raises:
        ConfigError: an unknown or bad option; the message names it and the accepted values.
    """
    for name, value in options.items():
        if name == "calibration":
            ok = (isinstance(value, str) and value in ("auto", "median")) or (
                isinstance(value, (int, np.integer)) and not isinstance(value, bool))
            accepted = "'auto', 'median' or a frame index"
        elif name == "anchor":
            ok, accepted = value in ("neck", "feet"), "'neck' or 'feet'"
        elif name in ("max_ratio_spread", "max_stretch"):
            ok, accepted = _is_number(value) and value >= 1.0, "a number >= 1"
        elif name == "threshold":
            ok, accepted = _is_number(value) and 0.0 <= value <= 1.0, "a keypoint score in [0, 1]"
        elif name == "root_motion":
            ok, accepted = value in ROOT_MOTIONS, f"one of {', '.join(ROOT_MOTIONS)}"
        else:
            raise ConfigError(f"retarget has no option {name!r}")
        if not ok:
            raise ConfigError(f"retarget {name} must be {accepted}, got {value!r}")


def compute_params(
    driving: PoseSequence,
    reference: PoseFrame,
    *,
    calibration: str | int = "auto",
    anchor: str = "neck",
    max_ratio_spread: float = 2.5,
    max_stretch: float = 1.15,
    threshold: float = 0.3,
) -> RetargetParams:
    """Measure the driving and reference bodies and derive the ratios (steps 1-2 of the module docstring).

    Arguments are those of :func:`retarget`.
    """
    _check_inputs(driving, reference)
    check_options(calibration=calibration, anchor=anchor, max_ratio_spread=max_ratio_spread,
                  max_stretch=max_stretch, threshold=threshold)
    ref_kps = reference.keypoints.astype(np.float64)
    if int(keypoint_valid(ref_kps[layout.BODY], threshold).sum()) < 2:
        raise NoPersonError("reference pose has fewer than two visible body keypoints; use a clearer reference image")

    calib, anchor_frame = _pick_calibration(driving, calibration, threshold)
    if calib is None:
        usable = np.isin(driving.status, [int(FrameStatus.DETECTED), int(FrameStatus.MANUAL)])
        seg = _segment_lengths(driving.keypoints[usable].astype(np.float64), threshold)
        with np.errstate(all="ignore"):
            drv_seg = np.full(seg.shape[1], np.nan)
            has = np.isfinite(seg).any(axis=0)
            drv_seg[has] = np.nanmedian(seg[:, has], axis=0)
    else:
        drv_seg = _segment_lengths(driving.keypoints[calib].astype(np.float64), threshold)
    ref_seg = _segment_lengths(ref_kps, threshold)
    n_limbs = len(LIMBS)

    # Global ratio from the core limbs measured on both sides.
    core = np.array([_LIMB_INDEX[n] for n in _CORE_LIMBS])
    both = np.isfinite(ref_seg[core]) & np.isfinite(drv_seg[core])
    if both.any():
        g = float(ref_seg[core][both].sum() / drv_seg[core][both].sum())
    else:
        ref_box = reference.bbox(threshold)
        drv_box = driving[anchor_frame].bbox(threshold)
        if ref_box and drv_box and drv_box[3] - drv_box[1] > 1 and ref_box[3] - ref_box[1] > 1:
            g = (ref_box[3] - ref_box[1]) / (drv_box[3] - drv_box[1])
        else:
            g = reference.height / driving.height
        logger.warning("no limb is measurable on both bodies; using a global size ratio of %.3f", g)
    lo, hi = g / max_ratio_spread, g * max_ratio_spread

    limb_ratios: dict[str, float] = {}
    limb_caps: dict[str, float] = {}
    for i, (name, _, _, sym) in enumerate(LIMBS):
        j = _LIMB_INDEX[sym] if sym else i
        ref_len = _robust_length(ref_seg[i], ref_seg[j])
        drv_len = _robust_length(drv_seg[i], drv_seg[j])
        r = _ratio_or_nan(ref_len, drv_len)
        r = float(np.clip(r, lo, hi)) if np.isfinite(r) else g
        limb_ratios[name] = r
        target = ref_len if np.isfinite(ref_len) else (r * drv_len if np.isfinite(drv_len) else np.inf)
        limb_caps[name] = float(max_stretch * target)

    part_ratios: dict[str, float] = {}
    start = n_limbs
    spans = {}
    for part in RIGID_PARTS:
        spans[part.name] = slice(start, start + len(part.pairs))
        start += len(part.pairs)
    for part in RIGID_PARTS:
        names = [part.name] + ([_PART_SYMMETRY[part.name]] if part.name in _PART_SYMMETRY else [])
        r = float("nan")
        for nm in names:  # own measurement first, then the other side's
            sl = spans[nm]
            ok = np.isfinite(ref_seg[sl]) & np.isfinite(drv_seg[sl])
            if ok.any():
                r = _ratio_or_nan(ref_seg[sl][ok].sum(), drv_seg[sl][ok].sum())
                break
        if not np.isfinite(r):
            r = float(np.mean([limb_ratios[n] for n in part.fallback]))
        part_ratios[part.name] = float(np.clip(r, lo, hi))

    ref_root = _root(ref_kps[layout.BODY], threshold)
    drv_root = _root(driving.keypoints[anchor_frame, layout.BODY].astype(np.float64), threshold)
    if ref_root is None or drv_root is None:  # pragma: no cover - excluded by the checks above
        raise NoPersonError("cannot locate the body root (neck) in the reference or driving pose")
    return RetargetParams(g, limb_ratios, limb_caps, part_ratios, calib, anchor_frame, drv_root, ref_root)


#: Accepted values of :func:`retarget`'s ``root_motion``.
ROOT_MOTIONS = ("auto", "body", "frame", "none")

#: With ``root_motion="auto"`` the neck's travel is scaled down, if needed, so that it stays this far (a
#: fraction of the canvas width) inside the canvas's left and right edges, for all but 1 % of the frames at
#: each end of its range.
CANVAS_MARGIN = 0.1


def _on_canvas_ratio(driving: PoseSequence, params: RetargetParams, width: int) -> float:
    """The largest travel ratio that keeps the neck within :data:`CANVAS_MARGIN` of the canvas's sides."""
    neck = driving.keypoints[:, B["neck"]].astype(np.float64)
    seen = keypoint_valid(neck, 0.0)
    if not seen.any():
        return float("inf")
    dx = neck[seen, 0] - params.driving_root[0]
    lo, hi = np.percentile(dx, [1.0, 99.0])
    x = float(params.reference_root[0] + params.offset[0])
    limit = float("inf")
    right, left = (1.0 - CANVAS_MARGIN) * width - x, x - CANVAS_MARGIN * width
    if hi > 0 and right > 0:
        limit = min(limit, right / hi)
    if lo < 0 and left > 0:
        limit = min(limit, left / -lo)
    return limit


# --- applying --------------------------------------------------------------------------------------------
def _ancestors(joint: int) -> list[int]:
    out = []
    p = layout.BODY_PARENTS[joint]
    while p >= 0:
        out.append(p)
        p = layout.BODY_PARENTS[p]
    return out


def _chain(joint: int, ancestor: int) -> list[int]:
    """Limb indices on the path from ``ancestor`` down to ``joint``."""
    limbs = []
    j = joint
    while j != ancestor:
        limbs.append(_CHILD_LIMB[j])
        j = layout.BODY_PARENTS[j]
    return limbs


def _scaled(vec: np.ndarray, ratio: float, cap: float) -> np.ndarray:
    """``vec * ratio`` with its length limited to ``cap``; ``vec`` is ``(N, 2)``."""
    v = vec * ratio
    length = np.linalg.norm(v, axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(length > cap, cap / np.maximum(length, _MIN_LENGTH), 1.0)
    return v * factor


def apply_params(driving: PoseSequence, params: RetargetParams, width: int, height: int) -> np.ndarray:
    """Run the kinematic walk (steps 3-4) on every frame.

    Returns:
        ``(T, 134, 3)`` float32 keypoints on the ``width`` x ``height`` reference canvas.
    """
    kps = driving.keypoints.astype(np.float64)
    n = len(kps)
    drv = kps[..., :2]
    present = keypoint_valid(kps)
    out = np.full((n, layout.NUM_KEYPOINTS, 2), np.nan)
    placed = np.zeros((n, layout.NUM_KEYPOINTS), dtype=bool)
    g = params.global_ratio
    m = g if params.motion_ratio is None else params.motion_ratio
    # Each frame's root (the neck, else the centroid of the body joints seen) travels by the motion ratio;
    # everything else keeps the global ratio around it.
    # (no body joint seen: the anchor frame's root, i.e. the plain global map)
    root = _roots(kps[:, : layout.NUM_BODY], None)
    root = np.where(np.isfinite(root), root, params.driving_root)

    def global_map(p: np.ndarray, sel: np.ndarray) -> np.ndarray:
        r = root[sel] if p.ndim == 2 else root[sel][:, None]
        return params.reference_root + params.offset + m * (r - params.driving_root) + g * (p - r)

    neck = B["neck"]
    out[present[:, neck], neck] = global_map(drv[present[:, neck], neck], present[:, neck])
    placed[:, neck] = present[:, neck]

    for name, parent, child, _ in LIMBS:
        todo = present[:, child].copy()
        for anc in _ancestors(child):
            sel = todo & placed[:, anc]
            if sel.any():
                chain = _chain(child, anc)
                ratio = float(np.mean([params.limb_ratios[LIMB_NAMES[i]] for i in chain]))
                cap = float(sum(params.limb_caps[LIMB_NAMES[i]] for i in chain))
                out[sel, child] = out[sel, anc] + _scaled(drv[sel, child] - drv[sel, anc], ratio, cap)
                placed[sel, child] = True
                todo &= ~sel
        if todo.any():  # no placed ancestor: fall back to the global map
            out[todo, child] = global_map(drv[todo, child], todo)
            placed[todo, child] = True

    for part in RIGID_PARTS:
        idx = np.array(part.indices)
        r = params.part_ratios[part.name]
        carried = placed[:, part.anchor]
        rel = drv[:, idx] - drv[:, part.anchor][:, None]
        moved = out[:, part.anchor][:, None] + r * rel
        fallback = global_map(drv[:, idx], np.ones(n, bool))
        pos = np.where(carried[:, None, None], moved, fallback)
        ok = present[:, idx]
        out[:, idx] = np.where(ok[..., None], pos, np.nan)
        placed[:, idx] = ok

    result = np.full((n, layout.NUM_KEYPOINTS, 3), np.nan, dtype=np.float64)
    result[..., 2] = 0.0
    good = placed & np.isfinite(out).all(axis=-1)
    result[..., :2] = np.where(good[..., None], out, np.nan)
    result[..., 2] = np.where(good, kps[..., 2], 0.0)
    return result.astype(np.float32)


def retarget(
    driving: PoseSequence,
    reference: PoseFrame,
    *,
    calibration: str | int = "auto",
    anchor: str = "neck",
    max_ratio_spread: float = 2.5,
    max_stretch: float = 1.15,
    threshold: float = 0.3,
    root_motion: str = "auto",
) -> PoseSequence:
    """Map the driving motion onto the reference body (see the module docstring for the method).

    Args:
        driving: the driving poses, in driving-video pixels.
        reference: the character's pose, in pixels of its own canvas (``reference.width`` x ``height``).
        calibration: ``"auto"`` (first frame with the whole body visible, else ``"median"``),
            ``"median"`` (per-limb median over frames) or a frame index.
        anchor: ``"neck"`` (default) or ``"feet"``: which part of the calibration frame lands on the
            reference's.
        max_ratio_spread: per-limb ratios are clamped to ``[g / s, g * s]`` around the global ratio ``g``
            (default 2.5).
        max_stretch: an output limb is never longer than this times the reference's limb (default 1.15).
        threshold: minimum score of a keypoint used for measuring (default 0.3).
        root_motion: how far the body travels when the dancer moves about their frame (the root's
            displacement from the anchor frame): ``"body"`` scales it by the global ratio, like the limbs
            (the dancer's steps become the character's steps); ``"frame"`` by the scale that fits the
            driving frame onto the canvas (the character crosses its canvas as the dancer crosses their
            frame); ``"auto"`` (default) the smaller of the two, reduced further if needed so that the neck
            stays within :data:`CANVAS_MARGIN` of the canvas's sides: a dancer crossing a wide stage no
            longer walks the character off its canvas; ``"none"`` keeps the body in place.

    Returns:
        A new :class:`PoseSequence` on the reference canvas, same frames, fps, status and confidence;
        ``meta["retarget"]`` records the ratios.

    Raises:
        TypeError: ``driving`` is not a :class:`PoseSequence` or ``reference`` not a :class:`PoseFrame`.
        NoPersonError: no visible body in the reference or in any driving frame.
        ConfigError: a bad option.
    """
    _check_inputs(driving, reference)
    check_options(calibration=calibration, anchor=anchor, max_ratio_spread=max_ratio_spread,
                  max_stretch=max_stretch, threshold=threshold, root_motion=root_motion)
    if len(driving) == 0:
        raise InputError("driving pose sequence is empty; extract poses from a video with frames")
    params = compute_params(
        driving, reference, calibration=calibration, anchor=anchor,
        max_ratio_spread=max_ratio_spread, max_stretch=max_stretch, threshold=threshold,
    )
    fit = min(reference.width / driving.width, reference.height / driving.height)
    params.motion_ratio = {"body": params.global_ratio, "frame": fit, "auto": min(params.global_ratio, fit),
                           "none": 0.0}[root_motion]
    if root_motion == "auto":
        params.motion_ratio = min(params.motion_ratio, _on_canvas_ratio(driving, params, reference.width))
    if anchor == "feet":
        first = apply_params(driving.slice(params.anchor_frame, params.anchor_frame + 1), params,
                             reference.width, reference.height)[0]
        out_y = _lowest_ankle_y(first.astype(np.float64), threshold)
        ref_y = _lowest_ankle_y(reference.keypoints.astype(np.float64), threshold)
        if out_y is not None and ref_y is not None:
            params.offset = np.array([0.0, ref_y - out_y])
        else:
            logger.warning("ankles not visible in the reference or the anchor frame; anchoring at the neck instead")
    kps = apply_params(driving, params, reference.width, reference.height)
    out = driving.copy(kps, width=reference.width, height=reference.height)
    out.meta["retarget"] = params.as_dict()
    logger.info(
        "retargeted %d frames onto %dx%d (global ratio %.3f, travel ratio %.3f, calibration frame %s)",
        len(out), reference.width, reference.height, params.global_ratio, params.motion_ratio,
        params.calibration_frame,
    )
    return out
