"""Find a person too small in a video's frames for the detector to see, and the window to detect them in.

Mediapipe's person detector looks at the whole frame shrunk to 224 px. In a 1280x720 video made of
``tests/data/dance_short.mp4`` shrunk into a wider scene, it finds the dancer in every frame when she is
44 % of the frame's height and in none when she is 36 % (a dancer on a stage, filmed from the audience).
When the detector finds the person in too few frames, :func:`search_window` looks at a few frames spread
over the video: on each, the whole frame and then overlapping square tiles of decreasing size, until a
tile shows the person, who is then detected again on a crop around them
(:func:`pose.extract.zoom_window`). The window it returns covers every place the person was found, with
a margin; :func:`pose.extract.extract_poses` then detects again with every frame cropped to it
(:class:`pose.detectors.base.CroppedDetector`). When that window would be nearly the whole frame (a dancer
crossing the stage) or finds too little, the video is detected again with a :class:`FollowingDetector`,
which looks for the person around where they were a keyframe before. Frames where the person is still
missed are filled like any other miss.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .detectors.base import (
    Detector,
    check_rgb,
    create_detector,
    detect_in_window,
    without_window,
)
from .extract import square_window, upright_torso, zoom_in
from .sequence import PoseFrame
from .video import open_video

logger = logging.getLogger(__name__)

SEARCH_FRAMES = 6
"""Frames searched, spread evenly over the range."""

GIVE_UP_AFTER = 3
"""Searched frames without anybody after which the search stops (an empty video stays quick to reject);
the frames are searched middle first, then each time the one farthest from those already searched."""

TILE_SIDES = (1.0, 0.6, 0.4)
"""Sides of the square tiles, as fractions of the frame's short side; tiles overlap by half."""

WINDOW_MARGIN = 0.6
"""Margin added on every side of the found boxes, in multiples of the person's keypoint height."""

SMALL_BELOW = 0.4
"""Keypoint height (fraction of the frame's) below which a found person counts as small: a person missed
by the detector but larger than that is missing for another reason (out of the frame, hidden), and the
second passes are skipped."""

MIN_GAIN = 0.8
"""A window whose long side is at least this fraction of the frame's long side is no help (the detector
shrinks its input by the long side): no window is returned."""


def _starts(length: int, side: int) -> list[int]:
    """Tile origins along one axis: every half tile, the last one flush with the end."""
    if side >= length:
        return [0]
    out = list(range(0, length - side, max(1, side // 2)))
    return [*out, length - side]


def spread_order(positions: list[int]) -> list[int]:
    """``positions`` reordered coarse to fine: the middle one, then repeatedly the one farthest from those
    already taken (a dancer present in only part of the video is met early)."""
    left = sorted(positions)
    if not left:
        return []
    order = [left.pop(len(left) // 2)]
    while left:
        far = max(range(len(left)), key=lambda i: min(abs(left[i] - p) for p in order))
        order.append(left.pop(far))
    return order


def find_in_tiles(rgb: np.ndarray, detector: Detector) -> PoseFrame:
    """The person on the largest tiles (of :data:`TILE_SIDES`) on which any is found (the most confident
    tile wins), in ``rgb``'s pixels; empty when no tile shows anybody. A tile's pose counts only with its
    shoulders and hips confidently found, the shoulders above the hips (:func:`pose.extract.upright_torso`):
    on a tile, mediapipe also "finds" a whole person in an arm (``tests/data/no_person.png``).

    Args:
        rgb: ``(H, W, 3)`` uint8 image.
        detector: a detector in single-image mode.
    """
    h, w = rgb.shape[:2]
    for fraction in TILE_SIDES:
        side = max(2, round(fraction * min(h, w)))
        best, best_conf = None, -1.0
        for y in _starts(h, side):
            for x in _starts(w, side):
                tile = detect_in_window(detector, rgb, (x, y, x + side, y + side))
                if tile.has_person and upright_torso(tile) and tile.confidence() > best_conf:
                    best, best_conf = tile, tile.confidence()
        if best is not None:
            return best
    return PoseFrame.empty(w, h)


def find_person(rgb: np.ndarray, detector: Detector) -> PoseFrame:
    """The person in ``rgb``, found on the whole frame or, failing that, on tiles (:func:`find_in_tiles`),
    then detected again on a crop around them; empty when nobody is found.

    Args:
        rgb: ``(H, W, 3)`` uint8 frame.
        detector: a detector in single-image mode.
    """
    found = detector(rgb)
    if not found.has_person:
        found = find_in_tiles(rgb, detector)
    return zoom_in(detector, rgb, found, "a searched frame") if found.has_person else found


@dataclass(frozen=True)
class SearchResult:
    """What :func:`search_window` found.

    Attributes:
        found: searched frames in which the person was found.
        searched: frames searched.
        window: ``(x0, y0, x1, y1)`` (fractions of the frame) around every place they were found, with a
            margin; ``None`` when nobody was found or its long side would be nearly the frame's (a dancer
            who crosses the stage: :class:`FollowingDetector` is then the way).
    """

    found: int
    searched: int
    window: tuple[float, float, float, float] | None
    height: float = 0.0

    @property
    def small(self) -> bool:
        """The person was found and is small (:data:`SMALL_BELOW`): a second pass can help."""
        return self.found > 0 and self.height < SMALL_BELOW


def search_window(path: str | Path, name: str, options: dict, positions: list[int], *,
                  fps: float | None = None, max_size: int | None = None) -> SearchResult:
    """Look for a person too small for the detector on a few frames (:func:`find_person`).

    Args:
        path: the video file or frame folder.
        name: detector name; its single-image mode is used.
        options: the detector's options.
        positions: source frame indices to search (:data:`SEARCH_FRAMES` of them, spread over the range).
            The search stops after :data:`GIVE_UP_AFTER` frames without anybody.
        fps: the frame-rate override used for reading, if any.
        max_size: the decoding size used for detection.
    """
    boxes: list[tuple[float, float, float, float]] = []
    heights: list[float] = []
    aspect = 1.0  # frame height / width
    searched = 0
    with create_detector(name, **single_image_options(name, options)) as det:
        for t in spread_order(positions):
            with open_video(path, fps, max_size=max_size, start=t, end=t + 1) as src:
                rgb = next(iter(src), None)
            if rgb is None:
                continue
            searched += 1
            person = find_person(rgb, det)
            box = person.bbox() if person.has_person else None
            if box is not None:
                h, w = rgb.shape[:2]
                aspect = h / w
                boxes.append((box[0] / w, box[1] / h, box[2] / w, box[3] / h))
                heights.append((box[3] - box[1]) / h)
            elif not boxes and searched >= GIVE_UP_AFTER:
                break
    if not boxes:
        return SearchResult(0, searched, None)
    height = float(np.median(heights))
    arr = np.array(boxes)
    margin = WINDOW_MARGIN * height  # in frame heights; in frame widths it is x aspect
    x0, y0 = max(0.0, arr[:, 0].min() - margin * aspect), max(0.0, arr[:, 1].min() - margin)
    x1, y1 = min(1.0, arr[:, 2].max() + margin * aspect), min(1.0, arr[:, 3].max() + margin)
    logger.info("%s: found the person in %d of %d searched frames, within x %.2f-%.2f, y %.2f-%.2f of the frame",
                path, len(boxes), searched, x0, x1, y0, y1)
    # The detector shrinks its input by the long side: the window helps when its long side is much shorter
    # than the frame's (lengths in frame heights; a frame is 1 / aspect frame heights wide).
    ratio = max((x1 - x0) / aspect, y1 - y0) / max(1.0 / aspect, 1.0)
    window = None if ratio >= MIN_GAIN else (float(x0), float(y0), float(x1), float(y1))
    return SearchResult(len(boxes), searched, window, height)


def single_image_options(name: str, options: dict) -> dict:
    """``options`` for ``name`` in single-image mode, without the window options."""
    opts = without_window(options)
    if name == "mediapipe":
        opts["static_image_mode"] = True
    return opts


#: Side of :class:`FollowingDetector`'s window, in multiples of the person's keypoint extent at the last
#: detection (room for the motion between two keyframes).
FOLLOW_CONTEXT = 2.5

#: While lost, :class:`FollowingDetector` searches the whole frame tile by tile on every this-many-th call
#: (and looks around the last position on the others).
RESEARCH_EVERY = 8


class FollowingDetector(Detector):
    """Finds a small person and follows them: each image is searched on a square window around where the
    person was in the previous one (the detector sees them large there), and the whole image tile by tile
    (:func:`find_person`) when there is no previous position or the person was lost.

    The detector option ``follow=True`` (:func:`pose.detectors.base.create_detector`) wraps the named
    detector, in single-image mode, in one. For a dancer who crosses a wide stage, where a fixed window
    (``crop``) would have to be the whole stage.
    """

    tracks_across_frames = True

    def __init__(self, inner: Detector) -> None:
        self.inner = inner
        self.name = inner.name
        self._last: PoseFrame | None = None
        self._misses = 0

    def __call__(self, rgb: np.ndarray) -> PoseFrame:
        rgb = check_rgb(rgb)
        h, w = rgb.shape[:2]
        found = PoseFrame.empty(w, h)
        if self._last is not None:
            found = self._around(rgb, self._last)
        if not found.has_person and (self._last is None or self._misses % RESEARCH_EVERY == 0):
            found = find_person(rgb, self.inner)
        if found.has_person:
            self._last, self._misses = found, 0
        else:
            self._misses += 1
        return found

    def _around(self, rgb: np.ndarray, last: PoseFrame) -> PoseFrame:
        window = square_window(last, FOLLOW_CONTEXT)
        if window is None:
            return PoseFrame.empty(rgb.shape[1], rgb.shape[0])
        return detect_in_window(self.inner, rgb, window)

    def reset(self) -> None:
        self.inner.reset()
        self._last, self._misses = None, 0

    def close(self) -> None:
        self.inner.close()

    def options(self) -> dict:
        return {**self.inner.options(), "follow": True}
