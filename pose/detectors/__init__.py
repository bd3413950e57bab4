"""Pose detectors behind one small interface, chosen by name (see :mod:`pose.detectors.base`)."""

from .base import (
    DEFAULT_DETECTOR,
    Detector,
    available_detectors,
    check_rgb,
    create_detector,
    detector_class,
    register_detector,
)

__all__ = [
    "DEFAULT_DETECTOR", "Detector", "available_detectors", "check_rgb", "create_detector", "detector_class",
    "register_detector",
]
