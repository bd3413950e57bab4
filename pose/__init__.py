"""posedrive pose stage: driving video -> whole-body skeleton sequences, kept as data.

The public API, typed and documented in each module::

    from pose import extract_poses, detect_image, retarget, render_sequence, save_sequence, load_sequence

    seq = extract_poses("dance.mp4")                 # PoseSequence, gaps filled, One-Euro smoothed
    save_sequence(seq, "dance.json")                 # editable JSON (or .npz)
    ref = detect_image("character.png")              # PoseFrame of the character
    fitted = retarget(seq, ref)                      # driving motion on the character's body
    for rgb in render_sequence(fitted, "openpose"):  # skeleton frames in a guider's convention
        ...

Heavy dependencies (mediapipe, OpenCV video) are imported only when the functions that need them
are first used, so ``import pose`` is cheap.
"""

from __future__ import annotations

from .errors import (
    ConfigError,
    DetectorError,
    InputError,
    NoPersonError,
    OutputError,
    PosedriveError,
    PoseFileError,
    VideoError,
    WeightsError,
)
from .io import load_pose_frame, load_sequence, save_pose_frame, save_sequence
from .lazy_exports import lazy_getattr
from .sequence import FrameStatus, PoseFrame, PoseSequence

_LAZY = {
    "extract_poses": "pose.extract",
    "detect_image": "pose.extract",
    "create_detector": "pose.detectors",
    "available_detectors": "pose.detectors",
    "open_video": "pose.video",
    "read_image": "pose.video",
    "VideoWriter": "pose.video",
    "fill_gaps": "pose.gaps",
    "smooth_sequence": "pose.smoothing",
    "OneEuroConfig": "pose.smoothing",
    "retarget": "pose.retarget",
    "render_pose": "pose.render",
    "render_sequence": "pose.render",
    "STYLES": "pose.render",
}

__all__ = [
    "ConfigError", "DetectorError", "FrameStatus", "InputError", "NoPersonError", "OutputError",
    "PoseFileError", "PoseFrame", "PoseSequence", "PosedriveError", "VideoError", "WeightsError",
    "load_pose_frame", "load_sequence", "save_pose_frame", "save_sequence", *_LAZY,
]


__getattr__ = lazy_getattr("pose", _LAZY, globals())
