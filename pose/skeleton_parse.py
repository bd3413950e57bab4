"""Read keypoints back from a rendered OpenPose / DWPose skeleton image (so ``*_kps.mp4`` can drive).

The drawing convention parsed here is the one Animate Anyone-style pose guiders were trained on
(controlnet_aux / DWPose ``draw_bodypose`` and ``draw_handpose``), RGB channel order:

* black background;
* body: 17 limbs as filled ellipses of half-width 4 in colour ``0.6 * PALETTE[k]`` (limb ``k`` is
  ``layout.BODY_LIMBS[k]``), then joint ``i`` as a filled radius-4 circle in ``PALETTE[i]`` (full brightness);
* hands: 20 edges, 2 px lines in ``HSV(e / 20, 1, 1)``, then the 21 joints as radius-4 circles in (0, 0, 255);
* face: radius-3 white dots.

Body (:func:`parse_body`)
    Joint ``i`` is looked for as a disc of colour ``PALETTE[i]`` (a morphological opening removes the thin
    hand lines whose colours coincide with some joint colours). Each limb's ellipse gives the two joint
    positions at the ends of its long axis. A disc is accepted when a limb of that joint ends on it, or
    when it is the only disc of that colour; a joint whose disc is hidden (e.g. the nose under the face
    dots, the eyes under later circles) is placed at the free end of one of its limbs whose other end is
    known; a hidden nose is put at the centre of the white face dots around that limb end (the mean of the
    68 iBUG points lies by the nose). Eyes and ears hidden under face dots are left missing.
    Scores: 1.0 for a disc, :data:`LIMB_END_SCORE` for an estimate.
Hands (:func:`parse_hands`)
    For each side with a parsed body wrist, each finger is followed from the wrist outwards: edge ``e``
    of the finger is the segment of colour ``HSV(e / 20)`` whose near end is closest to the previous
    joint; its far end (pushed out by the joint radius hidden under the circle, then snapped to the blue
    joint pixels there) is the next joint. Score 1.0.
Face
    Not parsed: the 68 white dots have one colour and no edges, so they cannot be assigned to iBUG indices
    reliably; the face is left missing (a renderer draws no face for these frames).

Parsing is exact on lossless PNG renders and tolerant (colour tolerances below) of video compression.
"""

from __future__ import annotations

import colorsys
import logging

import cv2
import numpy as np

from . import layout
from .detectors.base import Detector, check_rgb
from .sequence import FrameStatus, PoseFrame, empty_keypoints

logger = logging.getLogger(__name__)

# OpenPose 18-colour palette, RGB, joint i / limb i (controlnet_aux util.draw_bodypose).
PALETTE: np.ndarray = np.array([
    [255, 0, 0], [255, 85, 0], [255, 170, 0], [255, 255, 0], [170, 255, 0], [85, 255, 0], [0, 255, 0],
    [0, 255, 85], [0, 255, 170], [0, 255, 255], [0, 170, 255], [0, 85, 255], [0, 0, 255], [85, 0, 255],
    [170, 0, 255], [255, 0, 255], [255, 0, 170], [255, 0, 85],
], dtype=np.int16)
LIMB_DIM = 0.6              # limbs are drawn, then the canvas is multiplied by this
JOINT_RADIUS = 4            # body and hand joint circles
HAND_JOINT_COLOR = np.array([0, 0, 255], dtype=np.int16)
NUM_HAND_EDGES = len(layout.HAND_EDGES)
HAND_EDGE_COLORS: np.ndarray = np.array(
    [[round(255 * c) for c in colorsys.hsv_to_rgb(e / NUM_HAND_EDGES, 1.0, 1.0)] for e in range(NUM_HAND_EDGES)],
    dtype=np.int16,
)

# Colour tolerances (max abs channel difference). Palette neighbours differ by 85 (joints), 51 (limbs)
# and ~76 (hand edges), so these keep them apart while accepting compression noise.
JOINT_TOL = 40
LIMB_TOL = 22
HAND_TOL = 36
# Disc-shaped blobs of a radius-4 circle have ~49 px; accept partly hidden ones.
MIN_JOINT_AREA = 12
MIN_RAGGED_AREA = 5
FACE_COLOR = np.array([255, 255, 255], dtype=np.int16)
MIN_FACE_PIXELS = 200     # ~ 7 of the 68 radius-3 dots
HEAD_RADIUS_MIN = 20.0    # pixels
NOSE, NECK = layout.B["nose"], layout.B["neck"]
# A limb end supports a disc within this distance (pixels).
SUPPORT_DIST = 2.5 * JOINT_RADIUS
MIN_LIMB_AREA = 12
MIN_EDGE_AREA = 3
# Score of a joint placed at a limb end because its disc is hidden.
LIMB_END_SCORE = 0.6
# Largest distance (pixels) from the previous joint to the near end of a hand edge.
HAND_LINK_DIST = 3 * JOINT_RADIUS

# is_skeleton_image heuristics
DARK_LEVEL = 40                 # channel max below this = background
MIN_DARK_FRACTION = 0.75        # skeleton renders are mostly black
MIN_PALETTE_JOINTS = 4          # distinct body joint colours that must be present as discs


class _Pixels:
    """The non-background pixels of an image, kept sparse so that colour masks are cheap to build."""

    def __init__(self, rgb: np.ndarray) -> None:
        rgb = np.asarray(rgb)
        self.shape = rgb.shape[:2]
        ys, xs = np.nonzero(rgb.max(axis=2) >= DARK_LEVEL)
        self.ys, self.xs = ys, xs
        self.values = rgb[ys, xs].astype(np.int16)

    def mask(self, color: np.ndarray, tol: int) -> np.ndarray:
        """``(H, W)`` uint8 mask of the pixels within ``tol`` (max channel difference) of ``color``."""
        sel = np.abs(self.values - color.reshape(1, 3)).max(axis=1) <= tol
        out = np.zeros(self.shape, dtype=np.uint8)
        out[self.ys[sel], self.xs[sel]] = 1
        return out


_DISC = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
_SMALL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))


def _blobs(mask: np.ndarray, min_area: int) -> list[tuple[np.ndarray, int]]:
    """Centroids and areas of connected components of ``mask`` with at least ``min_area`` pixels."""
    n, _, stats, cent = cv2.connectedComponentsWithStats(mask, connectivity=8)
    return [(cent[i].astype(np.float64), int(stats[i, cv2.CC_STAT_AREA]))
            for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= min_area]


def _segments(mask: np.ndarray, min_area: int) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Long-axis end points ``(p, q)`` and area of each connected component of ``mask``."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    out = []
    for i in range(1, n):
        area = int(stats[i, cv2.CC_STAT_AREA])
        if area < min_area:
            continue
        ys, xs = np.nonzero(labels == i)
        pts = np.stack([xs, ys], axis=1).astype(np.float64)
        c = pts.mean(axis=0)
        d = pts - c
        if len(pts) < 2:
            out.append((c, c, area))
            continue
        _, _, vt = np.linalg.svd(d, full_matrices=False)
        axis = vt[0]
        proj = d @ axis
        out.append((c + axis * proj.min(), c + axis * proj.max(), area))
    return out


def _joint_candidates(img: _Pixels) -> list[tuple[list[tuple[np.ndarray, int]], list[tuple[np.ndarray, int]]]]:
    """Per joint colour: (clear discs after a 5x5 opening, ragged blobs after a 3x3 opening)."""
    out = []
    for color in PALETTE:
        raw = img.mask(color, JOINT_TOL)
        discs = _blobs(cv2.morphologyEx(raw, cv2.MORPH_OPEN, _DISC), MIN_JOINT_AREA)
        ragged = _blobs(cv2.morphologyEx(raw, cv2.MORPH_OPEN, _SMALL), MIN_RAGGED_AREA)
        out.append((discs, ragged))
    return out


def _pick(cands: list[tuple[np.ndarray, int]], limbs_here: list[tuple[np.ndarray, np.ndarray]]):
    """Best candidate for a joint: most limb ends within SUPPORT_DIST, then area closest to a full disc."""
    best, best_key = None, None
    for centre, area in cands:
        support = sum(1 for ends in limbs_here if min(np.linalg.norm(centre - e) for e in ends) <= SUPPORT_DIST)
        key = (support, -abs(area - np.pi * JOINT_RADIUS ** 2))
        if best_key is None or key > best_key:
            best, best_key = centre, key
    return best, (best_key[0] if best_key else 0)


def _limb_segments(img: _Pixels) -> list[tuple[np.ndarray, np.ndarray] | None]:
    out: list[tuple[np.ndarray, np.ndarray] | None] = []
    for k in range(layout.NUM_DRAWN_BODY_LIMBS):
        color = np.rint(PALETTE[k] * LIMB_DIM).astype(np.int16)
        mask = cv2.morphologyEx(img.mask(color, LIMB_TOL), cv2.MORPH_OPEN, _SMALL)
        segs = _segments(mask, MIN_LIMB_AREA)
        out.append(max(segs, key=lambda s: s[2])[:2] if segs else None)
    return out


def parse_body(rgb: np.ndarray, _pixels: _Pixels | None = None) -> np.ndarray:
    """Read the 18 OpenPose body joints from a skeleton drawing.

    Args:
        rgb: ``(H, W, 3)`` uint8 RGB skeleton image (drawing convention in the module docstring).

    Returns:
        ``(18, 3)`` float32 ``[x, y, score]`` in the image's pixels; missing joints NaN with score 0.
    """
    img = _pixels if _pixels is not None else _Pixels(rgb)
    cands = _joint_candidates(img)
    limbs = _limb_segments(img)
    limb_pairs = layout.BODY_LIMBS[: layout.NUM_DRAWN_BODY_LIMBS]
    adjacent: dict[int, list[int]] = {j: [] for j in range(layout.NUM_BODY)}
    for k, (a, b) in enumerate(limb_pairs):
        adjacent[a].append(k)
        adjacent[b].append(k)

    out = np.full((layout.NUM_BODY, 3), np.nan, dtype=np.float32)
    out[:, 2] = 0.0
    # 1) discs supported by a limb end, or the only disc of their colour
    for j in range(layout.NUM_BODY):
        discs, ragged = cands[j]
        limbs_here = [limbs[k] for k in adjacent[j] if limbs[k] is not None]
        best, support = _pick(discs, limbs_here)
        if best is not None and (support > 0 or len(discs) == 1):
            out[j] = (best[0], best[1], 1.0)
            continue
        # a partly covered disc: accept only where one of its limbs ends
        best, support = _pick(ragged, limbs_here)
        if best is not None and support > 0:
            out[j] = (best[0], best[1], 1.0)
    # 2) hidden joints: the free end of a limb whose other end is known (repeat to follow chains)
    for _ in range(3):
        changed = False
        for j in range(layout.NUM_BODY):
            if out[j, 2] > 0:
                continue
            for k in adjacent[j]:
                if limbs[k] is None:
                    continue
                a, b = limb_pairs[k]
                other = b if a == j else a
                if out[other, 2] <= 0:
                    continue
                p, q = limbs[k]
                known = out[other, :2].astype(np.float64)
                far = q if np.linalg.norm(p - known) <= np.linalg.norm(q - known) else p
                if min(np.linalg.norm(p - known), np.linalg.norm(q - known)) > SUPPORT_DIST:
                    continue  # this limb does not end on the known joint: not trustworthy
                out[j] = (far[0], far[1], LIMB_END_SCORE)
                changed = True
                break
        if not changed:
            break
    if out[NOSE, 2] < 1.0 and out[NECK, 2] > 0:
        nose = _face_centre(img, out[NECK, :2].astype(np.float64), out[NOSE])
        if nose is not None:
            out[NOSE] = (nose[0], nose[1], LIMB_END_SCORE)
    return out


def _face_centre(img: _Pixels, neck: np.ndarray, nose_guess: np.ndarray) -> np.ndarray | None:
    """Centre of the white face dots above the neck (stands in for a nose hidden under them)."""
    sel = np.abs(img.values - FACE_COLOR.reshape(1, 3)).max(axis=1) <= JOINT_TOL
    pts = np.stack([img.xs[sel], img.ys[sel]], axis=1).astype(np.float64)
    if len(pts) < MIN_FACE_PIXELS:
        return None
    # white pixels of this person's head: nearer to the limb-end guess (or the neck) than a head size
    anchor = nose_guess[:2].astype(np.float64) if nose_guess[2] > 0 else neck
    radius = max(HEAD_RADIUS_MIN, 1.5 * np.linalg.norm(anchor - neck))
    near = pts[np.linalg.norm(pts - anchor, axis=1) <= radius]
    if len(near) < MIN_FACE_PIXELS:
        return None
    return near.mean(axis=0)


def _hand_edge_segments(img: _Pixels) -> list[list[tuple[np.ndarray, np.ndarray, int]]]:
    out = []
    for color in HAND_EDGE_COLORS:
        out.append(_segments(img.mask(color, HAND_TOL), MIN_EDGE_AREA))
    return out


def _snap_to_joint(point: np.ndarray, blue: np.ndarray) -> np.ndarray:
    h, w = blue.shape
    r = JOINT_RADIUS + 1
    x0, y0 = int(max(0, point[0] - r)), int(max(0, point[1] - r))
    x1, y1 = int(min(w, point[0] + r + 1)), int(min(h, point[1] + r + 1))
    if x1 <= x0 or y1 <= y0:
        return point
    ys, xs = np.nonzero(blue[y0:y1, x0:x1])
    if len(xs) < MIN_JOINT_AREA:
        return point
    return np.array([xs.mean() + x0, ys.mean() + y0])


def parse_hands(rgb: np.ndarray, body: np.ndarray, _pixels: _Pixels | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read both hands (21 joints each) from a skeleton drawing, starting at the parsed body wrists.

    Args:
        rgb: ``(H, W, 3)`` uint8 RGB skeleton image.
        body: ``(18, 3)`` body joints from :func:`parse_body`.

    Returns:
        ``(left_hand, right_hand)``, each ``(21, 3)`` float32 (missing joints NaN, score 0).
    """
    img = _pixels if _pixels is not None else _Pixels(rgb)
    segs = _hand_edge_segments(img)
    blue = img.mask(HAND_JOINT_COLOR, JOINT_TOL)
    used: set[tuple[int, int]] = set()
    hands = {}
    for side, wrist_idx in (("left", layout.B["left_wrist"]), ("right", layout.B["right_wrist"])):
        hand = np.full((layout.NUM_HAND, 3), np.nan, dtype=np.float32)
        hand[:, 2] = 0.0
        hands[side] = hand
        if body[wrist_idx, 2] <= 0:
            continue
        anchor = body[wrist_idx, :2].astype(np.float64)
        near_ends = []
        for finger in range(5):
            prev = anchor
            for j in range(4):
                e = 4 * finger + j
                best, best_d = None, None
                for s_idx, (p, q, _) in enumerate(segs[e]):
                    if (e, s_idx) in used:
                        continue
                    dp, dq = np.linalg.norm(p - prev), np.linalg.norm(q - prev)
                    d = min(dp, dq)
                    limit = HAND_LINK_DIST * (3 if j == 0 else 1)  # the hand's wrist may sit off the body wrist
                    if d <= limit and (best_d is None or d < best_d):
                        best, best_d = (s_idx, p, q) if dp <= dq else (s_idx, q, p), d
                if best is None:
                    break
                s_idx, near, far = best
                used.add((e, s_idx))
                if j == 0:
                    near_ends.append(near)
                direction = far - near
                length = np.linalg.norm(direction)
                if length > 0:
                    far = far + direction / length * JOINT_RADIUS
                far = _snap_to_joint(far, blue)
                hand[1 + e] = (far[0], far[1], 1.0)
                prev = far
        if near_ends:
            wrist = np.mean(near_ends, axis=0)
            wrist = _snap_to_joint(wrist, blue)
            hand[0] = (wrist[0], wrist[1], 1.0)
        if int((hand[:, 2] > 0).sum()) < 2:
            hand[:] = np.nan
            hand[:, 2] = 0.0
    return hands["left"], hands["right"]



def parse_skeleton(rgb: np.ndarray, hands: bool = True) -> PoseFrame:
    """Parse a rendered skeleton image into a :class:`PoseFrame` (body, hands; face and feet missing).

    Args:
        rgb: ``(H, W, 3)`` uint8 RGB skeleton image.
        hands: also parse the hands (default True).

    Returns:
        PoseFrame in the image's pixels; status ``MISSING`` when fewer than two body joints were found.
    """
    rgb = check_rgb(rgb, "skeleton image")
    h, w = rgb.shape[:2]
    kps = empty_keypoints()
    pixels = _Pixels(rgb)
    body = parse_body(rgb, pixels)
    kps[layout.BODY] = body
    if hands:
        left, right = parse_hands(rgb, body, pixels)
        kps[layout.LEFT_HAND] = left
        kps[layout.RIGHT_HAND] = right
    frame = PoseFrame(kps, w, h, FrameStatus.DETECTED)
    return frame if frame.has_person else PoseFrame.empty(w, h)


def is_skeleton_image(rgb: np.ndarray) -> bool:
    """Heuristic: does this image look like a rendered OpenPose skeleton (not a photo)?

    True when most pixels are near black and at least :data:`MIN_PALETTE_JOINTS` distinct body-joint
    palette colours appear as discs.

    Args:
        rgb: ``(H, W, 3)`` uint8 RGB image.
    """
    rgb = check_rgb(rgb, "image")
    step = max(1, max(rgb.shape[:2]) // 512)  # a quick look at large frames
    small = rgb[::step, ::step]
    if float(np.mean(small.max(axis=2) < DARK_LEVEL)) < MIN_DARK_FRACTION:
        return False
    img = _Pixels(rgb)
    found = 0
    for color in PALETTE:
        mask = cv2.morphologyEx(img.mask(color, JOINT_TOL), cv2.MORPH_OPEN, _DISC)
        if any(True for _ in _blobs(mask, MIN_JOINT_AREA)):
            found += 1
            if found >= MIN_PALETTE_JOINTS:
                return True
    return False


class SkeletonDetector(Detector):
    """A "detector" that reads poses back from rendered skeleton frames (:func:`parse_skeleton`).

    Args:
        hands: parse the hands too (default True).
    """

    name = "skeleton"

    def __init__(self, hands: bool = True) -> None:
        self.hands = bool(hands)

    def options(self) -> dict:
        return {"hands": self.hands}

    def __call__(self, rgb: np.ndarray) -> PoseFrame:
        return parse_skeleton(rgb, hands=self.hands)
