"""Find a person too small in a video's frames for the detector to see, and the window to detect them in.

Mediapipe's person detector looks at the whole frame shrunk to 224 px. In a 1280x720 video made of
``tests/data/dance_short.mp4`` shrunk into a wider scene, it finds the dancer in every frame when she is
44 % of the frame's height and in none when she is 36 % (a dancer on a stage, filmed from the audience).
When the detector finds the person in too few frames, :func:`search_window` looks at a few frames spread
over the video: on each, the whole frame and then overlapping square tiles of decreasing size, until a
tile shows the person, who is then detected again on a crop around them
(:func:`pose.extract.zoom_window`). The window it returns covers every place the person was found, with
a margin; :func:`pose.extract.extract_poses` then detects again with every frame cropped to it
(:class:`pose.detectors.base.CroppedDetector`). A person who moves out of that window in frames that
were not searched is missed there, and those frames are filled like any other miss.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .detectors.base import Detector, create_detector
from .extract import zoom_in
from .sequence import PoseFrame
from .video import open_video

logger = logging.getLogger(__name__)

SEARCH_FRAMES = 6
"""Frames searched, spread evenly over the range."""

GIVE_UP_AFTER = 2
"""Searched frames without anybody after which the search stops (an empty video stays quick to reject)."""

TILE_SIDES = (1.0, 0.6, 0.4)
"""Sides of the square tiles, as fractions of the frame's short side; tiles overlap by half."""

WINDOW_MARGIN = 0.6
"""Margin added on every side of the found boxes, in multiples of the person's keypoint height."""

MIN_GAIN = 0.8
"""A window at least this fraction of the frame in both directions is no help: no window is returned."""


def _starts(length: int, side: int) -> list[int]:
    """Tile origins along one axis: every half tile, the last one flush with the end."""
    if side >= length:
        return [0]
    out = list(range(0, length - side, max(1, side // 2)))
    return [*out, length - side]


def find_person(rgb: np.ndarray, detector: Detector) -> PoseFrame:
    """The person in ``rgb``, found on the whole frame or, failing that, on the largest tiles (of
    :data:`TILE_SIDES`) on which any is found (the most confident tile wins), then detected again on a crop
    around them; empty when nobody is found.

    Args:
        rgb: ``(H, W, 3)`` uint8 frame.
        detector: a detector in single-image mode.
    """
    h, w = rgb.shape[:2]
    found = detector(rgb)
    if not found.has_person:
        for fraction in TILE_SIDES:
            side = max(2, round(fraction * min(h, w)))
            best, best_conf = None, -1.0
            for y in _starts(h, side):
                for x in _starts(w, side):
                    tile = detector(np.ascontiguousarray(rgb[y:y + side, x:x + side]))
                    if tile.has_person and tile.confidence() > best_conf:
                        best_conf = tile.confidence()
                        best = tile.transformed(np.array([[1.0, 0.0, x], [0.0, 1.0, y]]), w, h)
            if best is not None:
                found = best
                break
    return zoom_in(detector, rgb, found, "a searched frame") if found.has_person else found


def search_window(path: str | Path, name: str, options: dict, positions: list[int], *,
                  fps: float | None = None, max_size: int | None = None) -> tuple[float, float, float, float] | None:
    """Window ``(x0, y0, x1, y1)`` (fractions of the frame) around a person too small for the detector.

    Args:
        path: the video file or frame folder.
        name: detector name; its single-image mode is used.
        options: the detector's options.
        positions: source frame indices to search (:data:`SEARCH_FRAMES` of them, spread over the range).
        fps: the frame-rate override used for reading, if any.
        max_size: the decoding size used for detection.

    Returns:
        The window, or ``None`` when the person was not found in any searched frame or the window would
        cover (nearly) the whole frame.
    """
    boxes: list[tuple[float, float, float, float]] = []
    heights: list[float] = []
    aspect = 1.0  # frame height / width
    opts = {k: v for k, v in options.items() if k != "crop"}
    if name == "mediapipe":
        opts["static_image_mode"] = True
    with create_detector(name, **opts) as det:
        for k, t in enumerate(positions):
            with open_video(path, fps, max_size=max_size, start=t, end=t + 1) as src:
                rgb = next(iter(src), None)
            if rgb is None:
                continue
            person = find_person(rgb, det)
            box = person.bbox() if person.has_person else None
            if box is not None:
                h, w = rgb.shape[:2]
                aspect = h / w
                boxes.append((box[0] / w, box[1] / h, box[2] / w, box[3] / h))
                heights.append((box[3] - box[1]) / h)
            elif not boxes and k + 1 >= GIVE_UP_AFTER:
                break
    if not boxes:
        return None
    arr = np.array(boxes)
    margin = WINDOW_MARGIN * float(np.median(heights))  # in frame heights; in frame widths it is x aspect
    x0, y0 = max(0.0, arr[:, 0].min() - margin * aspect), max(0.0, arr[:, 1].min() - margin)
    x1, y1 = min(1.0, arr[:, 2].max() + margin * aspect), min(1.0, arr[:, 3].max() + margin)
    logger.info("%s: found the person in %d of %d searched frames, within x %.2f-%.2f, y %.2f-%.2f of the frame",
                path, len(boxes), len(positions), x0, x1, y0, y1)
    if x1 - x0 >= MIN_GAIN and y1 - y0 >= MIN_GAIN:
        return None
    return float(x0), float(y0), float(x1), float(y1)
