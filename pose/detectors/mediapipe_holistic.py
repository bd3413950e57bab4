"""The default pose detector: mediapipe Holistic (body 33 + face 468 + hands 21 x 2), CPU, offline.

mediapipe 0.10.21's wheel ships the files Holistic needs for ``model_complexity=1`` only (the "full" pose
landmark model); complexity 0 and 2 would download ``pose_landmark_lite/heavy.tflite`` at run time, so they
are refused with a :class:`~pose.errors.DetectorError`.

In video mode (``static_image_mode=False``) Holistic tracks the person from frame to frame (its region of
interest comes from the previous frame), which is faster and steadier than detecting each frame afresh;
call :meth:`MediapipeHolisticDetector.reset` before an unrelated video or after a seek.
"""

from __future__ import annotations

import importlib
import logging
import sys
import types

import cv2
import numpy as np

from ..errors import DetectorError
from ..mediapipe_convert import holistic_to_frame
from ..native_log import native_stderr_filtered
from ..sequence import PoseFrame
from ..video import fit_size
from .base import Detector, check_rgb

logger = logging.getLogger(__name__)

SHIPPED_MODEL_COMPLEXITY = 1
# Long side (pixels) frames are shrunk to before detection by default. Holistic runs its networks on small
# crops (256 px pose, 192 px face, 224 px hands), so frames larger than this only cost resize time; the
# accuracy against full-resolution input is measured in benchmarks/bench_pose_extract.py.
DEFAULT_MAX_SIZE = 960

# mediapipe graphs created in this process so far. A child forked after one was created crashes (heap
# corruption in its first graph, measured with mediapipe 0.10.21, even when the parent's graph was closed),
# so pose.extract only forks worker processes while this is 0.
_graphs_created = 0

# side of the blank frame a new graph is given while its start-up messages are filtered (pose.native_log)
_WARM_UP_SIZE = 64


def graphs_created() -> int:
    """Number of mediapipe graphs created in this process (closed ones included), see :func:`note_graph_created`."""
    return _graphs_created


def note_graph_created() -> None:
    """Record that a mediapipe graph was created in this process.

    Called by :class:`MediapipeHolisticDetector`; other code that creates mediapipe solutions (e.g. a
    segmentation model) should call it too, so that :func:`pose.extract.extract_poses` stops forking workers.
    """
    global _graphs_created
    _graphs_created += 1


def preload() -> None:
    """Import mediapipe without creating a graph (no threads start), so forked workers inherit the import.

    Raises:
        DetectorError: mediapipe is not installed.
    """
    _import_mediapipe()


class _Deferred(types.ModuleType):
    """Stands in for a module while mediapipe is imported; the real module is imported on first use."""

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attr)


def _import_mediapipe():
    """``import mediapipe``, without importing matplotlib.

    ``mediapipe.solutions.drawing_utils`` imports ``matplotlib.pyplot`` for a plotting helper posedrive never
    calls, which is 0.45 s of the 0.8 s the import takes (and the import is on the critical path of every
    pose extraction). While mediapipe is imported, stand-ins for matplotlib and pyplot are registered; they
    are removed right after, so any later ``import matplotlib`` gets the real package, and mediapipe's own
    reference loads the real pyplot if it is ever used.
    """
    if "mediapipe" in sys.modules:
        return sys.modules["mediapipe"]
    stand_ins = {}
    if "matplotlib.pyplot" not in sys.modules:
        stand_ins["matplotlib.pyplot"] = _Deferred("matplotlib.pyplot")
        if "matplotlib" not in sys.modules:
            stand_ins["matplotlib"] = _Deferred("matplotlib")
            stand_ins["matplotlib"].__path__ = []
            stand_ins["matplotlib"].pyplot = stand_ins["matplotlib.pyplot"]
    sys.modules.update(stand_ins)
    try:
        import mediapipe as mp
    except ImportError as exc:
        raise DetectorError("the mediapipe detector needs mediapipe; run `pip install mediapipe==0.10.21`") from exc
    finally:
        for name, module in stand_ins.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
    return mp


class MediapipeHolisticDetector(Detector):
    """Whole-body detection with ``mediapipe.solutions.holistic``.

    Args:
        static_image_mode: detect every image independently (single photos) instead of tracking
            (videos). Default ``False``.
        model_complexity: must be 1 (the only model shipped with the wheel; others would download).
        smooth_landmarks: mediapipe's own temporal filter (video mode). Default ``False``: posedrive
            smooths with its configurable One-Euro filter after gap filling.
        refine_face_landmarks: run the attention face model (iris points; slower). Default ``False``.
        min_detection_confidence: person detection threshold in [0, 1]. Default 0.5.
        min_tracking_confidence: below this the tracker re-detects. Default 0.5.
        max_size: frames whose long side exceeds this are downscaled (area filter) before detection;
            keypoints are returned in the input frame's pixels. ``None`` disables it. Default 960.
    """

    name = "mediapipe"
    tracks_across_frames = True

    def __init__(self, static_image_mode: bool = False, model_complexity: int = SHIPPED_MODEL_COMPLEXITY,
                 smooth_landmarks: bool = False, refine_face_landmarks: bool = False,
                 min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5,
                 max_size: int | None = DEFAULT_MAX_SIZE) -> None:
        if model_complexity != SHIPPED_MODEL_COMPLEXITY:
            raise DetectorError(
                f"mediapipe model_complexity={model_complexity} would download a model at run time; posedrive "
                f"works offline and supports only model_complexity={SHIPPED_MODEL_COMPLEXITY}"
            )
        for key, value in (("min_detection_confidence", min_detection_confidence),
                           ("min_tracking_confidence", min_tracking_confidence)):
            if not 0.0 <= value <= 1.0:
                raise DetectorError(f"mediapipe option {key}={value} must be in [0, 1]")
        if max_size is not None and max_size < 64:
            raise DetectorError(f"mediapipe option max_size={max_size} is too small; use >= 64 or None")
        self._opts = dict(
            static_image_mode=bool(static_image_mode), model_complexity=int(model_complexity),
            smooth_landmarks=bool(smooth_landmarks), refine_face_landmarks=bool(refine_face_landmarks),
            min_detection_confidence=float(min_detection_confidence),
            min_tracking_confidence=float(min_tracking_confidence),
        )
        self.max_size = max_size
        self._mp = _import_mediapipe()
        self._holistic = None
        self._open()

    def _open(self) -> None:
        note_graph_created()
        try:
            with native_stderr_filtered():
                self._holistic = self._mp.solutions.holistic.Holistic(**self._opts)
                # the graph opens its models on its own threads, each logging natively: one blank frame waits
                # for all of them inside the filtered window (the time is the first real frame's otherwise)
                self._holistic.process(np.zeros((_WARM_UP_SIZE, _WARM_UP_SIZE, 3), np.uint8))
        except Exception as exc:  # mediapipe raises RuntimeError/ValueError with long native messages
            if self._holistic is not None:
                self._holistic.close()
                self._holistic = None
            first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
            raise DetectorError(f"mediapipe Holistic could not start ({first}); reinstall mediapipe==0.10.21") from exc

    def options(self) -> dict:
        return {**self._opts, "max_size": self.max_size}

    def __call__(self, rgb: np.ndarray) -> PoseFrame:
        """Detect the person in ``rgb`` (``(H, W, 3)`` uint8); keypoints in ``rgb``'s pixels."""
        rgb = check_rgb(rgb)
        if self._holistic is None:
            self._open()
        h, w = rgb.shape[:2]
        dw, dh = fit_size(w, h, self.max_size)
        small = rgb if (dw, dh) == (w, h) else cv2.resize(rgb, (dw, dh), interpolation=cv2.INTER_AREA)
        with native_stderr_filtered():
            results = self._holistic.process(small)
        frame = holistic_to_frame(results, w, h)
        if not frame.has_person:
            return PoseFrame.empty(w, h)
        return frame

    def reset(self) -> None:
        """Drop the tracking state (a new Holistic graph is created on the next call)."""
        self.close()

    def close(self) -> None:
        if self._holistic is not None:
            with native_stderr_filtered():
                self._holistic.close()
            self._holistic = None
