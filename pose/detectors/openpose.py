"""OpenPose body + hands + face through ``controlnet_aux`` (torch), from a LOCAL annotator folder.

The folder must hold the three files ``controlnet_aux.OpenposeDetector.from_pretrained`` reads from a
directory (:data:`ANNOTATOR_FILES`), as published in the ``lllyasviel/Annotators`` repository on the
Hugging Face hub. posedrive never downloads them: fetch them yourself, e.g.
``huggingface-cli download lllyasviel/Annotators body_pose_model.pth hand_pose_model.pth facenet.pth
--local-dir annotators``, then pass ``annotator_dir="annotators"``.

controlnet_aux returns keypoints normalised to [0, 1] (missing = ``None`` for the body, negative for
hands and face) with the body in OpenPose-18 order and hands labelled by the person's side; its face has
70 points (iBUG 68 + two pupils), of which the first 68 are kept. It drops the body part scores, so a
detected body keypoint gets score 1.0.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .. import layout
from ..errors import DetectorError
from ..sequence import FrameStatus, PoseFrame, empty_keypoints
from .base import Detector, check_rgb

logger = logging.getLogger(__name__)

ANNOTATOR_FILES: tuple[str, ...] = ("body_pose_model.pth", "hand_pose_model.pth", "facenet.pth")
ANNOTATOR_REPO = "lllyasviel/Annotators"
# Long side the image is resized to before detection (controlnet_aux's own default is 512).
DEFAULT_DETECT_RESOLUTION = 512


def _import_controlnet_aux():
    try:
        from controlnet_aux.open_pose import OpenposeDetector as _Impl
    except ImportError as exc:
        raise DetectorError(
            "the openpose detector needs controlnet-aux and torch; run `pip install controlnet-aux torch torchvision`"
        ) from exc
    return _Impl


def missing_annotator_files(annotator_dir: str | Path) -> list[str]:
    """Names of :data:`ANNOTATOR_FILES` absent from ``annotator_dir``."""
    d = Path(annotator_dir)
    return [f for f in ANNOTATOR_FILES if not (d / f).is_file()]


def _points(points, width: int, height: int, n: int) -> np.ndarray:
    """controlnet_aux keypoint list (normalised, ``None`` or negative = missing) -> ``(n, 3)`` pixels."""
    out = np.full((n, 3), np.nan, dtype=np.float32)
    out[:, 2] = 0.0
    if points is None:
        return out
    for i, kp in enumerate(list(points)[:n]):
        if kp is None or kp.x < 0 or kp.y < 0:
            continue
        out[i] = (kp.x * width, kp.y * height, float(getattr(kp, "score", 1.0)))
    return out


def pose_result_to_frame(result, width: int, height: int) -> PoseFrame:
    """One controlnet_aux ``PoseResult`` (normalised coordinates) -> :class:`PoseFrame` in pixels.

    Args:
        result: object with ``body.keypoints`` (18 entries), ``left_hand``, ``right_hand`` (21 each or
            ``None``) and ``face`` (70 or ``None``), as returned by ``OpenposeDetector.detect_poses``.
        width, height: pixel size of the image.
    """
    kps = empty_keypoints()
    kps[layout.BODY] = _points(result.body.keypoints, width, height, layout.NUM_BODY)
    kps[layout.LEFT_HAND] = _points(result.left_hand, width, height, layout.NUM_HAND)
    kps[layout.RIGHT_HAND] = _points(result.right_hand, width, height, layout.NUM_HAND)
    kps[layout.FACE] = _points(result.face, width, height, layout.NUM_FACE)
    return PoseFrame(kps, width, height, FrameStatus.DETECTED)


def _body_size(result) -> float:
    pts = [(k.x, k.y) for k in result.body.keypoints if k is not None]
    if len(pts) < 2:
        return 0.0
    a = np.asarray(pts)
    return float(np.hypot(*(a.max(axis=0) - a.min(axis=0))))  # bbox diagonal: robust to thin poses


class OpenposeDetector(Detector):
    """OpenPose via controlnet_aux, weights from a local folder; keeps the largest person.

    Args:
        annotator_dir: folder holding ``body_pose_model.pth``, ``hand_pose_model.pth`` and ``facenet.pth``.
        include_hands: detect hands (slower). Default ``True``.
        include_face: detect the face. Default ``True``.
        detect_resolution: long side in pixels the image is resized to for detection. Default 512.
        device: torch device string. Default ``"cpu"``.

    Raises:
        DetectorError: ``annotator_dir`` is missing files (their names and where to get them are given),
            or controlnet-aux / torch is not installed.
    """

    name = "openpose"

    def __init__(self, annotator_dir: str | Path | None = None, include_hands: bool = True,
                 include_face: bool = True, detect_resolution: int = DEFAULT_DETECT_RESOLUTION,
                 device: str = "cpu") -> None:
        if annotator_dir is None:
            raise DetectorError(
                f"the openpose detector needs annotator_dir=FOLDER holding {', '.join(ANNOTATOR_FILES)} "
                f"(download them from {ANNOTATOR_REPO} on the Hugging Face hub)"
            )
        d = Path(annotator_dir)
        missing = missing_annotator_files(d)
        if missing:
            raise DetectorError(
                f"annotator folder {d} lacks {', '.join(missing)}; download them from {ANNOTATOR_REPO} on the "
                "Hugging Face hub into that folder"
            )
        if detect_resolution < 64:
            raise DetectorError(f"openpose option detect_resolution={detect_resolution} is too small; use >= 64")
        impl = _import_controlnet_aux()
        try:
            self._model = impl.from_pretrained(str(d)).to(device)
        except Exception as exc:  # torch raises many types for bad pickles / shapes
            raise DetectorError(
                f"cannot load the OpenPose annotator files in {d} ({type(exc).__name__}); re-download them from "
                f"{ANNOTATOR_REPO}"
            ) from exc
        self.annotator_dir = d
        self.include_hands, self.include_face = bool(include_hands), bool(include_face)
        self.detect_resolution = int(detect_resolution)
        self.device = device

    @classmethod
    def from_model(cls, model, include_hands: bool = True, include_face: bool = True,
                   detect_resolution: int = DEFAULT_DETECT_RESOLUTION) -> OpenposeDetector:
        """Wrap an already built ``controlnet_aux`` OpenposeDetector (tests, custom weights)."""
        self = cls.__new__(cls)
        self._model = model
        self.annotator_dir = None
        self.include_hands, self.include_face = include_hands, include_face
        self.detect_resolution = detect_resolution
        self.device = "cpu"
        return self

    def options(self) -> dict:
        return {"annotator_dir": str(self.annotator_dir) if self.annotator_dir else None,
                "include_hands": self.include_hands, "include_face": self.include_face,
                "detect_resolution": self.detect_resolution}

    def __call__(self, rgb: np.ndarray) -> PoseFrame:
        """Detect the largest person in ``rgb`` (``(H, W, 3)`` uint8); keypoints in ``rgb``'s pixels."""
        import cv2

        rgb = check_rgb(rgb)
        h, w = rgb.shape[:2]
        s = self.detect_resolution / max(h, w)
        small = rgb if s >= 1.0 else cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))),
                                                 interpolation=cv2.INTER_AREA)
        results = self._model.detect_poses(small, include_hand=self.include_hands, include_face=self.include_face)
        if not results:
            return PoseFrame.empty(w, h)
        best = max(results, key=_body_size)
        frame = pose_result_to_frame(best, w, h)
        return frame if frame.has_person else PoseFrame.empty(w, h)

    def close(self) -> None:
        self._model = None
