"""A character cut off by the image border continues past it.

Half-body portraits (avatars, try-on photos cut at the thighs) and figures whose feet, hands or hair leave
the frame have a straight cut where the image ends. Moved as it is, that cut shows: the character leans and
the bottom of the skirt lifts off the frame's edge as a slanted line with background plate below it.

The puppet's layers are therefore prepared on a *working image*: the reference padded on the sides where
the character touches the border, each padded line repeating the border line (so a skirt cut by the bottom
edge goes on downwards in the colours it has there, an arm cut by a side edge goes on sideways). The meshes
keep canvas coordinates (the padding only adds vertices beyond the canvas); their textures are looked up in
the working image. Labels, skinning and the rig stay on the canvas, so nothing else changes.
"""

from __future__ import annotations

import cv2
import numpy as np

# A side counts as cutting the character when its outermost line crosses at least this fraction of the
# image height of character pixels: a fingertip or a strand of hair grazing the edge does not.
MIN_CUT = 0.03
# Images often end in a line of lighter or darker pixels (resampling, JPEG edge blocks), and the
# segmentation mask fades over the last few pixels. Within this fraction of the height of a cut border, a
# line whose colours jump from the next line inwards by more than EDGE_LINE_JUMP (median over the
# character) is such a line and takes the colours of the first line inside it, and the mask does not fade.
INSET = 0.01
EDGE_LINE_JUMP = 40.0
# The continuation's colours are blurred along the border over this fraction of their distance past it
# (either side), so the detail of the last line does not draw stripes.
SOFTEN = 0.5


def cut_sides(region: np.ndarray, min_run: float) -> tuple[bool, bool, bool, bool]:
    """Which sides of the image cut the character: ``(top, bottom, left, right)``.

    Args:
        region: ``(H, W)`` bool character pixels.
        min_run: character pixels the outermost line of a side must hold to count.
    """
    lines = (region[0], region[-1], region[:, 0], region[:, -1])
    return tuple(bool(line.sum() >= max(1.0, min_run)) for line in lines)  # type: ignore[return-value]


def border_padding(region: np.ndarray, extend: float, min_cut: float = MIN_CUT) -> tuple[int, int, int, int]:
    """Padding ``(top, bottom, left, right)`` in pixels of the working image: ``extend`` pixels on each side
    that cuts the character (:func:`cut_sides`, ``min_cut`` of the height), 0 elsewhere."""
    size = round(extend)
    if size <= 0:
        return (0, 0, 0, 0)
    sides = cut_sides(region, min_cut * region.shape[0])
    return tuple(size if cut else 0 for cut in sides)  # type: ignore[return-value]


def inset_lines(height: int) -> int:
    """Lines next to a cut border checked for an edge line and a fading mask (:data:`INSET` of the height)."""
    return max(2, round(INSET * height))


def _side_views(array: np.ndarray, padding: tuple[int, int, int, int]):
    """For each padded side, ``array`` viewed with that border as line 0 (top) and lines running inwards."""
    top, bottom, left, right = padding
    views = []
    if top:
        views.append(array)
    if bottom:
        views.append(array[::-1])
    if left:
        views.append(np.swapaxes(array, 0, 1))
    if right:
        views.append(np.swapaxes(array, 0, 1)[::-1])
    return views


def repair_edge_lines(image: np.ndarray, region: np.ndarray, padding: tuple[int, int, int, int],
                      inset: int, jump: float = EDGE_LINE_JUMP) -> np.ndarray:
    """A copy of ``image`` whose edge lines at the cut sides (a lighter or darker last line or two, at most
    ``inset`` deep) take the colours of the first ordinary line inside them; real detail, which varies
    line by line without a jump across the whole character, is kept.

    Args:
        image: ``(H, W, 3)`` uint8 reference.
        region: ``(H, W)`` bool character pixels (the jump is measured over them).
        padding: ``(top, bottom, left, right)``; sides with 0 are left alone.
        inset: how many lines next to a border may be edge lines.
        jump: median absolute colour difference (0-255, largest channel) that marks an edge line.
    """
    out = image.copy()
    for img, reg in zip(_side_views(out, padding), _side_views(region, padding)):
        # the outermost run of lines that jump from their inner neighbour
        last = -1
        for k in range(min(inset, img.shape[0] - 1)):
            cols = reg[k] | reg[k + 1]
            if not cols.any():
                break
            diff = np.abs(img[k, cols].astype(np.int16) - img[k + 1, cols]).max(axis=-1)
            if float(np.median(diff)) > jump:
                last = k
        if last >= 0:
            img[: last + 1] = img[last + 1]
    return out


def hold_mask_at_border(alpha: np.ndarray, padding: tuple[int, int, int, int], inset: int) -> np.ndarray:
    """A copy of ``alpha`` that does not fade within ``inset`` lines of the cut sides: each of those lines is
    at least the line ``inset`` deep (the character goes on past the border)."""
    out = alpha.copy()
    for a in _side_views(out, padding):
        depth = min(inset, a.shape[0] - 1)
        a[:depth] = np.maximum(a[:depth], a[depth])
    return out


def extend_past_border(array: np.ndarray, padding: tuple[int, int, int, int], soften: float = 0.0) -> np.ndarray:
    """``array`` (an image, mask or map; bool is kept) padded by ``padding`` = ``(top, bottom, left, right)``,
    every added line repeating the border line next to it.

    With ``soften`` > 0 (images), the added line ``d`` pixels past the border is blurred along the border
    over about ``soften * d`` pixels either side: the detail of the last line (a ruffle's hem, a pattern)
    repeated straight outwards would draw stripes; the continuation fades to the line's local colours."""
    if not any(padding):
        return array
    src = array.astype(np.uint8) if array.dtype == bool else np.ascontiguousarray(array)
    top, bottom, left, right = padding
    out = cv2.copyMakeBorder(src, top, bottom, left, right, cv2.BORDER_REPLICATE)
    if array.ndim == 3 and out.ndim == 2:  # OpenCV drops a single channel axis
        out = out[..., None]
    if soften > 0 and array.dtype != bool:
        _soften(out, (top, bottom, left, right), soften)
    return out.astype(bool) if array.dtype == bool else out


def _soften(image: np.ndarray, padding: tuple[int, int, int, int], soften: float) -> None:
    """Blur each added line along its border, over ``soften`` x its distance past the border (in place;
    two box passes, OpenCV's running sums, so a wide blur costs no more than a narrow one)."""
    h, w = image.shape[:2]
    top, bottom, left, right = padding
    bands = ([(top - d, d) for d in range(1, top + 1)], [(h - bottom - 1 + d, d) for d in range(1, bottom + 1)])
    for rows in bands:
        for y, d in rows:
            size = 2 * max(1, round(soften * d)) + 1
            line = image[y:y + 1]
            image[y:y + 1] = cv2.blur(cv2.blur(line, (size, 1), borderType=cv2.BORDER_REPLICATE), (size, 1),
                                      borderType=cv2.BORDER_REPLICATE).reshape(line.shape)
    bands = ([(left - d, d) for d in range(1, left + 1)], [(w - right - 1 + d, d) for d in range(1, right + 1)])
    for cols in bands:
        for x, d in cols:
            size = 2 * max(1, round(soften * d)) + 1
            line = np.ascontiguousarray(image[:, x:x + 1])
            image[:, x:x + 1] = cv2.blur(cv2.blur(line, (1, size), borderType=cv2.BORDER_REPLICATE), (1, size),
                                         borderType=cv2.BORDER_REPLICATE).reshape(line.shape)
