"""Quantised colour histograms: the colour models behind the rig's colour checks and the plate's colour fringe."""

from __future__ import annotations

import cv2
import numpy as np


def colour_codes(image: np.ndarray, bins: int) -> np.ndarray:
    """``(H, W)`` index of each pixel's colour among ``bins`` ** 3 RGB cells (``bins`` per channel)."""
    q = (image.astype(np.int32) * bins) // 256
    return (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]


def colour_density(codes: np.ndarray, bins: int) -> np.ndarray:
    """Normalised, slightly smoothed histogram of quantised colours (``bins`` ** 3 entries)."""
    hist = np.bincount(codes.ravel(), minlength=bins ** 3).astype(np.float32).reshape(bins, bins, bins)
    hist = cv2.GaussianBlur(hist.reshape(bins, bins * bins), (3, 3), 0).reshape(bins, bins, bins)  # within-plane
    hist = hist.ravel() + 1e-3 * hist.sum() / bins ** 3
    return hist / hist.sum()
