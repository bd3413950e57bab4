"""Draw poses as the coloured skeleton images that the anchors' pose guiders were trained on.

Each convention is a :class:`SkeletonStyle` in :data:`STYLES`:

``openpose``
    controlnet_aux's DWPose drawing, which Moore-AnimateAnyone uses for its ``*_kps.mp4`` driving videos:
    the 17 OpenPose body limbs as filled ellipses (``cv2.ellipse2Poly`` polygon, half-width 4 px) in the
    18-colour OpenPose palette on a black canvas that is then multiplied by 0.6; the 18 joints as filled
    radius-4 circles in full palette colours; each hand's 20 edges as 2-px lines coloured
    ``HSV(i / 20, 1, 1)`` and its joints as radius-4 dots ``(0, 0, 255)``; face landmarks as radius-3 white
    dots. The result is RGB with limb 0 (neck to right shoulder) red.
``musepose``
    MusePose's drawing: the same palette, but the stick half-width grows with the limb length
    (1 px under 5 px, then +1 per doubling: 5/10/20/40/80/160/320 px, up to 8), hand edges use the same
    length rule and hand joints are radius 3; no face. MusePose draws on a canvas whose short edge is
    1024 px and downsizes (``INTER_AREA``) to the output, and converts its BGR canvas to RGB, so every
    colour has its red and blue swapped: limb 0 is blue and hand joints are red.
``body``
    ``openpose`` without hands and face.

Keypoints with score below the style's threshold (0.3) or with non-finite / absurdly large coordinates are
not drawn, so garbage input can never crash the drawing code. Coordinates are truncated to integers the
way the reference implementations do (``int(x)``), which keeps renders pixel-compatible with theirs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

import cv2
import numpy as np

from . import layout
from .errors import ConfigError, InputError
from .sequence import PoseFrame, PoseSequence

logger = logging.getLogger(__name__)

# The 18 OpenPose colours (RGB order as drawn by controlnet_aux); limb i and joint i use colour i.
OPENPOSE_PALETTE: np.ndarray = np.array(
    [
        [255, 0, 0], [255, 85, 0], [255, 170, 0], [255, 255, 0], [170, 255, 0], [85, 255, 0],
        [0, 255, 0], [0, 255, 85], [0, 255, 170], [0, 255, 255], [0, 170, 255], [0, 85, 255],
        [0, 0, 255], [85, 0, 255], [170, 0, 255], [255, 0, 255], [255, 0, 170], [255, 0, 85],
    ],
    dtype=np.uint8,
)

# Limb lengths (px) at which MusePose's stick half-width steps from w to w + 1 (w = 1 below the first).
MUSEPOSE_WIDTH_STEPS: tuple[float, ...] = (5, 10, 20, 40, 80, 160, 320)

# Coordinates farther than this many canvas sizes outside the canvas are treated as garbage.
_MAX_OFFCANVAS = 8.0


def _hsv_to_rgb255(h: float) -> tuple[int, int, int]:
    """RGB (0..255, rounded) of hue ``h`` in [0, 1) at full saturation and value."""
    i = int(h * 6.0) % 6
    f = h * 6.0 - int(h * 6.0)
    q, t = 1.0 - f, f
    rgb = [(1, t, 0), (q, 1, 0), (0, 1, t), (0, q, 1), (t, 0, 1), (1, 0, q)][i]
    return tuple(int(round(c * 255.0)) for c in rgb)  # type: ignore[return-value]


HAND_EDGE_COLOURS: tuple[tuple[int, int, int], ...] = tuple(
    _hsv_to_rgb255(i / len(layout.HAND_EDGES)) for i in range(len(layout.HAND_EDGES))
)


@dataclass(frozen=True)
class SkeletonStyle:
    """How to draw a pose.

    Attributes:
        name: style name.
        stick_width: body limb ellipse half-width in px (``openpose``: 4); ignored when ``length_width``.
        length_width: stick widths depend on limb length (MusePose's rule, :data:`MUSEPOSE_WIDTH_STEPS`).
        limb_dim: factor applied to the canvas after the limbs and before the joints (0.6).
        joint_radius: body joint dot radius in px (4).
        draw_hands: draw the hands.
        hand_line_width: hand edge thickness in px (2); ignored when ``length_width``.
        hand_joint_radius: hand joint dot radius (4 for openpose, 3 for musepose).
        hand_joint_colour: RGB colour of the hand joint dots before any channel swap.
        draw_face: draw the 68 face landmarks.
        face_radius: face dot radius (3).
        swap_red_blue: swap red and blue of every colour (MusePose's BGR/RGB convention).
        threshold: minimum score of a drawn keypoint (0.3).
        draw_short_edge: draw on a canvas with this short edge and resize to the output (``None``: draw at
            output size). MusePose draws at 1024.
    """

    name: str
    stick_width: int = 4
    length_width: bool = False
    limb_dim: float = 0.6
    joint_radius: int = 4
    draw_hands: bool = True
    hand_line_width: int = 2
    hand_joint_radius: int = 4
    hand_joint_colour: tuple[int, int, int] = (0, 0, 255)
    draw_face: bool = True
    face_radius: int = 3
    swap_red_blue: bool = False
    threshold: float = 0.3
    draw_short_edge: int | None = None


STYLES: dict[str, SkeletonStyle] = {
    "openpose": SkeletonStyle("openpose"),
    "musepose": SkeletonStyle(
        "musepose", length_width=True, hand_joint_radius=3, draw_face=False, swap_red_blue=True,
        draw_short_edge=1024,
    ),
    "body": SkeletonStyle("body", draw_hands=False, draw_face=False),
}


def get_style(style: str | SkeletonStyle) -> SkeletonStyle:
    """Look up a style by name (or pass a :class:`SkeletonStyle` through)."""
    if isinstance(style, SkeletonStyle):
        return style
    try:
        return STYLES[style]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown skeleton style {style!r}; choose one of: {', '.join(sorted(STYLES))}") from None


def musepose_width(length: float) -> int:
    """MusePose's stick half-width (px) for a limb ``length`` px long: 1 below 5 px, up to 8 from 320 px."""
    return 1 + sum(length >= s for s in MUSEPOSE_WIDTH_STEPS)


def _colour(rgb, swap: bool) -> tuple[int, int, int]:
    r, g, b = (int(c) for c in rgb)
    return (b, g, r) if swap else (r, g, b)


class _Points:
    """Integer pixel positions of the drawable keypoints of one frame."""

    def __init__(self, kps: np.ndarray, threshold: float, w: int, h: int) -> None:
        xy = kps[:, :2].astype(np.float64)
        score = np.nan_to_num(kps[:, 2].astype(np.float64), nan=0.0)
        lim = _MAX_OFFCANVAS * max(w, h)
        finite = np.isfinite(xy).all(axis=1)
        safe = np.where(finite[:, None], xy, 0.0)
        inside = finite & (np.abs(safe) <= lim).all(axis=1)
        self.ok = inside & (score >= threshold)
        self.xy = safe  # float positions (for lengths and angles)
        self.ixy = np.trunc(np.clip(safe, -lim, lim)).astype(np.int64)  # int(x) like the anchors


def _draw_limbs(canvas: np.ndarray, pts: _Points, style: SkeletonStyle) -> None:
    """Filled ellipses for the 17 drawn body limbs, colours pre-multiplied by ``style.limb_dim``."""
    for i, (a, b) in enumerate(layout.BODY_LIMBS[: layout.NUM_DRAWN_BODY_LIMBS]):
        if not (pts.ok[a] and pts.ok[b]):
            continue
        (x0, y0), (x1, y1) = pts.xy[a], pts.xy[b]
        mx, my = (x0 + x1) / 2.0, (y0 + y1) / 2.0
        length = math.hypot(x0 - x1, y0 - y1)
        angle = math.degrees(math.atan2(y0 - y1, x0 - x1))
        width = musepose_width(length) if style.length_width else style.stick_width
        colour = np.floor(OPENPOSE_PALETTE[i].astype(np.float64) * style.limb_dim).astype(int)
        poly = cv2.ellipse2Poly((int(mx), int(my)), (int(length / 2), width), int(angle), 0, 360, 1)
        cv2.fillConvexPoly(canvas, poly, _colour(colour, style.swap_red_blue))


def _draw_joints(canvas: np.ndarray, pts: _Points, style: SkeletonStyle) -> None:
    radius = style.joint_radius
    for i in range(layout.NUM_BODY):
        if pts.ok[i]:
            x, y = pts.ixy[i]
            cv2.circle(canvas, (int(x), int(y)), radius, _colour(OPENPOSE_PALETTE[i], style.swap_red_blue), thickness=-1)


def _draw_hands(canvas: np.ndarray, pts: _Points, style: SkeletonStyle) -> None:
    radius = style.hand_joint_radius
    joint_colour = _colour(style.hand_joint_colour, style.swap_red_blue)
    for part in (layout.LEFT_HAND, layout.RIGHT_HAND):
        base = part.start
        for e, (a, b) in enumerate(layout.HAND_EDGES):
            ia, ib = base + a, base + b
            if not (pts.ok[ia] and pts.ok[ib]):
                continue
            (x0, y0), (x1, y1) = pts.ixy[ia], pts.ixy[ib]
            if style.length_width:
                thick = musepose_width(math.hypot(float(x0 - x1), float(y0 - y1)))
            else:
                thick = style.hand_line_width
            cv2.line(canvas, (int(x0), int(y0)), (int(x1), int(y1)),
                     _colour(HAND_EDGE_COLOURS[e], style.swap_red_blue), thickness=thick)
        for j in range(layout.NUM_HAND):
            if pts.ok[base + j]:
                x, y = pts.ixy[base + j]
                cv2.circle(canvas, (int(x), int(y)), radius, joint_colour, thickness=-1)


def _draw_face(canvas: np.ndarray, pts: _Points, style: SkeletonStyle) -> None:
    radius = style.face_radius
    for j in range(layout.FACE.start, layout.FACE.stop):
        if pts.ok[j]:
            x, y = pts.ixy[j]
            cv2.circle(canvas, (int(x), int(y)), radius, (255, 255, 255), thickness=-1)


def _draw(canvas: np.ndarray, kps: np.ndarray, style: SkeletonStyle) -> np.ndarray:
    """Draw ``kps`` (already in ``canvas`` pixels) onto ``canvas`` in place and return it."""
    h, w = canvas.shape[:2]
    pts = _Points(kps, style.threshold, w, h)
    if canvas.any():  # the anchors dim the whole canvas; on black that is a no-op we can skip
        canvas[:] = np.floor(canvas.astype(np.float32) * style.limb_dim).astype(np.uint8)
    _draw_limbs(canvas, pts, style)
    _draw_joints(canvas, pts, style)
    if style.draw_hands:
        _draw_hands(canvas, pts, style)
    if style.draw_face:
        _draw_face(canvas, pts, style)
    return canvas


def _sanitised(frame: PoseFrame) -> PoseFrame:
    """Copy of ``frame`` with non-finite or absurd coordinates turned into missing keypoints."""
    xy = frame.xy
    lim = _MAX_OFFCANVAS * max(frame.width, frame.height)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(xy).all(axis=1) | (np.abs(np.nan_to_num(xy, nan=0.0)) > lim).any(axis=1)
    if not bad.any():
        return frame
    kps = frame.keypoints.copy()
    kps[bad] = [np.nan, np.nan, 0.0]
    return PoseFrame(kps, frame.width, frame.height, frame.status)


def render_pose(
    frame: PoseFrame,
    style: str | SkeletonStyle = "openpose",
    *,
    size: tuple[int, int] | None = None,
    canvas: np.ndarray | None = None,
) -> np.ndarray:
    """Draw one pose as a skeleton image.

    Args:
        frame: the pose, in pixels of a ``frame.width`` x ``frame.height`` image.
        style: a name in :data:`STYLES` (default ``"openpose"``) or a :class:`SkeletonStyle`.
        size: ``(W, H)`` of the output; the pose is scaled to fit and centred (aspect kept).
            Default: the frame's size (or ``canvas``'s).
        canvas: optional ``(H, W, 3)`` uint8 RGB image to draw on (copied, then dimmed by the style's
            ``limb_dim`` like the anchors do); its size overrides ``size``.

    Returns:
        ``(H, W, 3)`` uint8 RGB skeleton image.
    """
    st = get_style(style)
    if canvas is not None:
        canvas = np.asarray(canvas)
        if canvas.ndim != 3 or canvas.shape[2] != 3 or canvas.dtype != np.uint8:
            raise InputError(f"render canvas must be an (H, W, 3) uint8 RGB array, got {canvas.shape} {canvas.dtype}")
        out_h, out_w = canvas.shape[:2]
    elif size is not None:
        out_w, out_h = int(size[0]), int(size[1])
    else:
        out_w, out_h = frame.width, frame.height
    if out_w <= 0 or out_h <= 0:
        raise InputError(f"render size must be positive, got {out_w}x{out_h}")
    frame = _sanitised(frame)
    if (out_w, out_h) != (frame.width, frame.height):
        frame = frame.resized(out_w, out_h)

    if st.draw_short_edge and min(out_w, out_h) != st.draw_short_edge:
        k = st.draw_short_edge / min(out_w, out_h)
        big_w, big_h = max(1, int(round(out_w * k))), max(1, int(round(out_h * k)))
        big = np.zeros((big_h, big_w, 3), np.uint8)
        big_kps = frame.transformed(np.array([[big_w / out_w, 0, 0], [0, big_h / out_h, 0]]), big_w, big_h).keypoints
        _draw(big, big_kps, st)
        interp = cv2.INTER_AREA if k > 1 else cv2.INTER_LINEAR
        small = cv2.resize(big, (out_w, out_h), interpolation=interp)
        if canvas is None:
            return small
        base = np.floor(canvas.astype(np.float32) * st.limb_dim).astype(np.uint8)
        return np.where(small.any(axis=2, keepdims=True), small, base)

    out = np.zeros((out_h, out_w, 3), np.uint8) if canvas is None else canvas.copy()
    return _draw(out, frame.keypoints, st)


def render_sequence(
    seq: PoseSequence,
    style: str | SkeletonStyle = "openpose",
    size: tuple[int, int] | None = None,
) -> Iterator[np.ndarray]:
    """Yield one ``(H, W, 3)`` uint8 RGB skeleton image per frame of ``seq`` (see :func:`render_pose`)."""
    st = get_style(style)
    for frame in seq:
        yield render_pose(frame, st, size=size)


def scaled_style(style: str | SkeletonStyle, factor: float) -> SkeletonStyle:
    """A copy of ``style`` with its fixed widths and radii multiplied by ``factor`` (for large canvases)."""
    st = get_style(style)
    if not factor > 0:
        raise ConfigError(f"style scale factor must be > 0, got {factor!r}")

    def s(v: int) -> int:
        return max(1, int(round(v * factor)))

    return replace(
        st, name=f"{st.name}x{factor:g}", stick_width=s(st.stick_width), joint_radius=s(st.joint_radius),
        hand_line_width=s(st.hand_line_width), hand_joint_radius=s(st.hand_joint_radius), face_radius=s(st.face_radius),
    )
