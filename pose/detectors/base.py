"""The interface every pose detector implements, and the registry that picks one by name.

A detector is ``preprocess -> inference -> postprocess``: it takes one ``(H, W, 3)`` uint8 RGB image and
returns a :class:`~pose.sequence.PoseFrame` in that image's pixels (134-keypoint layout). When no person is
found it returns ``PoseFrame.empty(W, H)`` (status ``MISSING``), never raises. Detectors that track across
frames (mediapipe Holistic in video mode) must be :meth:`Detector.reset` between videos or after a seek.

Optional backends are imported lazily, so ``import pose.detectors`` costs nothing and never imports torch.
"""

from __future__ import annotations

import abc
import importlib
import inspect
from typing import ClassVar

import numpy as np

from ..errors import DetectorError, InputError
from ..sequence import PoseFrame


class Detector(abc.ABC):
    """Base class of pose detectors.

    Usage::

        with create_detector("mediapipe") as det:
            for rgb in frames:
                frame = det(rgb)          # PoseFrame, MISSING when no person
            det.reset()                   # before the next, unrelated video
    """

    name: ClassVar[str] = ""
    #: True when consecutive calls share state (tracking), so frames must come in video order.
    tracks_across_frames: ClassVar[bool] = False

    @abc.abstractmethod
    def __call__(self, rgb: np.ndarray) -> PoseFrame:
        """Detect one person in a ``(H, W, 3)`` uint8 RGB image; pixels of that image."""

    def reset(self) -> None:
        """Forget tracking state (call before a new video or after a seek)."""

    def close(self) -> None:
        """Release models and native resources. Safe to call twice."""

    def options(self) -> dict:
        """JSON-serialisable options the detector was created with (recorded in sequence metadata)."""
        return {}

    def __enter__(self) -> Detector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_rgb(rgb: np.ndarray, what: str = "image") -> np.ndarray:
    """Validate a detector input: ``(H, W, 3)`` uint8, returned C-contiguous."""
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        shape = getattr(rgb, "shape", None)
        dtype = getattr(rgb, "dtype", type(rgb).__name__)
        raise InputError(f"{what} must be an (H, W, 3) uint8 RGB array, got shape {shape} dtype {dtype}; use pose.video.to_rgb")
    return np.ascontiguousarray(rgb)


#: Detector options that choose where in the image to look (:func:`create_detector`): they describe one video's
#: framing, so they go with its poses (and the evaluator's re-detection of them), never to another image.
WINDOW_OPTIONS = ("crop", "follow")


def without_window(options: dict) -> dict:
    """``options`` without the :data:`WINDOW_OPTIONS`."""
    return {k: v for k, v in options.items() if k not in WINDOW_OPTIONS}


class CroppedDetector(Detector):
    """Runs another detector on a fixed window of every image and maps its poses back to the whole image.

    For a person too small in the frame for the detector to find (a dancer on a wide stage): the window is
    found once per video (:mod:`pose.person_search`) and every frame is cropped to it before detection.

    Args:
        inner: the detector to run on the window.
        crop: ``(x0, y0, x1, y1)``, the window as fractions of the image's width and height.
    """

    def __init__(self, inner: Detector, crop: tuple[float, float, float, float]) -> None:
        self.inner = inner
        self.crop = check_crop(crop)
        self.name = inner.name
        self.tracks_across_frames = inner.tracks_across_frames

    def __call__(self, rgb: np.ndarray) -> PoseFrame:
        rgb = check_rgb(rgb)
        h, w = rgb.shape[:2]
        x0, y0, x1, y1 = self.crop
        c0, r0 = round(x0 * w), round(y0 * h)
        return detect_in_window(self.inner, rgb, (c0, r0, max(c0 + 1, round(x1 * w)), max(r0 + 1, round(y1 * h))))

    def reset(self) -> None:
        self.inner.reset()

    def close(self) -> None:
        self.inner.close()

    def options(self) -> dict:
        return {**self.inner.options(), "crop": [round(v, 6) for v in self.crop]}


def detect_in_window(detector: Detector, rgb: np.ndarray, window: tuple[int, int, int, int]) -> PoseFrame:
    """Run ``detector`` on the ``(x0, y0, x1, y1)`` pixel window of ``rgb``; the pose in ``rgb``'s pixels."""
    x0, y0, x1, y1 = window
    h, w = rgb.shape[:2]
    found = detector(np.ascontiguousarray(rgb[y0:y1, x0:x1]))
    return found.transformed(np.array([[1.0, 0.0, x0], [0.0, 1.0, y0]]), w, h)


def check_crop(crop) -> tuple[float, float, float, float]:
    """Validate a detection window ``[x0, y0, x1, y1]`` (fractions of the image); returned as floats."""
    try:
        window = tuple(float(v) for v in crop)
    except (TypeError, ValueError):
        window = ()
    if len(window) != 4 or not (0.0 <= window[0] < window[2] <= 1.0 and 0.0 <= window[1] < window[3] <= 1.0):
        raise DetectorError(f"detector option crop={crop!r} must be [x0, y0, x1, y1] fractions of the image "
                            "with 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1")
    return window


# name -> "module:Class", imported on first use.
_REGISTRY: dict[str, str] = {
    "mediapipe": "pose.detectors.mediapipe_holistic:MediapipeHolisticDetector",
    "openpose": "pose.detectors.openpose:OpenposeDetector",
    "skeleton": "pose.skeleton_parse:SkeletonDetector",
}
DEFAULT_DETECTOR = "mediapipe"


def available_detectors() -> list[str]:
    """Names accepted by :func:`create_detector`."""
    return sorted(_REGISTRY)


def register_detector(name: str, target: str) -> None:
    """Register a detector class under ``name`` (``target`` is ``"module:Class"``)."""
    if ":" not in target:
        raise DetectorError(f"detector target {target!r} for {name!r} must look like 'package.module:Class'")
    _REGISTRY[name] = target


def detector_class(name: str) -> type[Detector]:
    """The class registered under ``name`` (imports its module)."""
    if name not in _REGISTRY:
        raise DetectorError(f"unknown pose detector {name!r}; choose one of {', '.join(available_detectors())}")
    module_name, cls_name = _REGISTRY[name].split(":")
    module = importlib.import_module(module_name)
    return getattr(module, cls_name)


def create_detector(name: str = DEFAULT_DETECTOR, **options) -> Detector:
    """Create the pose detector registered under ``name``.

    Args:
        name: ``"mediapipe"`` (default, CPU, offline), ``"openpose"`` (controlnet-aux, needs a local
            annotator folder) or ``"skeleton"`` (reads rendered OpenPose skeleton images).
        **options: passed to the detector's constructor (see each class), except ``crop``
            (``[x0, y0, x1, y1]`` fractions of the image): detect on that window only
            (:class:`CroppedDetector`), and ``follow=True``: find a small person and follow them, each image
            searched around their last position (:class:`pose.person_search.FollowingDetector`).

    Raises:
        DetectorError: unknown name, missing optional package or model files, invalid option.
    """
    crop = options.pop("crop", None)
    window = None if crop is None else check_crop(crop)
    if options.pop("follow", False):
        from ..person_search import FollowingDetector, single_image_options

        return FollowingDetector(create_detector(name, **single_image_options(name, options)))
    cls = detector_class(name)
    try:
        inspect.signature(cls).bind(**options)
    except TypeError as exc:
        raise DetectorError(f"invalid option for pose detector {name!r} ({exc}); see help({cls.__module__}.{cls.__name__})") from exc
    return cls(**options) if window is None else CroppedDetector(cls(**options), window)
