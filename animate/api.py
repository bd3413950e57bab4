"""The Python API studios script against: :class:`Animator`.

::

    from animate.api import Animator

    with Animator.from_config(None, renderer="puppet") as animator:     # or Animator(size=(512, 768))
        animator.animate("character.png", "dance.mp4", "out/avatar.mp4")
        print(animator.last_stats.to_dict())                             # frames held, fps, ...
        for rgb in animator.stream(character_rgb, poses):                # (H, W, 3) uint8, one at a time
            ...

Steps of one run:

1. **Reference** (path, numpy array or PIL image) -> RGB uint8 -> a thin frame line along its edges trimmed
   (:func:`frame_border`) -> fitted onto the output canvas without distortion: scaled to fit and centred,
   the rest padded with ``output.pad_color`` (default: each padded side runs on the colours along the
   reference's edge there).
2. **Output canvas**: ``size`` if given (argument, then ``output.size``); otherwise the *reference's* aspect
   ratio at ``output.height`` pixels (768 by default), sides rounded to ``output.multiple_of``. The canvas
   follows the character rather than the driving video because the character fills the frame in its own
   aspect; the driving motion, whatever its aspect ratio, is retargeted onto that canvas.
3. **Reference pose**: detected on the reference, or read from ``reference_pose`` (a pose file or a
   :class:`~pose.sequence.PoseFrame` in the reference image's pixels or already on the canvas).
4. **Driving poses**: a video (detected, gaps filled, smoothed), a skeleton video, a saved pose file
   (``.json``/``.npz``) or a :class:`~pose.sequence.PoseSequence`; ``start``/``end`` frame range; frames
   still without a person are held at the last pose with a person (the first one, before it) and counted
   (:attr:`Animator.last_stats`); resampled to the output fps.
5. **Retarget** onto the reference body and canvas, **render** with the configured renderer, **write**
   streamed through :func:`animate.writers.write_video` (atomic; audio of the driving video kept).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np
from tqdm import tqdm

from pose.errors import InputError, NoPersonError
from pose.sequence import FrameStatus, PoseFrame, PoseSequence

from .config import MAX_FPS, MAX_OUTPUT_SIDE, MIN_FPS, AnimateConfig, load_config
from .renderer import Renderer, create_renderer
from .writers import check_output_path, new_folders_removed_on_error, write_video

logger = logging.getLogger(__name__)

ImageLike = Union[str, os.PathLike, np.ndarray, Any]  # Any: PIL.Image.Image (PIL imported lazily)
DrivingLike = Union[str, os.PathLike, PoseSequence]
PoseLike = Union[str, os.PathLike, PoseFrame]

#: suffixes of saved pose files accepted as driving input or reference pose.
POSE_FILE_SUFFIXES = (".json", ".npz")
#: Long side (px) above which the reference is detected on a shrunk copy (the canvas is at most 4096 px).
REFERENCE_DETECT_SIDE = 2048
#: A reference enlarged more than this onto the canvas gets a warning (it looks soft).
MAX_REFERENCE_ENLARGEMENT = 2.0


@dataclass
class AnimateStats:
    """What happened in one run (``Animator.last_stats``).

    Attributes:
        frames: frames rendered.
        fps: output frame rate.
        size: output ``(width, height)`` (3 x width for previews).
        canvas: the character's canvas ``(width, height)``.
        detected, interpolated, held: driving frames by how their pose was obtained. ``interpolated`` and
            ``held`` count the frames the detector ran on without finding the person (short gaps are
            interpolated, the rest held at the last pose seen); frames between detector keyframes
            (``pose.detect_every`` > 1) count as ``detected``.
        reference_pose: ``"detected"`` or ``"given"``.
        renderer: renderer name.
        seconds: wall time of rendering + writing (0 until the frames were consumed).
        output: the written file, if any.
    """

    frames: int = 0
    fps: float = 0.0
    size: tuple[int, int] = (0, 0)
    canvas: tuple[int, int] = (0, 0)
    detected: int = 0
    interpolated: int = 0
    held: int = 0
    reference_pose: str = "detected"
    renderer: str = ""
    seconds: float = 0.0
    output: str | None = None

    @property
    def render_fps(self) -> float:
        """Frames per second of rendering + writing (0 before the run finished)."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        """JSON-serialisable dict (``render_fps`` included)."""
        d = dataclasses.asdict(self)
        d["size"], d["canvas"] = list(self.size), list(self.canvas)
        d["render_fps"] = round(self.render_fps, 3)
        return d


@dataclass
class PreparedReference:
    """The character on the output canvas.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB canvas.
        pose: the character's pose on the canvas.
        mask: ``(H, W)`` uint8 character mask on the canvas (255 = character) or ``None``.
        matrix: ``(2, 3)`` affine map from reference-image pixels to canvas pixels.
        name: a label for messages (file name or ``"array"``).
        pose_source: ``"detected"`` or ``"given"``.
    """

    image: np.ndarray
    pose: PoseFrame
    mask: np.ndarray | None
    matrix: np.ndarray
    name: str
    pose_source: str = "detected"

    @property
    def size(self) -> tuple[int, int]:
        return self.image.shape[1], self.image.shape[0]


@dataclass
class _Job:
    reference: PreparedReference
    poses: PoseSequence
    audio_from: str | None
    audio_start: float
    stats: AnimateStats = field(default_factory=AnimateStats)
    #: the renderer prepared for this job (its character and canvas)
    renderer: Renderer | None = None


# ------------------------------------------------------------------------------------------------
# inputs
# ------------------------------------------------------------------------------------------------
def _name(obj: Any) -> str:
    return str(obj) if isinstance(obj, (str, os.PathLike)) else type(obj).__name__


def _opaque(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 4)`` RGBA of an RGB image, fully opaque."""
    return np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])


def _openpose_folder(path: Path) -> bool:
    """A folder of OpenPose per-frame JSON files (and no images, which would make it a folder of frames)."""
    from pose.openpose_json import openpose_files
    from pose.video import IMAGE_EXTENSIONS

    if not path.is_dir() or not openpose_files(path):
        return False
    return not any(f.suffix.lower() in IMAGE_EXTENSIONS for f in path.iterdir())


def load_rgb(image: ImageLike, what: str = "reference") -> np.ndarray:
    """Any accepted image input as ``(H, W, 3)`` uint8 RGB.

    Args:
        image: a file path, a numpy array (``(H, W)``, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA; uint8,
            uint16 or float in [0, 1]) or a PIL image.
        what: the input's role, for error messages.

    Raises:
        InputError: unreadable file or unsupported array.
    """
    from pose.video import read_image, to_rgb

    if isinstance(image, (str, os.PathLike)):
        return read_image(image, what=what)
    if isinstance(image, np.ndarray) or (hasattr(image, "convert") and hasattr(image, "mode")):
        return to_rgb(image)
    raise InputError(f"{what} must be an image path, a numpy array or a PIL image, got {type(image).__name__}")


def alpha_mask(image: ImageLike) -> np.ndarray | None:
    """The character mask given by an image's transparency, if it has any.

    Character cut-outs are often RGBA PNGs: where the image is transparent is background. Returns an
    ``(H, W)`` uint8 mask (255 = opaque, i.e. character) when the image has an alpha channel that is neither
    (almost) fully opaque nor (almost) fully transparent, else ``None``.
    """
    alpha = None
    if isinstance(image, (str, os.PathLike)):
        from pose.video import decode_image

        try:
            raw = decode_image(image)
        except InputError:  # reported by load_rgb, which reads the same file
            raw = None
        if raw is not None and raw.ndim == 3 and raw.shape[2] == 4:
            alpha = raw[:, :, 3]
    elif isinstance(image, np.ndarray):
        if image.ndim == 3 and image.shape[2] == 4:
            alpha = image[:, :, 3]
    elif getattr(image, "mode", None) in ("RGBA", "LA", "PA") or "transparency" in getattr(image, "info", {}):
        from PIL import ImageOps

        upright = ImageOps.exif_transpose(image)  # palette or RGB images name a transparent colour instead
        alpha = np.asarray((upright if upright.mode in ("RGBA", "LA", "PA") else upright.convert("RGBA")).getchannel("A"))
    if alpha is None:
        return None
    alpha = np.asarray(alpha, dtype=np.float64) / float(np.iinfo(alpha.dtype).max if alpha.dtype.kind in "ui" else 1.0)
    opaque = alpha >= 0.5
    if not 0.01 < opaque.mean() < 0.99:
        return None
    return opaque.astype(np.uint8) * 255


def _whole(value: Any) -> int:
    """``value`` as an int when it is a whole number (int, numpy integer or integral float), else TypeError."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError("a bool is not a size")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    raise TypeError(f"{value!r} is not a whole number")


def _check_fps(fps: Any, most: float = MAX_FPS) -> float | None:
    """An output frame rate given as an argument: ``None``, or a number in [:data:`MIN_FPS`, ``most``]
    (:data:`MAX_FPS`, or :data:`pose.video.GIF_MAX_FPS` for a GIF)."""
    if fps is None:
        return None
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise InputError(f"fps (--fps) must be a number, got {fps!r}") from None
    if not (math.isfinite(value) and MIN_FPS <= value <= MAX_FPS):
        raise InputError(f"fps (--fps) must be a number from {MIN_FPS:g} to {MAX_FPS:g}, got {fps!r}")
    if value > most:
        raise InputError(f"fps (--fps) {value:g} is too fast for a GIF, whose frame delays are whole hundredths of "
                         f"a second (players slow those under 2/100 s): use at most {most:g} fps, or an .mp4")
    return value


def canvas_size(ref_w: int, ref_h: int, config: AnimateConfig, size: tuple[int, int] | None = None, *,
                max_width: int | None = None) -> tuple[int, int]:
    """Output canvas ``(width, height)``: ``size``, else ``output.size``, else reference aspect at ``output.height``.

    Both sides are rounded to ``output.multiple_of`` (at least one multiple). The automatic canvas keeps within
    :data:`MAX_OUTPUT_SIDE` and ``max_width`` (a preview's three panels), shrunk with the reference's aspect.
    """
    m = config.output.multiple_of
    if size is None:
        size = config.output.size
    if isinstance(size, str):
        from .config import parse_size

        size = parse_size(size)
    if size is not None:
        try:
            w, h = (_whole(v) for v in size)
        except (TypeError, ValueError):
            raise InputError(f"output size must be (width, height) in whole pixels, e.g. (512, 768), got {size!r}") from None
        if max(w, h) > MAX_OUTPUT_SIDE:
            raise InputError(f"output size {w}x{h} is too large: at most {MAX_OUTPUT_SIDE} px on each side")
        if w <= 0 or h <= 0 or w % 2 or h % 2:
            raise InputError(f"output size must be positive even numbers (video codecs need them), got {w}x{h}")
        return w, h
    h = max(m, int(round(config.output.height / m)) * m)
    w = max(m, int(round(h * ref_w / ref_h / m)) * m)
    widest = MAX_OUTPUT_SIDE if max_width is None else min(MAX_OUTPUT_SIDE, max_width)
    if w > widest or h > MAX_OUTPUT_SIDE:  # a very wide reference (or a preview of a wide one): shrunk to fit
        scale = min(widest / ref_w, MAX_OUTPUT_SIDE / ref_h)
        was = (w, h)
        w = max(m, int(ref_w * scale / m) * m)
        h = max(m, int(ref_h * scale / m) * m)
        logger.info("a %dx%d reference at output.height %d makes a %dx%d canvas, wider than %d px; using %dx%d",
                    ref_w, ref_h, config.output.height, *was, widest, w, h)
    if max(w, h) > MAX_OUTPUT_SIDE:
        raise InputError(f"output.multiple_of {m} makes a {w}x{h} canvas, above {MAX_OUTPUT_SIDE} px on a side; use "
                         "a smaller multiple (8 for the puppet and diffusion renderers)")
    return w, h


def fit_image(image: np.ndarray, width: int, height: int, pad_color: tuple[int, int, int] | None = None,
              interpolation: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Scale ``image`` to fit ``width`` x ``height`` (aspect kept), centre it and pad the rest.

    Args:
        image: ``(h, w, C)`` or ``(h, w)`` uint8 array.
        width, height: canvas size.
        pad_color: fill value (RGB); ``None`` = each padded side continues the colours along the image's
            edge there (see :func:`_continue_edges`), so a wall or a floor runs on instead of a flat bar.
        interpolation: OpenCV flag; ``None`` = area when shrinking, cubic when enlarging.

    Returns:
        ``(canvas, matrix)``: the ``(height, width, ...)`` canvas and the ``(2, 3)`` affine map from image
        pixels to canvas pixels (apply it to poses with :meth:`PoseFrame.transformed`).
    """
    import cv2

    h, w = image.shape[:2]
    s = min(width / w, height / h)
    new_w, new_h = max(1, min(width, int(round(w * s)))), max(1, min(height, int(round(h * s))))
    if interpolation is None:
        interpolation = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    scaled = cv2.resize(image, (new_w, new_h), interpolation=interpolation) if (new_w, new_h) != (w, h) else image
    x0, y0 = (width - new_w) // 2, (height - new_h) // 2
    canvas = np.empty((height, width) + image.shape[2:], dtype=image.dtype)
    if pad_color is not None and image.ndim == 3:
        canvas[...] = np.asarray(pad_color, dtype=image.dtype)
    elif image.ndim == 3:
        canvas[...] = np.median(np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]]), axis=0)
        _continue_edges(canvas, scaled, x0, y0)
    else:
        canvas[...] = 0
    canvas[y0:y0 + new_h, x0:x0 + new_w] = scaled
    matrix = np.array([[new_w / w, 0.0, x0], [0.0, new_h / h, y0]])
    return canvas, matrix


#: Thickest frame line :func:`frame_border` trims on one side, as a fraction of the side (at least 2 px).
FRAME_MAX = 0.01
#: A frame line's pixels lie within this of its median colour (max over RGB, 0-255) ...
FRAME_TOLERANCE = 24
#: ... and at least half of the line just inside it differ from that colour by more than this.
FRAME_CONTRAST = 32


def frame_border(image: np.ndarray) -> tuple[int, int, int, int]:
    """Thin uniform frame lines along the edges of ``image``: ``(top, bottom, left, right)`` in pixels.

    Exported illustrations and screenshots often carry a 1-2 px white or black line along some edges.
    Left in the reference, it is cut out with the character wherever the character touches that edge (a
    light line across a skirt that moves with it) and it stops the padding from continuing the picture.
    A side has a frame line when its outermost rows (columns), at most :data:`FRAME_MAX` of the side, are
    each one colour (95 % of the pixels within :data:`FRAME_TOLERANCE`) and the first row inside them is
    not (half of it farther than :data:`FRAME_CONTRAST`): a wall or sky that runs to the edge is not one.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.

    Returns:
        Lines to trim on each side (``0`` = none).
    """
    def lines(stack: np.ndarray) -> int:  # stack: (n, L, 3), outermost line first
        limit = min(max(2, int(FRAME_MAX * len(stack))), len(stack) - 1)
        colour = None
        n = 0
        while n < limit:
            line = stack[n].astype(np.float32)
            median = np.median(line, axis=0)
            if np.mean(np.abs(line - median).max(axis=1) <= FRAME_TOLERANCE) < 0.95:
                break
            if colour is not None and np.abs(median - colour).max() > FRAME_TOLERANCE:
                break
            colour = median if colour is None else colour
            n += 1
        if n == 0:
            return 0
        inside = np.abs(stack[n].astype(np.float32) - colour).max(axis=1)
        return n if np.mean(inside > FRAME_CONTRAST) >= 0.5 else 0

    columns = image.transpose(1, 0, 2)
    return lines(image), lines(image[::-1]), lines(columns), lines(columns[::-1])


#: Rows (columns) skipped at an image edge before the colours a padded side continues are sampled, as a
#: fraction of the image side: scans and renders often carry a thin frame line there.
EDGE_SKIP = 0.01
#: Depth of the sampled band, fraction of the image side.
EDGE_BAND = 0.03
#: Median window along the edge, fraction of its length: a limb or a prop that touches the edge (feet
#: at the bottom of a full-body shot) is narrower than half of it and does not run on into the padding.
EDGE_MEDIAN = 0.3


def _continue_edges(canvas: np.ndarray, scaled: np.ndarray, x0: int, y0: int) -> None:
    """Fill the padded sides of ``canvas`` around ``scaled`` (placed at ``x0, y0``) in place.

    Each padded side gets, along its length, the median colour of a thin band just inside the image's
    edge there (skipping the outermost :data:`EDGE_SKIP`), median-filtered along the edge (window
    :data:`EDGE_MEDIAN`, keeping a wall-to-floor step where it is) and repeated outward.
    """
    import cv2
    from scipy.ndimage import median_filter

    h, w = scaled.shape[:2]
    H, W = canvas.shape[:2]

    def run(band: np.ndarray, length: int) -> np.ndarray:  # band (depth, length, C) -> (length, C)
        line = np.median(band, axis=0).astype(np.float32)
        line = median_filter(line, size=(max(1, int(EDGE_MEDIAN * length)) | 1, 1), mode="reflect")
        return cv2.GaussianBlur(line[None], (0, 0), sigmaX=2.0, sigmaY=0.1, borderType=cv2.BORDER_REFLECT)[0]

    def band(side: int, far: bool) -> slice:  # rows (columns) sampled near the first or the last edge
        skip, depth = int(EDGE_SKIP * side), max(1, round(EDGE_BAND * side))
        start = max(0, side - skip - depth if far else skip)
        return slice(start, min(side, start + depth))

    if y0 > 0 or y0 + h < H:
        top = run(scaled[band(h, False)], w)
        bottom = run(scaled[band(h, True)], w)
        canvas[:y0, x0:x0 + w] = np.clip(top + 0.5, 0, 255).astype(canvas.dtype)
        canvas[y0 + h:, x0:x0 + w] = np.clip(bottom + 0.5, 0, 255).astype(canvas.dtype)
    if x0 > 0 or x0 + w < W:
        left = run(scaled[:, band(w, False)].transpose(1, 0, 2), h)
        right = run(scaled[:, band(w, True)].transpose(1, 0, 2), h)
        canvas[y0:y0 + h, :x0] = np.clip(left + 0.5, 0, 255).astype(canvas.dtype)[:, None]
        canvas[y0:y0 + h, x0 + w:] = np.clip(right + 0.5, 0, 255).astype(canvas.dtype)[:, None]


def hold_missing(poses: PoseSequence) -> tuple[PoseSequence, int]:
    """Give every frame without a person the pose of the nearest earlier (else later) frame with one.

    Args:
        poses: a sequence, possibly with ``MISSING`` frames or frames whose pose has no person.

    Returns:
        ``(sequence, n_held_here)``; the held frames get status ``HELD``.

    Raises:
        NoPersonError: no frame has a person.
    """
    ok = np.array([f.has_person for f in poses], dtype=bool)
    if not ok.any():
        raise NoPersonError(
            f"no person found in any of the {len(poses)} driving frames of {poses.meta.get('source', 'the driving input')}; "
            "use a video that shows one full-body person"
        )
    if ok.all():
        return poses, 0
    idx = np.arange(len(poses))
    prev = np.maximum.accumulate(np.where(ok, idx, -1))
    first = int(np.argmax(ok))
    src = np.where(prev >= 0, prev, first)
    kps = poses.keypoints[src].copy()
    status = poses.status.copy()
    status[~ok] = FrameStatus.HELD
    conf = poses.confidence.copy()
    conf[~ok] = 0.0
    n = int((~ok).sum())
    return poses.copy(kps, status=status, confidence=conf), n


def resample(poses: PoseSequence, fps: float) -> PoseSequence:
    """Nearest-earlier-frame resampling of ``poses`` to ``fps`` (same duration): every output frame time
    ``k / fps`` before the end of the last input frame, ``len(poses) / poses.fps`` (24 frames at 24 fps give 24
    at 23.976 fps, 12 at 12 fps)."""
    if abs(fps - poses.fps) < 1e-6:
        return poses
    n_out = max(1, int(np.ceil(len(poses) * fps / poses.fps - 1e-6)))
    src = np.minimum(np.floor(np.arange(n_out) * poses.fps / fps + 1e-6).astype(int), len(poses) - 1)
    return PoseSequence(
        poses.keypoints[src].copy(), poses.width, poses.height, fps,
        poses.status[src].copy(), poses.confidence[src].copy(), dict(poses.meta),
    )


# ------------------------------------------------------------------------------------------------
# Animator
# ------------------------------------------------------------------------------------------------
class Animator:
    """Animate still characters with driving videos.

    Construct with :meth:`from_config` (YAML + overrides) or directly with keyword overrides of the package
    defaults (see :func:`animate.config.load_config` for the accepted keys), or with a ready
    :class:`~animate.config.AnimateConfig`. The renderer is created on first use and kept (the diffusion
    renderer loads its weights once); call :meth:`close` or use the animator as a context manager.

    Attributes:
        config: the validated configuration.
        last_stats: :class:`AnimateStats` of the latest :meth:`animate` / :meth:`stream` run (``None`` after one that
            failed before rendering).
        last_poses: the driving poses of that run as given to the renderer (retargeted, on the canvas).
    """

    def __init__(self, config: AnimateConfig | str | os.PathLike | dict | None = None, **overrides: Any) -> None:
        """``config``: an :class:`AnimateConfig`, the path of a YAML (as :meth:`from_config`), a dict of sections
        or ``None`` (package defaults); ``overrides`` as in :func:`animate.config.load_config`."""
        if not isinstance(config, AnimateConfig):
            config = load_config(config, **overrides)  # a TypeError for anything else
        else:  # checked too: a hand-built AnimateConfig(output=OutputConfig(fps=-5)) fails here, not minutes later
            config = _with_overrides(config, **overrides)
        self.config: AnimateConfig = config
        self.last_stats: AnimateStats | None = None
        self.last_poses: PoseSequence | None = None
        self._renderer: Renderer | None = None
        # the job the renderer is prepared for: a pending stream whose character was replaced by a later
        # stream() / animate() on this animator must not go on rendering with the new character
        self._prepared_job: object | None = None

    @classmethod
    def from_config(cls, path: str | os.PathLike | None = None, **overrides: Any) -> Animator:
        """Animator from the YAML at ``path`` (``None``: package defaults) with keyword ``overrides``.

        Raises:
            ConfigError: invalid file or value (the message names the field and the file).
        """
        return cls(load_config(path, **overrides))

    # --- lifecycle ---------------------------------------------------------------------------------
    @property
    def renderer(self) -> Renderer:
        """The configured renderer, created on first access."""
        if self._renderer is None:
            cfg = self.config.renderer
            logger.info("creating renderer %s", cfg.name)
            self._renderer = create_renderer(cfg.name, **self.config.renderer_options())
        return self._renderer

    def close(self) -> None:
        """Release the renderer. Safe to call twice."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __enter__(self) -> Animator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- stages ------------------------------------------------------------------------------------
    def prepare_reference(
        self,
        reference: ImageLike,
        *,
        size: tuple[int, int] | None = None,
        reference_pose: PoseLike | None = None,
        mask: ImageLike | None = None,
        max_width: int | None = None,
    ) -> PreparedReference:
        """Load the character, fit it onto the output canvas and find its pose there.

        Args:
            reference: image path, ``(H, W, 3)`` array or PIL image.
            size: output ``(width, height)``; ``None`` = config / reference aspect (see module docstring).
            max_width: widest automatic canvas (a preview's panels: a third of the largest output).
            reference_pose: pose file or :class:`PoseFrame` to use instead of detecting; its size tells
                whether it is in reference-image pixels or already on the canvas.
            mask: character mask (path, array or PIL image, reference-image size; nonzero = character).
                Default: the reference's own transparency when it has some (RGBA cut-outs), else the
                renderer segments the character.

        Raises:
            NoPersonError: no person detected on the reference (the message explains ``--reference-pose``).
            InputError: unreadable reference, pose file or mask.
        """
        name = _name(reference) if isinstance(reference, (str, os.PathLike)) else f"({type(reference).__name__})"
        if isinstance(reference, (str, os.PathLike)):  # decoded once, for the picture and its transparency
            from pose.video import decode_image

            reference = decode_image(reference, "reference")
        full = load_rgb(reference, "reference")
        rh, rw = full.shape[:2]
        top, bottom, left, right = frame_border(full)
        rgb = full[top:rh - bottom, left:rw - right]
        if top or bottom or left or right:
            logger.info("reference %s: frame line trimmed (top %d, bottom %d, left %d, right %d px)",
                        name, top, bottom, left, right)
        width, height = canvas_size(rgb.shape[1], rgb.shape[0], self.config, size, max_width=max_width)
        canvas, inner = fit_image(rgb, width, height, self.config.output.pad_color)
        matrix = inner.copy()  # reference-image pixels -> canvas, through the trim
        matrix[:, 2] -= inner[:, :2] @ np.array([left, top], np.float64)

        if reference_pose is None:
            pose = self._detect_reference(full, name).transformed(matrix, width, height)
            source = "detected"
        else:
            pose = self._given_pose(reference_pose, (rw, rh), (width, height), matrix)
            source = "given"

        fitted_mask = None
        if mask is None:
            mask = alpha_mask(reference)
            if mask is not None:
                logger.info("reference %s: using its transparency as the character mask", name)
        if mask is not None:
            m = load_rgb(mask, "mask").max(axis=2) if not (isinstance(mask, np.ndarray) and mask.ndim == 2) else mask
            m = (np.asarray(m) > 0).astype(np.uint8) * 255
            if not m.any():
                raise InputError(f"mask {_name(mask)} is empty (no pixel marked as character); pass a mask with the "
                                 "character nonzero (white)")
            if m.shape[:2] != (rh, rw):
                raise InputError(f"mask {_name(mask)} is {m.shape[1]}x{m.shape[0]} but the reference is {rw}x{rh}; use a mask of the reference's size")
            import cv2

            m = m[top:rh - bottom, left:rw - right]
            fitted_mask, _ = fit_image(m, width, height, interpolation=cv2.INTER_NEAREST)
        logger.info("reference %s: %dx%d -> canvas %dx%d, pose %s", name, rw, rh, width, height, source)
        if inner[0, 0] > MAX_REFERENCE_ENLARGEMENT:
            logger.warning("reference %s (%dx%d) is enlarged %.1fx onto the %dx%d canvas and will look soft; use a "
                           "larger image or a smaller --size", name, rw, rh, inner[0, 0], width, height)
        return PreparedReference(canvas, pose, fitted_mask, matrix, name, source)

    def _detect_reference(self, rgb: np.ndarray, name: str) -> PoseFrame:
        """The character's pose in ``rgb``'s pixels. A photo larger than :data:`REFERENCE_DETECT_SIDE` is
        detected on a copy shrunk to it: the detector works on at most 960 px anyway, and every search step
        (margins, tiles, the zoomed crop) resized 48-megapixel images (23 s and 1.9 GB for a 6000x8000 photo)."""
        h, w = rgb.shape[:2]
        scale = REFERENCE_DETECT_SIDE / max(h, w)
        if scale >= 1.0:
            return self._detect_reference_as_is(rgb, name)
        import cv2

        small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        logger.info("reference %s: %dx%d, detected on a %dx%d copy", name, w, h, small.shape[1], small.shape[0])
        back = np.array([[w / small.shape[1], 0.0, 0.0], [0.0, h / small.shape[0], 0.0]])
        return self._detect_reference_as_is(small, name).transformed(back, w, h)

    def _detect_reference_as_is(self, rgb: np.ndarray, name: str) -> PoseFrame:
        from pose.detectors.base import without_window
        from pose.extract import detect_image

        cfg = self.config.pose
        # the driving video's detection window (crop / follow) is no window on the character's image
        detector, options = cfg.detector, without_window(cfg.detector_options)
        if detector == "skeleton":  # it reads drawn skeletons (the driving's); the character is a picture
            from pose.extract import DEFAULT_DETECTOR

            detector, options = DEFAULT_DETECTOR, {}
        try:
            return detect_image(rgb, detector=detector, detector_options=options or None)
        except NoPersonError:
            raise NoPersonError(
                f"no person detected in reference {name}; pass its pose with --reference-pose FILE "
                "(reference_pose=...): an OpenPose editor's JSON export drawn on the character, or a pose JSON "
                "from 'posedrive pose extract' edited to fit it"
            ) from None

    @staticmethod
    def _given_pose(given: PoseLike, ref_size: tuple[int, int], canvas: tuple[int, int], matrix: np.ndarray) -> PoseFrame:
        from pose.io import load_pose_frame

        pose = given if isinstance(given, PoseFrame) else load_pose_frame(given, size=ref_size)
        if not pose.has_person:
            raise NoPersonError(f"reference pose {_name(given)} has fewer than two visible body keypoints; fix the pose file")
        if (pose.width, pose.height) == canvas:
            return pose.copy()
        if (pose.width, pose.height) != ref_size:
            logger.warning(
                "reference pose %s is for a %dx%d image but the reference is %dx%d; scaling it to fit",
                _name(given), pose.width, pose.height, *ref_size,
            )
            pose = pose.resized(*ref_size)
        return pose.transformed(matrix, *canvas)

    def load_driving(
        self,
        driving: DrivingLike,
        *,
        start: int | None = None,
        end: int | None = None,
        progress: bool = True,
        while_detecting: Callable[[], Any] | None = None,
    ) -> PoseSequence:
        """Driving poses from a video, folder of frames, skeleton video, pose file, folder of OpenPose JSON
        files (24 fps) or :class:`PoseSequence`.

        Args:
            driving: the driving input.
            start, end: frame range ``[start, end)`` of the driving input (``None`` = from the first / to
                the last frame).
            progress: tqdm bar while detecting.
            while_detecting: work to run while the pose workers detect (see
                :func:`pose.extract.extract_poses`); run first when no detection is needed.

        Returns:
            The sequence in the driving frames' pixels, as detected or given: frames without a person keep
            their status (``MISSING``, or ``HELD`` where the detector held the last pose);
            :meth:`animate` and :meth:`stream` hold them with :func:`hold_missing`.

        Raises:
            InputError: bad range or unreadable input; NoPersonError: no frame shows a person.
        """
        start = 0 if start is None else int(start)
        if start < 0 or (end is not None and end <= start):
            raise InputError(f"invalid frame range start={start} end={end} for driving {_name(driving)}; need 0 <= start < end")
        cfg = self.config
        if isinstance(driving, PoseSequence):
            seq = driving.slice(start, end)
            if while_detecting is not None:
                while_detecting()
        elif isinstance(driving, (str, os.PathLike)):
            path = Path(driving)
            if path.suffix.lower() in POSE_FILE_SUFFIXES:
                from pose.io import load_sequence

                seq = load_sequence(path).slice(start, end)  # a bad file fails before the character's preparation
                seq.meta.setdefault("source", str(path))
                if while_detecting is not None:
                    while_detecting()
            elif _openpose_folder(path):
                from pose.extract import extract_poses
                from pose.io import load_sequence

                # OpenPose's per-frame detections: gaps filled and smoothed like the detector's own
                seq = extract_poses(load_sequence(path), smoothing=self._smoothing(),
                                    max_interp_gap=cfg.pose.max_interp_gap, start=start, end=end,
                                    while_detecting=while_detecting)
            else:
                from pose.extract import extract_poses

                # a rendered skeleton video (*_kps.mp4) is recognised by extract_poses and read back
                seq = extract_poses(
                    path, detector=cfg.pose.detector, smoothing=self._smoothing(),
                    max_interp_gap=cfg.pose.max_interp_gap, start=start, end=end, progress=progress,
                    detector_options=cfg.pose.detector_options or None, detect_every=cfg.pose.detect_every,
                    max_scale_jump=cfg.pose.max_scale_jump, follow_identity=cfg.pose.follow_identity,
                    while_detecting=while_detecting,
                )
        else:
            raise InputError(f"driving must be a video path, a pose file (.json/.npz) or a PoseSequence, got {type(driving).__name__}")
        if len(seq) == 0:
            raise InputError(f"driving {_name(driving)} has no frames in the range start={start} end={end}; widen the range")
        if not any(f.has_person for f in seq):
            raise NoPersonError(f"no person in any of the {len(seq)} frames of driving {_name(driving)}"
                                f"{'' if start == 0 and end is None else f' (frames {start} to {end})'}; "
                                "use a video or pose file that shows one full-body person")
        return seq

    def _smoothing(self) -> Any:
        """``False``, ``True`` (per-part defaults) or one :class:`pose.smoothing.OneEuroConfig`."""
        s = self.config.smoothing
        if not s.enabled:
            return False
        given = {k: v for k, v in (("min_cutoff", s.min_cutoff), ("beta", s.beta), ("d_cutoff", s.d_cutoff)) if v is not None}
        if not given:
            return True
        from pose.smoothing import OneEuroConfig

        return OneEuroConfig(**given)

    def _retarget(self, poses: PoseSequence, ref: PreparedReference) -> PoseSequence:
        w, h = ref.size
        if not self.config.retarget.enabled:
            return poses.resized(w, h)
        from pose.retarget import retarget

        out = retarget(poses, ref.pose, **self.config.retarget.options)
        if (out.width, out.height) != (w, h):
            out = out.resized(w, h)
        return out

    # --- running -----------------------------------------------------------------------------------
    def _plan(self, reference: ImageLike, driving: DrivingLike, *, size: tuple[int, int] | None, fps: float | None,
              start: int | None, end: int | None, reference_pose: PoseLike | None, mask: ImageLike | None,
              progress: bool, preview: bool = False, gif: bool = False) -> _Job:
        from pose.video import GIF_MAX_FPS

        most_fps = GIF_MAX_FPS if gif else MAX_FPS
        given_fps = _check_fps(fps, most_fps)  # before minutes of pose work, like the renderer below
        given_size = size if size is not None else self.config.output.size
        if preview and given_size is not None and not isinstance(given_size, str):
            _check_preview_width(*given_size)
        renderer = self.renderer  # created first: missing weights fail before minutes of pose work
        prepared: list[PreparedReference] = []

        def prepare_character() -> None:
            # Runs while the pose workers detect: the character's detection, segmentation and mesh overlap
            # the driving video's pose extraction, and a bad reference still fails within seconds.
            ref = self.prepare_reference(reference, size=size, reference_pose=reference_pose, mask=mask,
                                         max_width=MAX_OUTPUT_SIDE // 3 if preview else None)
            self._prepared_job = None  # a pending stream of the previous character stops here
            renderer.prepare(ref.image, ref.pose, ref.mask)
            prepared.append(ref)

        raw = self.load_driving(driving, start=start, end=end, progress=progress, while_detecting=prepare_character)
        if not prepared:  # a driving input that needed no detection and never called back
            prepare_character()
        ref = prepared[0]
        source_fps = raw.fps
        poses, held_here = hold_missing(raw)
        if fps is not None:
            out_fps = given_fps
        else:
            out_fps = float(self.config.output.fps or source_fps)
            if gif and out_fps > GIF_MAX_FPS:  # every n-th frame: a GIF cannot show faster ones
                out_fps /= math.ceil(out_fps / GIF_MAX_FPS)
                logger.info("a GIF shows at most %g frames per second: written at %g fps", GIF_MAX_FPS, out_fps)
            if out_fps > MAX_FPS:
                raise InputError(f"driving {_name(driving)} runs at {out_fps:g} fps, above the {MAX_FPS:g} fps an "
                                 "output may have; give the output's rate with fps= (--fps)")
            if out_fps < MIN_FPS:
                raise InputError(f"driving {_name(driving)} runs at {out_fps:g} fps, below the {MIN_FPS:g} fps an "
                                 "output may have; give the output's rate with fps= (--fps)")
        poses = self._retarget(resample(poses, out_fps), ref)

        # Counted on the driving frames: a frame the detector ran on without finding the person was either
        # interpolated (short gap) or held; frames between keyframes (detect_every > 1) are not misses.
        st = np.where(raw.status == FrameStatus.MISSING, FrameStatus.HELD, raw.status)
        missed = raw.detector_frames() & ~np.isin(st, (FrameStatus.DETECTED, FrameStatus.MANUAL))
        interpolated = int(np.sum(missed & (st == FrameStatus.INTERPOLATED)))
        held = int(np.sum(missed)) - interpolated
        stats = AnimateStats(
            frames=0, fps=out_fps, size=ref.size, canvas=ref.size,
            detected=len(raw) - interpolated - held, interpolated=interpolated, held=held,
            reference_pose=ref.pose_source, renderer=self.config.renderer.name,
        )
        if held or interpolated:
            ran = int(raw.detector_frames().sum())
            where = f"{ran} frames the detector ran on" if ran < len(raw) else f"{len(raw)} frames"
            logger.warning(
                "driving %s: no person in %d of the %s (%d interpolated, %d held at the last pose seen, %d of "
                "them here)", _name(driving), held + interpolated, where, interpolated, held, held_here,
            )
        audio_from, first = _audio_source(driving, raw, start) if self.config.output.keep_audio else (None, 0)
        # the audio heard with the first frame: on the file's timeline, where the video may start after the audio
        audio_start = first / source_fps
        if audio_from is not None:
            from pose.video import video_start_time

            audio_start += video_start_time(audio_from)
        job = _Job(ref, poses, audio_from, audio_start, stats, renderer)
        self._prepared_job = job
        return job

    def _check_prepared(self, job: _Job) -> None:
        """Raise when ``job``'s renderer was closed or prepared for another job since ``job`` was planned."""
        if self._renderer is None or self._renderer is not job.renderer:
            raise RuntimeError(
                f"the Animator was closed before the stream of {job.reference.name} was consumed; consume "
                "stream() inside the `with Animator(...)` block, before close()"
            )
        if self._prepared_job is not job:
            raise RuntimeError(
                f"the stream of {job.reference.name} was left pending while a later stream() / animate() on the "
                "same Animator prepared another character; consume each stream before starting the next, or "
                "use one Animator per stream rendered at the same time"
            )

    def _frames(self, job: _Job, preview: bool, progress: bool) -> Iterator[np.ndarray]:
        ref, poses, stats = job.reference, job.poses, job.stats
        self._check_prepared(job)
        renderer = self._renderer  # prepared in _plan
        channels = getattr(renderer, "channels", 3)
        expected = ref.image.shape[:2] + (channels,)
        style = self.config.preview.skeleton_style
        if preview:
            from pose.render import render_pose

            stats.size = (3 * ref.size[0], ref.size[1])
        t0 = time.perf_counter()
        bar = tqdm(total=len(poses), desc="animate", unit="frame", disable=not progress)
        rendered = iter(renderer.render(poses))
        try:
            for i in range(len(poses)):
                self._check_prepared(job)  # the stream may have waited while this animator did other work
                frame = next(rendered, None)
                if frame is None:
                    break
                frame = np.asarray(frame)
                if frame.shape != expected or frame.dtype != np.uint8:
                    raise InputError(
                        f"renderer {stats.renderer} returned a {frame.shape} {frame.dtype} frame for a "
                        f"{expected} uint8 canvas; fix the renderer"
                    )
                if preview:
                    skeleton = render_pose(poses[i], style=style, size=ref.size)
                    if channels == 4:  # the reference and the skeleton are opaque beside a transparent result
                        frame = np.concatenate([_opaque(ref.image), _opaque(skeleton), frame], axis=1)
                    else:
                        frame = np.concatenate([ref.image, skeleton, frame], axis=1)
                stats.frames = i + 1
                stats.seconds = time.perf_counter() - t0
                bar.update(1)
                yield frame
        finally:
            bar.close()
            close = getattr(rendered, "close", None)
            if close is not None:
                close()
        if stats.frames < len(poses):
            raise InputError(f"renderer {stats.renderer} stopped after {stats.frames} of {len(poses)} frames; check its log")
        logger.info("rendered %d frames in %.1f s (%.2f fps)", stats.frames, stats.seconds, stats.render_fps)

    def stream(
        self,
        reference: ImageLike,
        driving: DrivingLike,
        *,
        size: tuple[int, int] | None = None,
        fps: float | None = None,
        start: int | None = None,
        end: int | None = None,
        reference_pose: PoseLike | None = None,
        mask: ImageLike | None = None,
        preview: bool | None = None,
        progress: bool = True,
    ) -> Iterator[np.ndarray]:
        """Animated frames, one at a time (for long videos or custom writers).

        The reference, reference pose and driving poses are loaded and checked *before* this returns, so
        input errors raise here; rendering happens lazily as the iterator is consumed, and
        :attr:`last_stats` is complete once it is exhausted. Arguments as in :meth:`animate`.

        Returns:
            Iterator of ``(H, W, 3)`` uint8 RGB frames (``(H, 3W, 3)`` with ``preview``); RGBA (4 channels) with
            a transparent puppet background.
        """
        self.last_stats, self.last_poses = None, None  # not the previous run's, should this one fail
        use_preview = self.config.preview.enabled if preview is None else bool(preview)
        job = self._plan(reference, driving, size=size, fps=fps, start=start, end=end,
                         reference_pose=reference_pose, mask=mask, progress=progress, preview=use_preview)
        self.last_stats, self.last_poses = job.stats, job.poses
        return self._frames(job, use_preview, progress)

    def animate(
        self,
        reference: ImageLike,
        driving: DrivingLike,
        output: str | os.PathLike | None = None,
        *,
        size: tuple[int, int] | None = None,
        fps: float | None = None,
        start: int | None = None,
        end: int | None = None,
        reference_pose: PoseLike | None = None,
        mask: ImageLike | None = None,
        preview: bool | None = None,
        overwrite: bool = False,
        progress: bool = True,
    ) -> Path:
        """Animate ``reference`` with the motion of ``driving`` and write a video.

        Args:
            reference: character image (path, ``(H, W, 3)`` uint8 array or PIL image).
            driving: video, skeleton video (``*_kps.mp4``), pose file (``.json``/``.npz``) or PoseSequence.
            output: video to write; ``None`` = ``<output.dir>/<reference>_<driving>.mp4`` (``.webm`` for a
                transparent background).
            size: output ``(width, height)``, even sides; ``None`` = config, else reference aspect at
                ``output.height`` px.
            fps: output frame rate; ``None`` = config, else the driving's.
            start, end: driving frame range ``[start, end)``.
            reference_pose: pose file / PoseFrame of the character instead of detection.
            mask: character mask (reference size, nonzero = character).
            preview: write reference | skeleton | result side by side (``None`` = ``preview.enabled``).
            overwrite: replace an existing ``output``.
            progress: tqdm bars.

        Returns:
            The path written. Statistics are in :attr:`last_stats`.

        Raises:
            OutputError: ``output`` exists (without ``overwrite``), is one of the input files (even with
                ``overwrite``) or cannot be written — checked before any work is done.
            NoPersonError, InputError, VideoError, PoseFileError: bad inputs.
        """
        if output is None:
            ref_stem = Path(reference).stem if isinstance(reference, (str, os.PathLike)) else "reference"
            drv_stem = Path(driving).stem if isinstance(driving, (str, os.PathLike)) else "driving"
            suffix = ".webm" if getattr(self.renderer, "channels", 3) == 4 else ".mp4"  # transparent: keep alpha
            output = Path(self.config.output.dir) / f"{ref_stem}_{drv_stem}{suffix}"
        from .writers import refuse_overwriting_inputs

        self.last_stats, self.last_poses = None, None  # not the previous run's, should this one fail
        refuse_overwriting_inputs(output, reference, driving, mask, reference_pose,  # even with overwrite
                                  *self.config.input_files())
        with new_folders_removed_on_error(output):
            output = check_output_path(output, overwrite)
            if getattr(self.renderer, "channels", 3) == 4:  # transparent frames need a container with alpha, now
                check_output_path(output, overwrite, alpha=True)
            use_preview = self.config.preview.enabled if preview is None else bool(preview)
            job = self._plan(reference, driving, size=size, fps=fps, start=start, end=end,
                             reference_pose=reference_pose, mask=mask, progress=progress, preview=use_preview,
                             gif=Path(output).suffix.lower() == ".gif")
            self.last_stats, self.last_poses = job.stats, job.poses
            frames = self._frames(job, use_preview, progress)
            path = write_video(frames, output, job.stats.fps, audio_from=job.audio_from,
                               audio_start=job.audio_start, overwrite=overwrite)
        job.stats.output = str(path)
        return path


def _check_preview_width(width: Any, height: Any) -> None:
    """Refuse a preview (three canvases side by side) wider than :data:`MAX_OUTPUT_SIDE`."""
    try:
        w, h = int(width), int(height)
    except (TypeError, ValueError):
        return  # a malformed size: canvas_size words that error
    if 3 * w > MAX_OUTPUT_SIDE:
        most = MAX_OUTPUT_SIDE // 3 // 8 * 8
        raise InputError(f"a preview puts three {w}x{h} canvases side by side, {3 * w} px wide, above the "
                         f"{MAX_OUTPUT_SIDE} px an output may have; give a size at most {most} px wide "
                         f"(e.g. --size {most}x{max(8, round(h * most / max(w, 1) / 8) * 8)}) or leave the preview out")


def _audio_source(driving: DrivingLike, poses: PoseSequence, start: int | None) -> tuple[str | None, int]:
    """The video whose audio goes with ``poses`` (the driving frames to render) and the index of their first
    frame in it; ``(None, 0)`` when there is none.

    A driving video is its own source. A :class:`PoseSequence` extracted from a video (``Animator.load_driving``,
    :func:`pose.extract.extract_poses`) names it in ``meta["source"]``, and ``meta["start"]`` is its first
    frame (slices keep it up to date): its audio is used while that file exists, unless the sequence strides
    over frames (``meta["step"]`` > 1), which the sound could not follow. Pose files bring no audio.
    """
    if isinstance(driving, (str, os.PathLike)):
        path = Path(driving)
        if path.suffix.lower() not in POSE_FILE_SUFFIXES and path.is_file():
            return str(path), start or 0
        return None, 0
    source, first, step = (poses.meta.get(k) for k in ("source", "start", "step"))
    if not isinstance(source, str) or not isinstance(first, (int, np.integer)) or step not in (None, 1):
        return None, 0
    path = Path(source)
    if path.suffix.lower() in POSE_FILE_SUFFIXES or not path.is_file():
        if not path.exists() and path.suffix:
            logger.info("the driving poses come from %s, which is not here: the output has no audio", source)
        return None, 0  # a pose file or a folder of frames: no sound
    logger.info("audio from %s, the video the driving poses were extracted from (from its frame %d)", source, first)
    return str(path), int(first)


def _with_overrides(config: AnimateConfig, **overrides: Any) -> AnimateConfig:
    """``config`` with keyword ``overrides`` applied (validated like :func:`load_config`)."""
    from .config import apply_overrides

    return apply_overrides(config, overrides, origin="the AnimateConfig given")
