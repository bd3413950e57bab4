"""Background plate: the reference with the character removed (inpainted once per character)."""

from __future__ import annotations

import logging

import cv2
import numpy as np

from pose.errors import ConfigError

logger = logging.getLogger(__name__)

METHODS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}


def inpaint_background(image: np.ndarray, alpha: np.ndarray, method: str = "telea", dilate: float = 0.012,
                       radius: float = 5.0, work_side: int = 384) -> np.ndarray:
    """Fill the region where the character stands with OpenCV inpainting.

    The hole (``alpha > 0.02``, grown by ``dilate`` x image height to swallow the character's halo) is filled
    at a working resolution of ``work_side`` pixels on the longest side (inpainting cost grows with the
    hole area) and the fill is scaled back; pixels outside the hole are kept exactly.

    Args:
        image: ``(H, W, 3)`` uint8 RGB reference.
        alpha: ``(H, W)`` float character alpha in [0, 1].
        method: ``"telea"`` (default) or ``"ns"`` (Navier-Stokes).
        dilate: hole growth as a fraction of the image height (default 0.012).
        radius: inpainting neighbourhood radius in working-resolution pixels (default 5).
        work_side: longest side of the working resolution (default 384).

    Returns:
        ``(H, W, 3)`` uint8 RGB background plate.
    """
    if method not in METHODS:
        raise ConfigError(f"inpaint method '{method}' is unknown; use one of {', '.join(METHODS)}")
    h, w = alpha.shape
    grow = max(1, int(round(dilate * h)))
    hole = cv2.dilate((alpha > 0.02).astype(np.uint8), cv2.getStructuringElement(
        cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    scale = min(1.0, work_side / max(h, w))
    sw, sh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    small_hole = (cv2.resize(hole.astype(np.float32), (sw, sh), interpolation=cv2.INTER_LINEAR) > 0).astype(np.uint8)
    filled = cv2.inpaint(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), small_hole, radius, METHODS[method])
    filled = cv2.cvtColor(filled, cv2.COLOR_BGR2RGB)
    up = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR) if (sw, sh) != (w, h) else filled
    out = image.copy()
    sel = hole > 0
    out[sel] = up[sel]
    logger.debug("inpainted %.1f%% of the background (%s)", 100.0 * float(sel.mean()), method)
    return out
