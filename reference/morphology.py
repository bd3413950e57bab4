"""Structuring elements shared by the segmentation, the rig and the puppet renderer."""

from __future__ import annotations

import cv2
import numpy as np


def disc(radius: float) -> np.ndarray:
    """Elliptic structuring element of ``radius`` pixels (rounded, at least 1): ``2r + 1`` pixels across."""
    r = max(1, round(radius))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
