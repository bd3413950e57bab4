"""Reference-image preprocessing for the diffusion path: fit to the model's canvas without distortion.

The diffusion models work at a fixed size (e.g. 512x784 for Moore-AnimateAnyone) whose sides are multiples of
the VAE's downsampling factor. A reference (and every driving pose) on the user's canvas is mapped onto that size
by one similarity transform: scaled to fit (``"pad"``: whole image visible, borders filled) or to cover
(``"crop"``: borders cut), centred, never stretched. :func:`unfit_frame` maps generated frames back.

numpy + OpenCV only (no torch), so the module can be imported on the CPU path.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pose.errors import InputError
from pose.sequence import fit_matrix

FIT_MODES = ("pad", "crop")


@dataclass(frozen=True)
class CanvasFit:
    """How a ``src`` canvas maps onto a ``dst`` canvas.

    Attributes:
        matrix: ``(2, 3)`` affine map from source pixels to destination pixels (uniform scale + shift).
        src_size: ``(width, height)`` of the source canvas.
        dst_size: ``(width, height)`` of the destination canvas.
        mode: ``"pad"`` or ``"crop"``.
    """

    matrix: np.ndarray
    src_size: tuple[int, int]
    dst_size: tuple[int, int]
    mode: str

    @property
    def scale(self) -> float:
        """Uniform scale factor source -> destination."""
        return float(self.matrix[0, 0])

    @property
    def inverse(self) -> np.ndarray:
        """``(2, 3)`` affine map from destination pixels back to source pixels."""
        s = self.scale
        return np.array([[1.0 / s, 0.0, -self.matrix[0, 2] / s], [0.0, 1.0 / s, -self.matrix[1, 2] / s]])


def round_to_multiple(value: float, multiple: int) -> int:
    """Nearest positive multiple of ``multiple`` to ``value`` (at least ``multiple``)."""
    return max(int(multiple), int(round(value / multiple)) * int(multiple))


def canvas_fit(src_size: tuple[int, int], dst_size: tuple[int, int], mode: str = "pad") -> CanvasFit:
    """Similarity transform that fits a ``src_size`` canvas into ``dst_size`` without distortion.

    Args:
        src_size: ``(width, height)`` of the source, pixels.
        dst_size: ``(width, height)`` of the destination, pixels.
        mode: ``"pad"`` (default; scale to fit, whole source visible, centred) or ``"crop"``
            (scale to cover, centred, the overflowing borders are cut).

    Returns:
        the :class:`CanvasFit`.
    """
    if mode not in FIT_MODES:
        raise InputError(f"fit mode '{mode}' is unknown; use one of {', '.join(FIT_MODES)}")
    sw, sh = (int(v) for v in src_size)
    dw, dh = (int(v) for v in dst_size)
    if min(sw, sh, dw, dh) <= 0:
        raise InputError(f"canvas sizes must be positive, got source {sw}x{sh} and target {dw}x{dh}")
    return CanvasFit(fit_matrix(sw, sh, dw, dh, cover=mode == "crop"), (sw, sh), (dw, dh), mode)


def fit_image(image: np.ndarray, fit: CanvasFit, border_value: int | tuple[int, ...] = 0) -> np.ndarray:
    """Warp an image from the source canvas of ``fit`` onto its destination canvas.

    Args:
        image: ``(H, W, C)`` or ``(H, W)`` uint8 array of the source size.
        fit: from :func:`canvas_fit`.
        border_value: fill value of the padded borders (``"pad"`` mode); default black.

    Returns:
        ``(dst_h, dst_w[, C])`` array of the same dtype.
    """
    image = np.asarray(image)
    if image.shape[1::-1] != fit.src_size:
        raise InputError(f"image of size {image.shape[1]}x{image.shape[0]} does not match the fit source {fit.src_size}")
    interp = cv2.INTER_AREA if fit.scale < 1.0 else cv2.INTER_LINEAR
    bv = border_value if isinstance(border_value, tuple) else (border_value,) * 4
    return cv2.warpAffine(image, fit.matrix, fit.dst_size, flags=interp, borderMode=cv2.BORDER_CONSTANT, borderValue=bv)


def unfit_frame(frame: np.ndarray, fit: CanvasFit) -> np.ndarray:
    """Map a frame generated on the destination canvas back onto the source canvas (inverse of :func:`fit_image`).

    Args:
        frame: ``(dst_h, dst_w, 3)`` uint8.
        fit: the fit used for the inputs.

    Returns:
        ``(src_h, src_w, 3)`` uint8. In ``"crop"`` mode the cut borders come back black.
    """
    interp = cv2.INTER_AREA if fit.scale > 1.0 else cv2.INTER_LINEAR
    return cv2.warpAffine(np.asarray(frame), fit.inverse, fit.src_size, flags=interp, borderMode=cv2.BORDER_CONSTANT)


def to_model_range(image: np.ndarray) -> np.ndarray:
    """uint8 RGB ``(H, W, 3)`` -> float32 ``(3, H, W)`` in [-1, 1] (the VAE's input range)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    return (image.astype(np.float32).transpose(2, 0, 1) / 127.5) - 1.0
