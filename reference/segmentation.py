"""Character segmentation for the CPU puppet path: mediapipe mask refined with GrabCut.

The coarse mask comes from one of the two segmentation models that ship inside the mediapipe 0.10.21
wheel (no download): the holistic pose model's full-body segmentation (``model="holistic"``, default,
best on full-body shots) or the selfie segmenter (``model="selfie"``). It is then refined with OpenCV
GrabCut seeded by that mask and, when a pose is given, by the skeleton (the body limbs are marked as
sure foreground), and cleaned up (components touching the skeleton kept, holes filled). A mask supplied
by the user replaces all of this (:func:`prepare_mask`).

numpy / OpenCV / mediapipe only, never torch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from pose import layout
from pose.errors import ConfigError, DetectorError, InputError
from pose.sequence import PoseFrame
from reference.morphology import disc

logger = logging.getLogger(__name__)

MODELS = ("holistic", "selfie")


#: How far (in foot lengths, ankle to farthest toe or heel) from a foot's outline :func:`refine_feet` may add.
FOOT_REACH = 0.35
# Keypoint indices of each foot's heel, big toe and small toe.
_FOOT_POINTS = {side: [layout.KEYPOINT_NAMES.index(f"{side}_{n}") for n in ("heel", "big_toe", "small_toe")]
                for side in ("left", "right")}


@dataclass(frozen=True)
class SegmentationConfig:
    """Settings of :func:`segment_person`.

    Attributes:
        model: ``"holistic"`` (full-body pose model mask, default) or ``"selfie"``.
        threshold: probability above which the coarse mask counts as character (default 0.5).
        refine: run GrabCut on top of the coarse mask (default True).
        grabcut_iters: GrabCut iterations (default 4).
        work_side: longest side (pixels) GrabCut runs at; the result is scaled back (default 512).
        sure_fg_prob: coarse probability above which (after erosion) pixels are sure foreground (0.95).
        band: width of the uncertain band around the coarse mask as a fraction of the character height
            (default 0.04); pixels further out are sure background.
        limb_width: width of the skeleton strokes marked sure foreground, fraction of the height (0.012).
        feather: edge softening (Gaussian sigma) of the returned alpha, pixels at ``work_side`` (1.0).
        max_grow: GrabCut may grow the coarse mask by at most this fraction of the image height (default
            0.004); ``None`` lets it grow over the whole uncertain band.
        keep_coarse: with GrabCut, keep every coarse-mask pixel even where GrabCut dropped it (default False).
        snap: radius of a colour guided filter (fraction of the work height) that snaps the coarse
            probability to the image's own edges before it is thresholded (default 0 = off). The mediapipe
            masks are computed at 256 px and overshoot thin limbs by a few pixels; snapping trims that halo.
        snap_eps: regularisation of that filter (default 1e-3; larger = smoother, follows the image less).
        feet: with a pose, run a small GrabCut around each foot (ankle, heel, toes) seeded with the foot's
            outline (default True): the mediapipe masks often stop at the ankle of a dark shoe, which then
            stays in the background plate while the foot moves on. The result may add pixels within
            :data:`FOOT_REACH` foot lengths of the foot's outline, never remove any.
    """

    model: str = "holistic"
    threshold: float = 0.5
    refine: bool = True
    grabcut_iters: int = 4
    work_side: int = 512
    sure_fg_prob: float = 0.95
    band: float = 0.04
    limb_width: float = 0.012
    feather: float = 1.0
    max_grow: float | None = 0.004
    keep_coarse: bool = False
    snap: float = 0.0
    snap_eps: float = 1e-3
    feet: bool = True

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ConfigError(f"segmentation model '{self.model}' is unknown; use one of {', '.join(MODELS)}")
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"segmentation threshold must be in (0, 1), got {self.threshold}")
        if self.max_grow is not None and not 0.0 <= self.max_grow < 0.1:
            raise ConfigError(f"segmentation max_grow={self.max_grow} must be in [0, 0.1) or None")
        if not 0.0 <= self.snap < 0.1 or not self.snap_eps > 0:
            raise ConfigError(f"segmentation snap={self.snap} must be in [0, 0.1) and snap_eps > 0")
        if self.grabcut_iters < 1 or self.work_side < 64:
            raise ConfigError("segmentation grabcut_iters must be >= 1 and work_side >= 64")


def _check_image(image: np.ndarray, name: str = "reference image") -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"{name} must be an (H, W, 3) uint8 RGB array, got {image.shape} {image.dtype}")
    return image


def prepare_mask(mask: np.ndarray, shape: tuple[int, int], name: str = "mask") -> np.ndarray:
    """Turn a user-supplied mask into a float alpha of the image size.

    Args:
        mask: ``(H, W)`` bool / uint8 (0 or 255, or 0/1) / float in [0, 1], or ``(H, W, C)`` (first channel,
            or the alpha channel when ``C == 4``); nonzero = character.
        shape: ``(H, W)`` of the reference image.
        name: how the mask is called in error messages.

    Returns:
        ``(H, W)`` float32 alpha in [0, 1].
    """
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m[..., 3] if m.shape[2] == 4 else m[..., 0]
    if m.ndim != 2 or m.shape != tuple(shape):
        raise InputError(f"{name} must be a 2-D array of the reference size {tuple(shape)}, got {np.shape(mask)}; resize it")
    if m.dtype == bool:
        alpha = m.astype(np.float32)
    elif np.issubdtype(m.dtype, np.integer):
        alpha = m.astype(np.float32) / (255.0 if m.max(initial=0) > 1 else 1.0)
    else:
        alpha = np.clip(np.nan_to_num(m.astype(np.float32)), 0.0, 1.0)
    if alpha.max(initial=0.0) < 0.5:
        raise InputError(f"{name} is empty (no pixel marked as character); pass a mask with the character nonzero")
    return alpha


def coarse_mask(image: np.ndarray, model: str = "holistic", pose: PoseFrame | None = None) -> np.ndarray:
    """Character probability from a mediapipe segmentation model.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        model: ``"holistic"`` or ``"selfie"``.
        pose: the character's pose on ``image``, if known. A character that is small in the image
            (:func:`pose.extract.zoom_window`) is segmented on a crop around them (the models see the whole
            image at 256 px and find nothing there); outside the crop the probability is 0.

    Returns:
        ``(H, W)`` float32 probability in [0, 1] (all zeros when the holistic model finds no person).
    """
    image = _check_image(image)
    if pose is not None:
        from pose.extract import zoom_window

        window = zoom_window(pose if (pose.width, pose.height) == image.shape[1::-1]
                             else pose.resized(image.shape[1], image.shape[0]))
        if window is not None:
            x0, y0, x1, y1 = window
            crop = coarse_mask(np.ascontiguousarray(image[y0:y1, x0:x1]), model)
            if (crop >= 0.5).any():
                logger.info("small character: segmented on the %dx%d crop around them", x1 - x0, y1 - y0)
                prob = np.zeros(image.shape[:2], np.float32)
                prob[y0:y1, x0:x1] = crop
                return prob
    try:
        import mediapipe as mp
    except ImportError as exc:  # pragma: no cover - mediapipe is a hard dependency
        raise DetectorError("mediapipe is not installed; pip install mediapipe==0.10.21") from exc
    from pose.detectors.mediapipe_holistic import note_graph_created
    from pose.native_log import native_stderr_filtered

    if model in MODELS:
        note_graph_created()  # a process with mediapipe graphs must not fork pose workers
    if model == "holistic":
        from pose.extract import with_margins

        h, w = image.shape[:2]
        with native_stderr_filtered(), mp.solutions.holistic.Holistic(
                static_image_mode=True, model_complexity=1, enable_segmentation=True) as holistic:
            seg = holistic.process(image).segmentation_mask
            for pad, padded in with_margins(image) if seg is None else ():
                # like pose.extract.detect_image: a character filling the frame is found with a margin
                seg = holistic.process(padded).segmentation_mask
                if seg is not None:
                    seg = np.asarray(seg)[pad:pad + h, pad:pad + w]
                    break
        if seg is None:
            return np.zeros(image.shape[:2], np.float32)
    elif model == "selfie":
        with native_stderr_filtered(), mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as selfie:
            seg = selfie.process(image).segmentation_mask
    else:
        raise ConfigError(f"segmentation model '{model}' is unknown; use one of {', '.join(MODELS)}")
    seg = np.asarray(seg, dtype=np.float32)
    if seg.shape != image.shape[:2]:
        seg = cv2.resize(seg, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    return np.clip(seg, 0.0, 1.0)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float = 1e-3) -> np.ndarray:
    """Edge-preserving smoothing of ``src`` steered by the colours of ``guide`` (the colour guided filter
    of He, Sun and Tang, 2010): within each ``(2 radius + 1)``-pixel window the output is a linear function
    of the guide's RGB, so a soft mask takes the image's edges.

    Args:
        guide: ``(H, W, 3)`` uint8 RGB image.
        src: ``(H, W)`` float map (a probability).
        radius: window radius in pixels.
        eps: regularisation on the guide's colour covariance (colours in [0, 1]).

    Returns:
        ``(H, W)`` float32 filtered map (not clipped).
    """
    size = (2 * radius + 1, 2 * radius + 1)

    def mean(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, size, borderType=cv2.BORDER_REFLECT)

    colour = guide.astype(np.float32) / 255.0
    p = src.astype(np.float32)
    mu, mp = mean(colour), mean(p)
    cov_cp = mean(colour * p[..., None]) - mu * mp[..., None]
    sigma = np.empty(p.shape + (3, 3), np.float32)
    for i in range(3):
        for j in range(i, 3):
            sigma[..., i, j] = sigma[..., j, i] = mean(colour[..., i] * colour[..., j]) - mu[..., i] * mu[..., j]
    sigma += np.float32(eps) * np.eye(3, dtype=np.float32)
    a = np.linalg.solve(sigma, cov_cp[..., None])[..., 0]
    b = mp - (a * mu).sum(axis=-1)
    return (mean(a) * colour).sum(axis=-1) + mean(b)


def skeleton_mask(pose: PoseFrame, shape: tuple[int, int], width: float, threshold: float = 0.3) -> np.ndarray:
    """Draw the visible body limbs of ``pose`` as thick strokes, and each foot as the filled outline of its
    ankle, heel and toes (a dark shoe on a dark floor is what the segmentation most often leaves out, and a
    shoe left in the background plate stays behind when the foot moves).

    Args:
        pose: pose on an image of size ``shape``.
        shape: ``(H, W)`` of the output.
        width: stroke width in pixels.
        threshold: minimum keypoint score.

    Returns:
        ``(H, W)`` uint8 mask (1 on the strokes).
    """
    out = np.zeros(shape, np.uint8)
    vis = pose.visible(threshold)
    xy = pose.xy
    thickness = max(1, int(round(width)))
    for a, b in layout.BODY_LIMBS[:layout.NUM_DRAWN_BODY_LIMBS]:
        if vis[a] and vis[b]:
            pa = tuple(int(round(v)) for v in xy[a])
            pb = tuple(int(round(v)) for v in xy[b])
            cv2.line(out, pa, pb, 1, thickness)
    for side in ("left", "right"):
        pts = _foot_points(pose, side, threshold)
        if pts is not None:
            hull = cv2.convexHull(np.round(pts).astype(np.int32))
            cv2.fillConvexPoly(out, hull, 1)
            cv2.polylines(out, [hull], True, 1, thickness)
    return out


def _foot_points(pose: PoseFrame, side: str, threshold: float) -> np.ndarray | None:
    """``(P, 2)`` the foot's ankle (first) and its visible heel / toes, ``None`` without the ankle or any of
    them: the points whose outline :func:`skeleton_mask` fills and :func:`refine_feet` grows from."""
    vis, xy = pose.visible(threshold), pose.xy
    ankle = layout.B[f"{side}_ankle"]
    ids = [i for i in _FOOT_POINTS[side] if vis[i]]
    return xy[[ankle] + ids] if vis[ankle] and ids else None


def refine_feet(image: np.ndarray, mask: np.ndarray, pose: PoseFrame, iters: int = 4,
                threshold: float = 0.3) -> np.ndarray:
    """Shoe and foot pixels around each detected foot that ``mask`` left out, found with a local GrabCut.

    Per foot with a visible ankle and at least one of heel / big toe / small toe: GrabCut on a box around
    the foot, the foot's filled outline (:func:`skeleton_mask`) sure foreground, ``mask`` probable
    foreground, the box's rim and everything farther than :data:`FOOT_REACH` foot lengths from the outline
    sure background.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        mask: ``(H, W)`` bool character mask so far.
        pose: the character's pose on ``image``.
        iters: GrabCut iterations.
        threshold: minimum keypoint score.

    Returns:
        ``(H, W)`` bool, the pixels to add (empty without a usable foot).
    """
    h, w = mask.shape
    add = np.zeros((h, w), bool)
    for side in ("left", "right"):
        pts = _foot_points(pose, side, threshold)
        if pts is None:
            continue
        length = float(np.max(np.linalg.norm(pts - pts[0], axis=1)))
        reach = max(2, round(FOOT_REACH * length))
        x0, y0 = np.floor(pts.min(axis=0)).astype(int) - 2 * reach
        x1, y1 = np.ceil(pts.max(axis=0)).astype(int) + 2 * reach
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w - 1), min(y1, h - 1)
        if x1 - x0 < 8 or y1 - y0 < 8:
            continue
        outline = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
        cv2.fillConvexPoly(outline, cv2.convexHull(np.round(pts - (x0, y0)).astype(np.int32)), 1)
        near = cv2.dilate(outline, disc(reach)) > 0
        gc = np.full(outline.shape, cv2.GC_BGD, np.uint8)
        gc[near] = cv2.GC_PR_BGD
        gc[near & mask[y0:y1 + 1, x0:x1 + 1]] = cv2.GC_PR_FGD
        gc[outline > 0] = cv2.GC_FGD
        gc[[0, -1], :] = cv2.GC_BGD
        gc[:, [0, -1]] = cv2.GC_BGD
        if not (gc == cv2.GC_BGD).any() or not (gc == cv2.GC_PR_BGD).any():
            continue
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(0)  # GrabCut seeds its colour models with k-means: same image, same mask
        try:
            cv2.grabCut(cv2.cvtColor(image[y0:y1 + 1, x0:x1 + 1], cv2.COLOR_RGB2BGR), gc, None, bgd, fgd,
                        iters, cv2.GC_INIT_WITH_MASK)
        except cv2.error as exc:  # degenerate colour models: nothing added
            logger.debug("foot GrabCut failed (%s)", exc)
            continue
        add[y0:y1 + 1, x0:x1 + 1] |= ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)) & near
    return add & ~mask


#: A segmented part apart from the character at least this share of the character's size is taken for
#: another figure (two people in the reference), which is said: only the character with the pose moves.
OTHER_FIGURE = 0.3


def _keep_components(binary: np.ndarray, seeds: np.ndarray | None, max_hole: float = 2e-4) -> np.ndarray:
    """Keep the connected components that touch ``seeds`` (or the largest one), holes under ``max_hole`` x image area filled."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    if n <= 1:
        return binary.astype(bool)
    keep = np.zeros(n, bool)
    if seeds is not None and seeds.any():
        keep[np.unique(labels[seeds.astype(bool)])] = True
        keep[0] = False
    if not keep.any():
        keep[1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))] = True
    area = stats[:, cv2.CC_STAT_AREA]
    kept_area, other = int(area[keep].sum()), int(area[1:][~keep[1:]].max(initial=0))
    if other >= OTHER_FIGURE * kept_area:
        logger.warning("the reference shows another figure apart from the character animated; it stays in the "
                       "background. To animate that one, pass its mask (--mask) or its pose (--reference-pose)")
    kept = keep[labels].astype(np.uint8)
    # fill small holes only (specks inside clothes); large ones (the gap between legs) are real background
    n_h, holes, hstats, _ = cv2.connectedComponentsWithStats(1 - kept, connectivity=4)
    small = hstats[:, cv2.CC_STAT_AREA] <= max_hole * kept.size
    border = np.unique(np.concatenate([holes[0], holes[-1], holes[:, 0], holes[:, -1]]))
    small[border] = False
    return (kept > 0) | small[holes]


def segment_person(image: np.ndarray, pose: PoseFrame | None = None,
                   config: SegmentationConfig | None = None, probability: np.ndarray | None = None) -> np.ndarray:
    """Segment the character in ``image``.

    Args:
        image: ``(H, W, 3)`` uint8 RGB reference.
        pose: optional pose of the character on ``image`` (its limbs seed GrabCut as sure foreground and
            pick the connected components to keep).
        config: :class:`SegmentationConfig` (defaults when ``None``).
        probability: the ``(H, W)`` output of :func:`coarse_mask` for ``image`` when the caller already
            has it (``None`` = computed here with ``config.model``).

    Returns:
        ``(H, W)`` float32 alpha in [0, 1] with softened edges; ``alpha >= 0.5`` is the binary mask.

    Raises:
        NoPersonError-like :class:`InputError` when nothing is segmented.
    """
    cfg = config or SegmentationConfig()
    image = _check_image(image)
    h, w = image.shape[:2]
    prob = coarse_mask(image, cfg.model) if probability is None else np.asarray(probability, np.float32)
    if prob.shape != (h, w):
        raise InputError(f"segmentation probability is {prob.shape[1]}x{prob.shape[0]} but the image is {w}x{h}")
    if pose is not None and (pose.width, pose.height) != (w, h):
        pose = pose.resized(w, h)

    scale = min(1.0, cfg.work_side / max(h, w))
    sw, sh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    p_small = cv2.resize(prob, (sw, sh), interpolation=cv2.INTER_LINEAR)
    if cfg.snap > 0:
        p_small = np.clip(guided_filter(small, p_small, max(1, round(cfg.snap * sh)), cfg.snap_eps), 0.0, 1.0)
    coarse = p_small >= cfg.threshold
    skel = None
    if pose is not None:
        pose_small = pose.transformed(np.array([[scale, 0, 0], [0, scale, 0]]), sw, sh)
        skel = skeleton_mask(pose_small, (sh, sw), cfg.limb_width * sh) > 0
        if skel.any():
            coarse = coarse | skel
    if coarse.sum() < 16:
        raise InputError("reference image: no character found by segmentation; pass a mask (mask=...) for it")

    if cfg.feet and pose is not None:
        coarse = coarse | refine_feet(small, coarse, pose_small, cfg.grabcut_iters)
    binary = coarse
    if cfg.refine:
        ys = np.nonzero(coarse.any(axis=1))[0]
        height = float(ys[-1] - ys[0] + 1)
        band = max(2, int(round(cfg.band * height)))
        kernel = disc(band)
        near = cv2.dilate(coarse.astype(np.uint8), kernel) > 0
        sure_fg = cv2.erode((p_small >= cfg.sure_fg_prob).astype(np.uint8), kernel) > 0
        gc = np.full((sh, sw), cv2.GC_BGD, np.uint8)
        gc[near] = cv2.GC_PR_BGD
        gc[coarse] = cv2.GC_PR_FGD
        gc[sure_fg] = cv2.GC_FGD
        if skel is not None:
            gc[skel & coarse] = cv2.GC_FGD
        if (gc == cv2.GC_BGD).any() and ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)).any():
            bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
            cv2.setRNGSeed(0)  # deterministic k-means initialisation of the colour models
            try:
                cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), gc, None, bgd, fgd,
                            cfg.grabcut_iters, cv2.GC_INIT_WITH_MASK)
                binary = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
            except cv2.error as exc:  # degenerate colour models: keep the coarse mask
                logger.warning("GrabCut refinement failed (%s); using the coarse mask", exc)
    if cfg.refine and cfg.max_grow is not None:
        # GrabCut may trim the coarse mask but only grow it by a few pixels: it otherwise glues nearby
        # background of a similar colour (text outlines, the gap between touching legs) to the character
        grow = max(1, int(round(cfg.max_grow * sh)))
        reach = cv2.dilate(coarse.astype(np.uint8), disc(grow)) > 0
        binary = (binary & reach) | (coarse if cfg.keep_coarse else False)
    binary = _keep_components(binary, skel)
    soft = binary.astype(np.float32)
    if cfg.feather > 0:
        soft = cv2.GaussianBlur(soft, (0, 0), cfg.feather)
    alpha = cv2.resize(soft, (w, h), interpolation=cv2.INTER_LINEAR)
    alpha = np.clip(alpha, 0.0, 1.0)
    logger.info("segmented character: %.1f%% of the image", 100.0 * float((alpha >= 0.5).mean()))
    return alpha
