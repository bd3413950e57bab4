"""Background plate: the reference with the character removed (inpainted once per character).

Diffusion-style inpainting (:func:`cv2.inpaint`, Telea or Navier-Stokes) is good near the hole's border but
draws streaks deep inside a large hole, where it only propagates a few border colours. The plate is
therefore filled at two scales: at ``work_side`` pixels near the border and at the much coarser
``coarse_side`` deep inside (a smooth estimate of the hidden background, which is also what minimises the
expected error), blended by the distance to the hole border.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from pose.errors import ConfigError
from reference.colour import colour_codes, colour_density
from reference.morphology import disc

logger = logging.getLogger(__name__)

METHODS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}


def _fill(image: np.ndarray, hole: np.ndarray, side: int, radius: float, method: str) -> np.ndarray:
    """Inpaint ``hole`` of ``image`` at ``side`` pixels on the longest side; the fill at full size."""
    h, w = hole.shape
    scale = min(1.0, side / max(h, w))
    sw, sh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    small_hole = (cv2.resize(hole.astype(np.float32), (sw, sh), interpolation=cv2.INTER_LINEAR) > 0).astype(np.uint8)
    filled = cv2.inpaint(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), small_hole, radius, METHODS[method])
    filled = cv2.cvtColor(filled, cv2.COLOR_BGR2RGB)
    return cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR) if (sw, sh) != (w, h) else filled


#: How far from the cut-out :func:`uncertain_fringe` looks, as a fraction of the image height.
FRINGE_REACH = 0.02


def uncertain_fringe(alpha: np.ndarray, probability: np.ndarray, threshold: float,
                     reach: float = FRINGE_REACH) -> np.ndarray:
    """Pixels beside the character that the segmentation half believes in, to be inpainted with it.

    The character is cut out with a tight threshold, so the uncertain fringe of a limb whose colours are
    close to the background's stays in the background plate and shows as a ghost outline once the limb
    has moved. The plate should lose it too: a slightly larger inpainted hole is not visible, a ghost is.

    Args:
        alpha: ``(H, W)`` float character alpha of the cut-out.
        probability: ``(H, W)`` segmentation probability the cut-out was thresholded from.
        threshold: probability above which a nearby pixel belongs to the fringe.
        reach: only pixels within this fraction of the image height of the cut-out count (a second
            person or a statue farther away stays in the picture).

    Returns:
        ``(H, W)`` float32 mask, 1 on the fringe.
    """
    cut = (alpha > 0.02).astype(np.uint8)
    near = cv2.dilate(cut, disc(reach * alpha.shape[0])) > 0
    return (near & (np.asarray(probability) >= threshold)).astype(np.float32)


#: Depth of the band inside the cut-out whose colours model the character's outline in :func:`colour_fringe`,
#: and outer radius of the ring whose colours model the background around it (fractions of the height).
COLOUR_FRINGE_BANDS = (0.03, 0.06)


def colour_fringe(image: np.ndarray, alpha: np.ndarray, ratio: float, reach: float = FRINGE_REACH,
                  bins: int = 12) -> np.ndarray:
    """Pixels beside the character coloured like its outline, not like the background around it.

    The segmentation misses the thin, glowing or semi-transparent parts of a character (hair tips, a glow
    along the arms, a light-coloured outline) and those stay in the background plate, where they float as
    a ghost once the character has moved: `musepose_ref.png`'s blonde hair tips beside the face did. Two
    colour histograms decide: the character's pixels within :data:`COLOUR_FRINGE_BANDS` [0] of the height
    inside its outline, and the background's in a ring from ``reach`` to :data:`COLOUR_FRINGE_BANDS` [1] of
    the height outside it. A pixel within ``reach`` of the cut-out whose colour is ``ratio`` times likelier
    under the character's histogram belongs to the fringe, if its piece (after a 3x3 opening) touches the
    cut-out.

    Args:
        image: ``(H, W, 3)`` uint8 RGB reference.
        alpha: ``(H, W)`` float character alpha of the cut-out.
        ratio: likelihood ratio needed (> 1).
        reach: how far from the cut-out to look, fraction of the height.
        bins: histogram bins per channel.

    Returns:
        ``(H, W)`` float32 mask, 1 on the fringe.
    """
    h = alpha.shape[0]
    cut = (alpha > 0.02).astype(np.uint8)
    out = np.zeros(alpha.shape, np.float32)
    if not cut.any():
        return out
    near = cv2.dilate(cut, disc(reach * h)) > 0
    inner = (cut > 0) & ~(cv2.erode(cut, disc(COLOUR_FRINGE_BANDS[0] * h)) > 0)
    ring = (cv2.dilate(cut, disc(COLOUR_FRINGE_BANDS[1] * h)) > 0) & ~near
    if inner.sum() < 20 or ring.sum() < 20:
        return out
    codes = colour_codes(image, bins)
    likelier = colour_density(codes[inner], bins) > ratio * colour_density(codes[ring], bins)
    candidate = near & (cut == 0) & likelier[codes]
    candidate = cv2.morphologyEx(candidate.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    _, pieces = cv2.connectedComponents(candidate, connectivity=8)
    touching = np.unique(pieces[(cv2.dilate(cut, np.ones((3, 3), np.uint8)) > 0) & (candidate > 0)])
    out[np.isin(pieces, touching[touching > 0])] = 1.0
    return out


def inpaint_background(image: np.ndarray, alpha: np.ndarray, method: str = "telea", dilate: float = 0.006,
                       radius: float = 10.0, work_side: int = 192, coarse_side: int = 64,
                       ramp: float = 0.016) -> np.ndarray:
    """Fill the region where the character stands.

    The hole (``alpha > 0.02``, grown by ``dilate`` x image height to swallow the character's halo) is
    inpainted at ``work_side`` and at ``coarse_side`` pixels on the longest side; the fine fill is used
    at the hole border, the coarse one from ``ramp`` x image height inside it on (linear blend in between).
    Pixels outside the hole are kept exactly.

    Args:
        image: ``(H, W, 3)`` uint8 RGB reference.
        alpha: ``(H, W)`` float character alpha in [0, 1].
        method: ``"telea"`` (default) or ``"ns"`` (Navier-Stokes).
        dilate: hole growth as a fraction of the image height (default 0.006).
        radius: inpainting neighbourhood radius in working-resolution pixels (default 10; the coarse pass
            uses ``radius * coarse_side / work_side``).
        work_side: longest side of the fine working resolution (default 192).
        coarse_side: longest side of the coarse working resolution (default 64); ``0`` = fine pass only.
        ramp: depth into the hole, as a fraction of the image height, over which the fine fill gives way
            to the coarse one (default 0.016).

    Returns:
        ``(H, W, 3)`` uint8 RGB background plate.
    """
    if method not in METHODS:
        raise ConfigError(f"inpaint method '{method}' is unknown; use one of {', '.join(METHODS)}")
    if work_side < 16 or (coarse_side and coarse_side < 16) or not radius > 0 or not ramp > 0:
        raise ConfigError(f"inpaint work_side={work_side} and coarse_side={coarse_side} must be >= 16 (coarse 0 = off), "
                          f"radius={radius} and ramp={ramp} > 0")
    h, w = alpha.shape
    hole = cv2.dilate((alpha > 0.02).astype(np.uint8), disc(dilate * h))
    fill = _fill(image, hole, work_side, radius, method).astype(np.float32)
    if coarse_side:
        coarse = _fill(image, hole, coarse_side, max(1.0, radius * coarse_side / work_side), method)
        depth = cv2.distanceTransform(hole, cv2.DIST_L2, 5)
        wgt = np.clip(depth / max(1.0, ramp * h), 0.0, 1.0)[..., None]
        fill = fill * (1.0 - wgt) + coarse.astype(np.float32) * wgt
    out = image.copy()
    sel = hole > 0
    out[sel] = np.clip(fill[sel] + 0.5, 0, 255).astype(np.uint8)
    logger.debug("inpainted %.1f%% of the background (%s, %d/%d px)", 100.0 * float(sel.mean()), method,
                 work_side, coarse_side)
    return out
