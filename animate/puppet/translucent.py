"""Translucent and glowing parts of a character that the person segmentation leaves out.

Sheer sleeves, a veil, the glowing rim of a skirt or a halo around the hair get a low probability from the
person segmentation, so they are neither cut out nor inpainted: they stay in the background plate and float
there as a ghost of the reference pose while the character dances away. Here they are found by what they
are not: the background. Near the cut-out, a pixel whose colour is (almost) absent from the background seen
around it, beyond the search zone, belongs to the character (:func:`translucent_fringe`). Those pixels are
inpainted in the plate with the character and attached to it with a partial alpha, measured against the
plate, and the colours unmixed from it (:func:`attach_translucent`): at rest the render gives the reference
back, and once the arms move the sleeves go with them.

Pixels next to the legs are left out: beside the legs and feet lie shadows on the floor or a wall and the
background seen between the legs, which must stay where they are.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
from scipy import ndimage

from reference.colour import colour_codes
from reference.morphology import disc

logger = logging.getLogger(__name__)

#: How far from the cut-out translucent parts are searched for, as a fraction of the image height.
TRANSLUCENT_REACH = 0.08
#: Half size of the square neighbourhood, as a fraction of the height, whose background (outside the search
#: zone) a pixel's colour is compared with.
BACKGROUND_WINDOW = 0.15
#: A pixel is foreign to the background when under this share of the background pixels of its neighbourhood
#: have its colour (within one histogram cell per channel).
FOREIGN_SHARE = 0.003
#: Colour difference to the plate (largest channel, 0..255) at which an attached pixel is opaque.
OPAQUE_DIFFERENCE = 96.0
#: Attached alpha below this is dropped (compression noise, the faintest bloom).
MIN_ALPHA = 0.1


def translucent_fringe(image: np.ndarray, alpha: np.ndarray, exclude: np.ndarray | None = None,
                       reach: float = TRANSLUCENT_REACH, window: float = BACKGROUND_WINDOW,
                       share: float = FOREIGN_SHARE, bins: int = 8, side: int = 320) -> np.ndarray:
    """Pixels beside the cut-out whose colours the background around them does not have.

    Computed at ``side`` pixels on the longest side. The search zone is the ring within ``reach`` x height
    of the cut-out; the background is everything beyond it. For each ring pixel, the share of background
    pixels in its ``(2 window x height)``-wide square neighbourhood whose colour lies within one cell
    (``bins`` per channel) of its own is counted; under ``share``, the pixel is foreign. Foreign pieces
    (after a 3x3 opening) that touch the cut-out are kept, but not the pixels whose nearest cut-out pixel
    is in ``exclude``.

    Args:
        image: ``(H, W, 3)`` uint8 RGB reference.
        alpha: ``(H, W)`` float character alpha of the cut-out.
        exclude: optional ``(H, W)`` bool map of the cut-out pixels that carry no translucent parts (the
            legs); ``None`` = none.
        reach: search distance from the cut-out, fraction of the height.
        window: half size of the background neighbourhood, fraction of the height.
        share: background share under which a colour is foreign.
        bins: colour histogram cells per channel.
        side: working resolution (longest side, pixels).

    Returns:
        ``(H, W)`` bool mask of the translucent fringe (never inside the cut-out).
    """
    h, w = alpha.shape
    cut_full = alpha > 0.02
    scale = min(1.0, side / max(h, w))
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    cut = cv2.resize(cut_full.astype(np.float32), (sw, sh), interpolation=cv2.INTER_LINEAR) > 0.5
    if not cut.any():
        return np.zeros((h, w), bool)
    zone = cv2.dilate(cut.astype(np.uint8), disc(reach * sh)) > 0
    ring, background = zone & ~cut, ~zone
    if not background.any():
        return np.zeros((h, w), bool)
    codes = colour_codes(small, bins)
    size = max(3, round(2 * window * sh) | 1)
    half = size // 2
    count = np.maximum(cv2.boxFilter(background.astype(np.float32), -1, (size, size), normalize=False), 1.0)
    # background pixels' colour cells; the cells within one step per channel of each cell
    back_codes = np.where(background, codes, -1)
    cells = np.stack(np.unravel_index(np.arange(bins ** 3), (bins, bins, bins)), axis=1)
    foreign = np.zeros((sh, sw), bool)
    ring_codes = np.where(ring, codes, -1)
    for code in np.unique(codes[ring]):
        sel = ring_codes == code
        rows, cols = np.nonzero(sel.any(axis=1))[0], np.nonzero(sel.any(axis=0))[0]
        # the box sums are needed only at ``sel``: within its bounding box grown by the box's half size
        # (clipped at the image edge, where the border handling is the same as on the whole image)
        y0, y1 = max(rows[0] - half, 0), min(rows[-1] + half + 1, sh)
        x0, x1 = max(cols[0] - half, 0), min(cols[-1] + half + 1, sw)
        near = np.abs(cells - cells[code]).max(axis=1) <= 1
        lut = np.append(near, False)  # index -1 (not background) -> False
        alike = lut[back_codes[y0:y1, x0:x1]]
        present = cv2.boxFilter(alike.astype(np.float32), -1, (size, size), normalize=False)
        box = sel[y0:y1, x0:x1]
        foreign[y0:y1, x0:x1][box] = present[box] < share * count[y0:y1, x0:x1][box]
    foreign = cv2.morphologyEx(foreign.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    _, pieces = cv2.connectedComponents(foreign, connectivity=8)
    touching = np.unique(pieces[(cv2.dilate(cut.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0) & (foreign > 0)])
    fringe = np.isin(pieces, touching[touching > 0])
    if exclude is not None and fringe.any():
        blocked = cv2.resize(np.asarray(exclude, np.float32), (sw, sh), interpolation=cv2.INTER_LINEAR) > 0.5
        _, nearest = ndimage.distance_transform_edt(~cut, return_indices=True)
        fringe &= ~blocked[nearest[0], nearest[1]]
    full = cv2.resize(fringe.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) > 0.5
    return full & ~cut_full


def attach_translucent(image: np.ndarray, plate: np.ndarray, fringe: np.ndarray,
                       opaque: float = OPAQUE_DIFFERENCE, min_alpha: float = MIN_ALPHA,
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Alpha and colours of the translucent fringe, unmixed from the plate behind it.

    The alpha of a fringe pixel is its colour's difference to the plate (largest channel) over ``opaque``,
    clipped to 1 and lightly smoothed, and never under the least alpha that can explain its colour; its
    colour ``F`` solves ``alpha F + (1 - alpha) plate = image``, so
    drawn over the plate at rest it gives the reference back.

    Args:
        image: ``(H, W, 3)`` uint8 RGB reference.
        plate: ``(H, W, 3)`` uint8 RGB background with the character and ``fringe`` inpainted.
        fringe: ``(H, W)`` bool mask from :func:`translucent_fringe`.
        opaque: difference (0..255) at which a pixel is opaque.
        min_alpha: alpha below this is dropped.

    Returns:
        ``(alpha, colours)``: ``(H, W)`` float32 alpha, 0 off the fringe, and ``(H, W, 3)`` uint8 RGB: the
        image with the fringe's colours unmixed (a copy; ``image`` is not modified).
    """
    img = image.astype(np.float32)
    back = plate.astype(np.float32)
    diff = np.abs(img - back).max(axis=2)
    sel = fringe.astype(bool)
    alpha = np.where(sel, np.clip(diff / float(opaque), 0.0, 1.0), 0.0).astype(np.float32)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 1.0) * sel
    # never less than the colour needs: a pixel far from the plate at the fringe's edge, where the blur
    # lowered its alpha, would unmix to a colour out of range and no longer give the reference back
    up, down = np.clip(img - back, 0, None), np.clip(back - img, 0, None)
    need = np.maximum(up / np.maximum(255.0 - back, 1.0), down / np.maximum(back, 1.0)).max(axis=2)
    alpha = np.where(sel, np.clip(np.maximum(alpha, need), 0.0, 1.0), 0.0).astype(np.float32)
    alpha[alpha < min_alpha] = 0.0
    colours = image.copy()
    ys, xs = np.nonzero(alpha > 0)
    if len(ys):
        a = alpha[ys, xs, None]
        colours[ys, xs] = np.clip(back[ys, xs] + (img[ys, xs] - back[ys, xs]) / a + 0.5, 0, 255).astype(np.uint8)
    return alpha, colours


def nearest_labels(labels: np.ndarray, owners: np.ndarray, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Layer labels and bone owners of ``pixels`` taken from the nearest labelled pixel.

    Args:
        labels: ``(H, W)`` int layer index per pixel, -1 outside the character.
        owners: ``(H, W)`` int index of the layer whose bones own each pixel, -1 outside.
        pixels: ``(H, W)`` bool pixels to label (those already labelled keep their labels).

    Returns:
        ``(labels, owners)``: copies with ``pixels`` labelled.
    """
    labels, owners = labels.copy(), owners.copy()
    todo = pixels & (labels < 0)
    if not todo.any() or not (labels >= 0).any():
        return labels, owners
    ys, xs = np.nonzero(todo | (labels >= 0))
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    box = labels[y0:y1, x0:x1]
    _, nearest = ndimage.distance_transform_edt(box < 0, return_indices=True)
    sel = todo[y0:y1, x0:x1]
    ny, nx = nearest[0][sel], nearest[1][sel]
    labels[y0:y1, x0:x1][sel] = box[ny, nx]
    owners[y0:y1, x0:x1][sel] = owners[y0:y1, x0:x1][ny, nx]
    return labels, owners
