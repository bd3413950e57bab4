"""Self-reenactment evaluation: animate a clip's first frame with the clip's own motion, compare to the clip.

Protocol (the one Animate Anyone, MagicAnimate, MusePose, ... report on TikTok / UBC-Fashion):
reference = frame 0 of a real clip, driving = the poses of that same clip, generated frame ``t`` compared
with real frame ``t``. Metrics, all computed streaming (two frames in memory at a time):

``ssim``        structural similarity (skimage, RGB, ``data_range=255``, Gaussian window 7), mean over frames.
``psnr``        peak signal-to-noise ratio in dB per frame, averaged; identical frames give ``PSNR_CAP_DB``
                (100 dB) instead of infinity so the JSON report stays valid.
``l1``          mean absolute difference in [0, 1].
``pck``         PCK@0.05 of the body: the pose re-detected on each generated frame vs the driving pose the
                renderer was given; a keypoint is correct when it lies within ``0.05 x max(w, h)`` of the
                driving person's body bounding box (visible driving keypoints only; a frame where nothing is
                detected counts every keypoint wrong).
``warp_error``  temporal consistency: DIS optical flow from frame ``t+1`` back to frame ``t``, frame ``t``
                warped onto ``t+1``, mean absolute error in [0, 1]; reported for generated and real frames
                and as the ratio generated / real (1 = as steady as the real video; a frozen video scores 0).

Every frame is compared at ``height`` pixels (512 by default), width following the real clip's aspect.
Regions can be left out of every score (``ignore``: rectangles in fractions of the frame), for what no
renderer can know from the first frame: burnt-in subtitles that change, a channel logo, a timestamp. SSIM,
PSNR, L1 and the warp error are then computed on the other pixels only; LPIPS and FVD, whose networks see
whole frames, get the real pixels in those regions of the generated frames; PCK is unaffected.
The report includes the trivial baseline "first frame repeated" so the numbers have a floor to beat.
In self-reenactment frame 0 is the input itself and is left out of SSIM/PSNR/L1/PCK.
LPIPS and FVD need network weights: they run only when a weights path is given (torch imported lazily)
and are otherwise listed as skipped with the reason.
"""

from __future__ import annotations

import json
import logging
import math
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from pose.errors import ConfigError, InputError, NoPersonError, WeightsError
from pose.sequence import FrameStatus, PoseFrame, PoseSequence

logger = logging.getLogger(__name__)

#: PSNR reported for identical frames (infinite in theory).
PSNR_CAP_DB = 100.0
#: PCK threshold as a fraction of the larger side of the driving person's bounding box.
PCK_ALPHA = 0.05
#: keypoint score below which a driving keypoint is not evaluated (the skeleton-drawing threshold).
PCK_SCORE_THRESHOLD = 0.3
#: side of the SSIM window (skimage's default).
SSIM_WINDOW = 7
#: comparison height in pixels.
DEFAULT_HEIGHT = 512
#: columns of the contact sheet.
CONTACT_SHEET_FRAMES = 8
#: height of one contact-sheet thumbnail in pixels.
CONTACT_THUMB_HEIGHT = 256
#: frames per clip and input side of the I3D network used for FVD (StyleGAN-V convention).
FVD_CLIP_FRAMES = 16
FVD_SIDE = 224

# ------------------------------------------------------------------------------------------------
# per-frame metrics
# ------------------------------------------------------------------------------------------------
def psnr(a: np.ndarray, b: np.ndarray, keep: np.ndarray | None = None) -> float:
    """PSNR in dB of two uint8 images of one shape, capped at :data:`PSNR_CAP_DB`; over the pixels where the
    ``(H, W)`` bool ``keep`` is set, if given."""
    sq = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    mse = float(np.mean(sq if keep is None else sq[keep]))
    if mse == 0.0:
        return PSNR_CAP_DB
    return min(PSNR_CAP_DB, 10.0 * math.log10(255.0 ** 2 / mse))


def ssim(a: np.ndarray, b: np.ndarray, keep: np.ndarray | None = None) -> float:
    """SSIM of two ``(H, W, 3)`` uint8 images (skimage defaults: 7x7 window, RGB channels averaged).

    With an ``(H, W)`` bool ``keep``, the SSIM map is averaged over the kept pixels instead, leaving out
    the border that skimage's mean leaves out (half a window)."""
    from skimage.metrics import structural_similarity

    if keep is None:
        return float(structural_similarity(a, b, channel_axis=2, data_range=255))
    _, full = structural_similarity(a, b, channel_axis=2, data_range=255, full=True)
    pad = (SSIM_WINDOW - 1) // 2
    inner = np.zeros(keep.shape, bool)
    inner[pad:keep.shape[0] - pad, pad:keep.shape[1] - pad] = True
    return float(full.mean(axis=2)[keep & inner].mean())


def l1(a: np.ndarray, b: np.ndarray, keep: np.ndarray | None = None) -> float:
    """Mean absolute difference of two uint8 images, in [0, 1]; over the ``keep`` pixels, if given."""
    diff = np.abs(a.astype(np.float32) - b.astype(np.float32))
    return float(np.mean(diff if keep is None else diff[keep]) / 255.0)


def check_regions(ignore: Sequence[Sequence[float]]) -> list[list[float]]:
    """The ``ignore`` rectangles as lists of four floats, checked: ``0 <= X0 < X1 <= 1``, ``0 <= Y0 < Y1 <= 1``.

    Raises:
        ConfigError: a rectangle that is not four such fractions.
    """
    from pose.detectors.base import check_crop  # the same rule as a detection window's
    from pose.errors import DetectorError

    boxes = []
    for rect in ignore:
        try:
            boxes.append(list(check_crop(rect)))
        except DetectorError:
            raise ConfigError(f"ignored region {rect!r} must be X0,Y0,X1,Y1 fractions of the frame with X0 < X1 "
                              f"and Y0 < Y1, such as 0,0.875,1,1 for the bottom eighth") from None
    return boxes


def keep_mask(size: tuple[int, int], ignore: Sequence[Sequence[float]]) -> np.ndarray | None:
    """``(H, W)`` bool mask of the pixels scored when the ``ignore`` rectangles (``X0, Y0, X1, Y1``
    fractions of the frame) are left out; ``None`` when nothing is ignored.

    Raises:
        ConfigError: a rectangle that is not four fractions with ``X0 < X1``, ``Y0 < Y1``, or rectangles
            that leave nothing to score.
    """
    if not ignore:
        return None
    w, h = size
    keep = np.ones((h, w), bool)
    for box in check_regions(ignore):
        x0, x1 = round(box[0] * w), round(box[2] * w)
        y0, y1 = round(box[1] * h), round(box[3] * h)
        keep[y0:y1, x0:x1] = False
    pad = (SSIM_WINDOW - 1) // 2
    if not keep[pad:h - pad, pad:w - pad].any():
        raise ConfigError(f"the ignored regions {[list(r) for r in ignore]} cover the whole frame; leave something to score")
    return keep


class WarpError:
    """Flow-warp error between consecutive frames of one video (fed frame by frame).

    For each pair ``(t, t+1)``: DIS optical flow (OpenCV, medium preset) from ``t+1`` to ``t`` on the gray
    images, frame ``t`` sampled at the flow's targets (so it is warped onto ``t+1``), mean absolute RGB
    error in [0, 1] (over the ``(H, W)`` bool ``keep`` pixels, if given).
    """

    def __init__(self, keep: np.ndarray | None = None) -> None:
        import cv2

        self._cv2 = cv2
        self._keep = keep
        self._flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self._prev: np.ndarray | None = None
        self._prev_gray: np.ndarray | None = None
        self.values: list[float] = []

    def update(self, frame: np.ndarray) -> None:
        """Add the next ``(H, W, 3)`` uint8 frame."""
        cv2 = self._cv2
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if self._prev is not None:
            flow = self._flow.calc(gray, self._prev_gray, None)  # for each pixel of t+1: offset into t
            h, w = gray.shape
            gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            warped = cv2.remap(self._prev, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
            self.values.append(l1(warped, frame, self._keep))
        self._prev, self._prev_gray = frame, gray

    @property
    def mean(self) -> float | None:
        """Mean over pairs (``None`` with fewer than two frames)."""
        return float(np.mean(self.values)) if self.values else None


def pck(detected: PoseFrame | None, target: PoseFrame, alpha: float = PCK_ALPHA) -> tuple[int, int]:
    """Body keypoints of ``detected`` within ``alpha x max bbox side`` of ``target``.

    Args:
        detected: the pose found on a generated frame (``None`` or no person: every keypoint wrong).
        target: the driving pose, same image size as ``detected``.
        alpha: threshold as a fraction of the larger side of ``target``'s body bounding box.

    Returns:
        ``(correct, evaluated)`` counts over the 18 body keypoints visible in ``target``.
    """
    body = slice(0, 18)
    vis = target.visible(PCK_SCORE_THRESHOLD)[body]
    n = int(vis.sum())
    box = target.bbox(PCK_SCORE_THRESHOLD)
    if n == 0 or box is None:
        return 0, 0
    thr = alpha * max(box[2] - box[0], box[3] - box[1], 1.0)
    if detected is None or not detected.has_person:
        return 0, n
    det_vis = detected.visible(PCK_SCORE_THRESHOLD)[body] & vis
    d = np.linalg.norm(detected.xy[body] - target.xy[body], axis=1)
    return int(np.sum(det_vis & (d <= thr))), n


# ------------------------------------------------------------------------------------------------
# accumulation
# ------------------------------------------------------------------------------------------------
@dataclass
class _Scores:
    ssim: list[float] = field(default_factory=list)
    psnr: list[float] = field(default_factory=list)
    l1: list[float] = field(default_factory=list)
    pck_hit: int = 0
    pck_n: int = 0
    warp: WarpError | None = None
    keep: np.ndarray | None = None

    def add(self, gen: np.ndarray, real: np.ndarray, score: bool = True) -> None:
        if score:
            self.ssim.append(ssim(gen, real, self.keep))
            self.psnr.append(psnr(gen, real, self.keep))
            self.l1.append(l1(gen, real, self.keep))
        if self.warp is not None:
            self.warp.update(gen)

    def summary(self, real_warp: float | None) -> dict:
        out: dict[str, Any] = {
            "ssim": _mean(self.ssim), "psnr": _mean(self.psnr), "l1": _mean(self.l1),
        }
        if self.pck_n:
            out["pck"] = round(self.pck_hit / self.pck_n, 6)
        if self.warp is not None:
            gen_warp = self.warp.mean
            out["warp_error"] = None if gen_warp is None else round(gen_warp, 6)
            out["warp_error_ratio"] = (
                None if gen_warp is None or not real_warp else round(gen_warp / real_warp, 6)
            )
        return out


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 6) if values else None


def _frames(source: Any, end: int | None) -> tuple[Iterator[np.ndarray], int | None, float | None]:
    """``(frames, count or None, fps or None)`` of a video path or an iterable of frames."""
    if isinstance(source, (str, os.PathLike)):
        from pose.video import open_video

        video = open_video(source, end=end)
        count = video.frame_count if end is None or video.frame_count is None else min(end, video.frame_count)
        return iter(video), count, video.fps
    it = iter(source)
    if end is not None:
        import itertools

        it = itertools.islice(it, end)
    count = len(source) if hasattr(source, "__len__") else None
    return it, (min(count, end) if count is not None and end is not None else count), None


def hatch(image: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
    """``image`` with the pixels outside ``keep`` (any size; resized to the image's) dimmed and crossed by
    diagonal lines: how a contact sheet shows the regions left out of the scores. Unchanged without ``keep``."""
    if keep is None:
        return image
    import cv2

    h, w = image.shape[:2]
    out = cv2.resize(keep.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) == 0
    if not out.any():
        return image
    shaded = image.copy()
    shaded[out] = (0.5 * image[out]).astype(np.uint8)
    ys, xs = np.nonzero(out)
    lines = (xs + ys) % 8 < 2
    shaded[ys[lines], xs[lines]] = 255
    return shaded


def _resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    frame = np.asarray(frame)
    if frame.shape[1::-1] == size:
        return frame
    shrink = frame.shape[0] > size[1]
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def eval_size(width: int, height: int, target_height: int = DEFAULT_HEIGHT) -> tuple[int, int]:
    """``(w, h)`` for comparing frames of a ``width`` x ``height`` video at ``target_height`` (even sides)."""
    h = target_height - target_height % 2
    w = max(2, int(round(width * h / height / 2)) * 2)
    return w, h


def _sample_indices(count: int | None, k: int = CONTACT_SHEET_FRAMES) -> set[int]:
    if not count:
        return set(range(k))
    return {int(round(i)) for i in np.linspace(0, count - 1, min(k, count))}


def contact_sheet(rows: list[list[np.ndarray]], labels: list[str] | None = None) -> np.ndarray:
    """Grid image: one row per list of equally sized RGB thumbnails, optional label per row.

    Returns:
        ``(H, W, 3)`` uint8 RGB image.
    """
    import cv2

    width = max(sum(t.shape[1] for t in row) for row in rows)
    out_rows = []
    for i, row in enumerate(rows):
        strip = np.concatenate(row, axis=1)
        if strip.shape[1] < width:
            strip = np.pad(strip, ((0, 0), (0, width - strip.shape[1]), (0, 0)))
        strip = strip.copy()
        if labels:
            cv2.putText(strip, labels[i], (8, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 0), 2, cv2.LINE_AA)
        out_rows.append(strip)
    return np.concatenate(out_rows, axis=0)


def _save_png(image: np.ndarray, path: Path) -> None:
    import cv2

    from pose.io import atomic_output

    with atomic_output(path, overwrite=True) as tmp:
        ok, buf = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not ok:
            raise InputError(f"could not encode the contact sheet {path}")
        tmp.write_bytes(buf.tobytes())


# ------------------------------------------------------------------------------------------------
# optional network metrics
# ------------------------------------------------------------------------------------------------
def _jit_load(torch: Any, path: Path) -> Any:
    """A TorchScript model in eval mode, on the CPU, without torch's deprecation notice for ``torch.jit.load``
    (two lines on stderr, even with ``-q``, before posedrive's own one-line error for a file of another kind)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.jit\.load")
        return torch.jit.load(str(path), map_location="cpu").eval()


def _weights_file(kind: str, weights: str | os.PathLike, flag: str) -> Path:
    """``weights`` as an existing file, else a :class:`WeightsError` saying what to pass."""
    text = str(weights)
    path = Path(os.path.expanduser(text))
    if not text.strip():
        raise WeightsError(f"{flag} is empty; pass the {kind} weights file")
    if path.is_dir():
        raise WeightsError(f"{kind} weights {path} is a folder; pass the weights file itself with {flag}")
    if not path.is_file():
        raise WeightsError(f"{kind} weights {path} do not exist; pass the file given by {flag}")
    return path


class _Lpips:
    """LPIPS from user-given weights: a TorchScript model ``f(x, y)`` or the ``lpips`` package's linear
    layers file (``alex.pth``; the package must be installed and its backbone available offline). The model
    is tried on a small pair when loaded, so a wrong file fails before any work."""

    def __init__(self, weights: str | os.PathLike) -> None:
        import torch  # lazily: the CPU path never needs torch

        self.torch = torch
        path = self.path = _weights_file("LPIPS", weights, "--lpips-weights")
        try:
            self.model = _jit_load(torch, path)
        except Exception:
            try:
                import lpips
            except ImportError as exc:
                raise WeightsError(f"{path} is not a TorchScript LPIPS model and the 'lpips' package is not installed; pip install lpips") from exc
            self.model = lpips.LPIPS(net="alex", model_path=str(path), verbose=False).eval()
        self.values: list[float] = []
        probe = np.zeros((64, 64, 3), np.uint8)
        self._distance(probe, probe)  # a model of another kind fails here, not after the animation

    def _distance(self, gen: np.ndarray, real: np.ndarray) -> float:
        t = self.torch

        def prep(x: np.ndarray) -> Any:
            return t.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None].float() / 127.5 - 1.0

        try:
            with t.no_grad():
                value = float(self.model(prep(gen), prep(real)).mean())
        except Exception as exc:  # any error of a model of another kind (signature, output type)
            raise WeightsError(f"{self.path} is not an LPIPS model: f(x, y) on two images failed "
                               f"({exc.__class__.__name__}); pass an LPIPS TorchScript model or alex.pth") from None
        if not math.isfinite(value):
            raise WeightsError(f"{self.path} gave LPIPS {value} (not a finite number); pass a working LPIPS model")
        return value

    def update(self, gen: np.ndarray, real: np.ndarray) -> None:
        self.values.append(self._distance(gen, real))


class _Fvd:
    """FVD with a TorchScript I3D (``i3d_torchscript.pt`` of StyleGAN-V), over non-overlapping clips of
    :data:`FVD_CLIP_FRAMES` frames; clips are collected at :data:`FVD_SIDE` px (small)."""

    def __init__(self, weights: str | os.PathLike) -> None:
        import torch

        self.torch = torch
        path = self.path = _weights_file("FVD (I3D)", weights, "--fvd-weights")
        try:
            self.model = _jit_load(torch, path)
        except Exception as exc:
            raise WeightsError(f"{path} is not a TorchScript I3D model; pass the i3d_torchscript.pt that FVD "
                               "implementations (StyleGAN-V's) publish") from exc
        self.clips: dict[str, list[np.ndarray]] = {"gen": [], "real": []}
        self.feats: dict[str, list[np.ndarray]] = {"gen": [], "real": []}
        # one clip through the model when loaded: a model of another kind fails here, not after the animation
        self._features(np.zeros((FVD_CLIP_FRAMES, FVD_SIDE, FVD_SIDE, 3), np.uint8))

    def update(self, gen: np.ndarray, real: np.ndarray) -> None:
        for key, frame in (("gen", gen), ("real", real)):
            self.clips[key].append(_resize(frame, (FVD_SIDE, FVD_SIDE)))
            if len(self.clips[key]) == FVD_CLIP_FRAMES:
                self.feats[key].append(self._features(np.stack(self.clips[key])))
                self.clips[key] = []

    def _features(self, clip: np.ndarray) -> np.ndarray:
        t = self.torch
        x = t.from_numpy(clip).permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0  # (1, C, T, H, W) in [-1, 1]
        try:
            with t.no_grad():
                feats = np.asarray(self.model(x, rescale=False, resize=True, return_features=True).numpy()[0],
                                   np.float64)
        except Exception as exc:  # any error of a model of another kind (signature, output type)
            raise WeightsError(f"{self.path} is not the I3D feature model FVD needs: a clip through it failed "
                               f"({exc.__class__.__name__}); pass i3d_torchscript.pt") from None
        if feats.ndim != 1 or not np.isfinite(feats).all():
            raise WeightsError(f"{self.path} gave I3D features of shape {feats.shape} (finite: "
                               f"{bool(np.isfinite(feats).all())}); pass i3d_torchscript.pt")
        return feats

    def result(self) -> dict:
        from scipy import linalg

        g, r = np.array(self.feats["gen"]), np.array(self.feats["real"])
        if len(g) < 2:
            return {"skipped": f"FVD needs at least 2 clips of {FVD_CLIP_FRAMES} frames, got {len(g)}"}
        mu_g, mu_r = g.mean(0), r.mean(0)
        cov_g, cov_r = np.cov(g, rowvar=False), np.cov(r, rowvar=False)
        covmean = linalg.sqrtm(cov_g @ cov_r).real
        value = float(np.sum((mu_g - mu_r) ** 2) + np.trace(cov_g + cov_r - 2 * covmean))
        if not math.isfinite(value):
            return {"skipped": f"FVD came out {value} (the clips' features are degenerate)"}
        value = max(0.0, value)  # a distance: rounding can leave -0.0 or a tiny negative for identical videos
        return {"fvd": round(value, 4) + 0.0, "clips": len(g),
                "note": "FVD from one video pair is indicative only; it is defined over many clips"}


def _optional(kind: str, weights: Any) -> tuple[Any, dict | None]:
    """The ``kind`` metric (``LPIPS`` / ``FVD``) from its weights file (or as already loaded), or why not."""
    if isinstance(weights, (_Lpips, _Fvd)):
        return weights, None
    if weights is None:
        return None, {"skipped": f"no {kind} weights given (--{kind.lower()}-weights PATH)"}
    try:
        return (_Lpips(weights) if kind == "LPIPS" else _Fvd(weights)), None
    except ImportError as exc:
        return None, {"skipped": f"{kind} needs torch ({exc})"}


# ------------------------------------------------------------------------------------------------
# public API
# ------------------------------------------------------------------------------------------------
def compare_videos(
    generated: Any,
    real: Any,
    *,
    height: int = DEFAULT_HEIGHT,
    frames: int | None = None,
    driving_poses: PoseSequence | None = None,
    detector: str = "mediapipe",
    detector_options: dict | None = None,
    baseline: bool = True,
    warp: bool = True,
    skip_first: bool = False,
    lpips_weights: str | os.PathLike | None = None,
    fvd_weights: str | os.PathLike | None = None,
    contact_sheet_path: str | os.PathLike | None = None,
    progress: bool = True,
    ignore: Sequence[Sequence[float]] = (),
) -> dict:
    """Compare a generated video with a real one frame by frame (streamed).

    Args:
        generated: video path, frame folder, or iterable of ``(H, W, 3)`` uint8 RGB frames.
        real: same kinds; the reference for every metric. Frames are paired by index; the shorter video
            sets the count.
        height: comparison height in pixels (width follows ``real``'s aspect ratio; ``generated`` is
            resized to the same size).
        frames: compare at most this many frames (``None`` = all).
        driving_poses: the poses that drove ``generated``; when given, the pose is re-detected on every
            generated frame and PCK@0.05 reported (poses are mapped onto the comparison size).
        detector: detector name for PCK.
        detector_options: its options, e.g. the detection window (``crop``) or ``follow`` that found a small
            dancer in the driving video (:mod:`pose.person_search`), which the generated frames share in a
            self-reenactment.
        baseline: also score the trivial baseline "first real frame repeated".
        warp: compute the flow-warp error of generated and real frames (and the baseline's, which is 0).
        skip_first: leave frame 0 out of SSIM/PSNR/L1/PCK (self-reenactment: it is the input reference,
            and its capped PSNR would dominate a mean over few frames); it still counts for warp error.
        lpips_weights, fvd_weights: weight files enabling LPIPS / FVD (else reported as skipped).
        contact_sheet_path: write a PNG with ~8 sampled frames (row 1 real, row 2 generated).
        progress: tqdm bar.
        ignore: rectangles ``(X0, Y0, X1, Y1)`` in fractions of the frame left out of SSIM, PSNR, L1 and
            the warp error (burnt-in subtitles, logos), and filled with the real pixels in the generated
            frames given to LPIPS and FVD; listed in the report's ``settings``.

    Returns:
        Report dict: ``frames``, ``size``, ``generated`` / ``baseline_first_frame`` metric dicts (``ssim``,
        ``psnr``, ``l1``, ``pck``, ``warp_error``, ``warp_error_ratio``), ``real`` (``warp_error``),
        ``lpips`` / ``fvd`` (value or ``skipped``), ``settings``.

    Raises:
        InputError: a video has no frames, or a frame is not an RGB image.
        ConfigError: a malformed ``ignore`` rectangle, or rectangles covering the whole frame.
    """
    regions = check_regions(ignore)  # a malformed rectangle fails before any video is opened
    gen_it, gen_count, _ = _frames(generated, frames)
    real_it, real_count, fps = _frames(real, frames)
    counts = [c for c in (gen_count, real_count) if c is not None]
    total = min(counts) if counts else None
    sample = _sample_indices(total)
    det = None
    if driving_poses is not None:
        from pose.detectors import create_detector

        det = create_detector(detector, **(detector_options or {}))

    # the scorers are made at the first frame, when the comparison size (and so the kept pixels) is known
    gen_s: _Scores | None = None
    base_s: _Scores | None = None
    real_warp: WarpError | None = None
    lp, lp_info = _optional("LPIPS", lpips_weights)
    fv, fv_info = _optional("FVD", fvd_weights)
    size: tuple[int, int] | None = None
    keep: np.ndarray | None = None
    first_real: np.ndarray | None = None
    base_pose: PoseFrame | None = None
    thumbs: list[tuple[np.ndarray, np.ndarray]] = []
    n = 0
    bar = tqdm(total=total, desc="evaluate", unit="frame", disable=not progress)
    try:
        for g, r in zip(gen_it, real_it):
            r = np.asarray(r)
            if r.ndim != 3 or r.shape[2] != 3:
                raise InputError(f"real frame {n} of {_label(real)} has shape {r.shape}; frames must be (H, W, 3) RGB")
            if size is None:
                size = eval_size(r.shape[1], r.shape[0], height)
                keep = keep_mask(size, regions)
                gen_s = _Scores(warp=WarpError(keep) if warp else None, keep=keep)
                base_s = _Scores(warp=WarpError(keep) if warp else None, keep=keep) if baseline else None
                real_warp = WarpError(keep) if warp else None
            r = _resize(r, size)
            g = _resize(np.asarray(g), size)
            if first_real is None:
                first_real = r
            scored = not (skip_first and n == 0)
            gen_s.add(g, r, scored)
            if base_s is not None:
                base_s.add(first_real, r, scored)
            if real_warp is not None:
                real_warp.update(r)
            if det is not None and scored and n < len(driving_poses):
                target = driving_poses[n].resized(*size)
                hit, cnt = pck(_detect(det, g), target)
                gen_s.pck_hit, gen_s.pck_n = gen_s.pck_hit + hit, gen_s.pck_n + cnt
                if base_s is not None:
                    if base_pose is None:
                        base_pose = _detect(det, first_real)
                    hit, cnt = pck(base_pose, target)
                    base_s.pck_hit, base_s.pck_n = base_s.pck_hit + hit, base_s.pck_n + cnt
            if scored and (lp is not None or fv is not None):  # frame 0 of a self-reenactment is the input
                # the networks see whole frames: the ignored regions get the real pixels in both
                shown = g if keep is None else np.where(keep[..., None], g, r)
                if lp is not None:
                    lp.update(shown, r)
                if fv is not None:
                    fv.update(shown, r)
            if n in sample and contact_sheet_path is not None:
                th = eval_size(size[0], size[1], CONTACT_THUMB_HEIGHT)
                thumbs.append((hatch(_resize(r, th), keep), hatch(_resize(g, th), keep)))
            n += 1
            bar.update(1)
    finally:
        bar.close()
        if det is not None and hasattr(det, "close"):
            det.close()
        for it in (gen_it, real_it):  # stop their decoders now, not at interpreter shutdown
            close = getattr(it, "close", None)
            if close is not None:
                close()
    if n == 0 or gen_s is None or not gen_s.ssim:
        raise InputError(f"no frames to compare between {_label(generated)} and {_label(real)}; check both videos")

    rw = real_warp.mean if real_warp is not None else None
    report: dict[str, Any] = {
        "frames": n,
        "frames_scored": len(gen_s.ssim),
        "size": list(size),
        "fps": fps,
        "generated": gen_s.summary(rw),
        "real": {"warp_error": None if rw is None else round(rw, 6)},
        "lpips": lp_info if lp is None else {"lpips": _mean(lp.values)},
        "fvd": fv_info if fv is None else fv.result(),
        "settings": {
            "height": height, "psnr_cap_db": PSNR_CAP_DB, "pck_alpha": PCK_ALPHA,
            "pck_reference": "max side of the driving body bbox", "ssim": "skimage, RGB, window 7",
            "warp_flow": "OpenCV DIS medium, t+1 -> t",
            "ignored_regions": regions,
            "scored_fraction": 1.0 if keep is None else round(float(keep.mean()), 6),
        },
    }
    if base_s is not None:
        report["baseline_first_frame"] = base_s.summary(rw)
    if contact_sheet_path is not None and thumbs:
        sheet = contact_sheet([[t[0] for t in thumbs], [t[1] for t in thumbs]], ["real", "generated"])
        _save_png(sheet, Path(contact_sheet_path))
        report["contact_sheet"] = str(contact_sheet_path)
    return report


def _json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None`` (JSON has no NaN; a strict parser refuses
    the bare ``NaN`` Python writes)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _label(source: Any) -> str:
    return str(source) if isinstance(source, (str, os.PathLike)) else "the frame iterable"


def _detect(detector: Any, frame: np.ndarray) -> PoseFrame | None:
    try:
        pose = detector(frame)
    except NoPersonError:
        return None
    return pose if pose is not None and pose.has_person else None


def check_eval_height(height: int, clip_size: tuple[int, int], renderer: Any = None) -> None:
    """Refuse a comparison ``height`` too small for a ``clip_size`` ``(w, h)`` clip, before any work.

    The compared frames (:func:`eval_size`) need :data:`SSIM_WINDOW` px on each side, and the renderer a
    canvas of its :attr:`~animate.renderer.Renderer.min_height` (the puppet: 2 px per mesh row).

    Raises:
        ConfigError: ``height`` is too small; the message gives the smallest that works (``--height``).
    """
    width, clip_h = clip_size
    need = next((h for h in range(SSIM_WINDOW + SSIM_WINDOW % 2, 1 << 16, 2)
                 if min(eval_size(width, clip_h, h)) >= SSIM_WINDOW), 1 << 16)
    why = f"the scores need frames at least {SSIM_WINDOW} px on each side"
    least = getattr(renderer, "min_height", 0)
    if least > need:
        need = least + least % 2  # the renderer's own limit, made even
        density = getattr(getattr(renderer, "options", None), "mesh_density", None)
        what = f"mesh of {density:g} rows" if isinstance(density, (int, float)) else "canvas"
        why = f"the {getattr(renderer, 'name', 'puppet')} renderer's {what} needs {need} px of height"
    if height < need:
        w, h = eval_size(width, clip_h, height)
        raise ConfigError(f"--height {height} is too small ({w}x{h} frames for this {width}x{clip_h} clip): {why}; "
                          f"use --height {need} (height={need}) or more")


def evaluate_self_reenactment(
    video: str | os.PathLike,
    *,
    renderer: str = "puppet",
    frames: int | None = None,
    height: int = DEFAULT_HEIGHT,
    out_dir: str | os.PathLike = "eval",
    config: str | os.PathLike | None = None,
    pck_eval: bool = True,
    lpips_weights: str | os.PathLike | None = None,
    fvd_weights: str | os.PathLike | None = None,
    progress: bool = True,
    ignore: Sequence[Sequence[float]] = (),
    overwrite: bool = False,
    **overrides: Any,
) -> dict:
    """Self-reenactment of ``video``: its first frame animated with its own poses, scored against it.

    Args:
        video: a real clip with one person.
        renderer: renderer name (``puppet``, ``diffusion``).
        frames: use the first ``frames`` frames (``None`` = all).
        height: canvas and comparison height in pixels (default 512; width follows the clip's aspect).
        out_dir: folder for ``report.json`` and ``contact_sheet.png`` (created).
        config: Animator YAML (see :mod:`animate.config`); ``overrides`` are applied on top.
        pck_eval: re-detect poses on the generated frames for PCK@0.05.
        lpips_weights, fvd_weights: optional weight files (see :func:`compare_videos`).
        progress: tqdm bars.
        ignore: regions left out of the scores (see :func:`compare_videos`).
        overwrite: replace an existing ``out_dir/report.json`` and ``out_dir/contact_sheet.png``; without it
            either one existing is refused before any work.

    Returns:
        The report (also saved as ``out_dir/report.json``): everything :func:`compare_videos` returns plus
        ``video``, ``renderer``, ``animate`` (run statistics) and ``driving`` (pose summary).

    Raises:
        VideoError / NoPersonError: unreadable clip, no person. OutputError: unwritable ``out_dir``, an existing
        report or contact sheet (without ``overwrite``), ``out_dir`` inside the input. ConfigError: ``height``
        too small for the renderer or the scores. All checked before the clip is animated.
    """
    from pose.detectors.base import WINDOW_OPTIONS
    from pose.io import atomic_output
    from pose.video import open_video

    from .api import Animator
    from .writers import check_output_path, new_folders_removed_on_error, refuse_overwriting_inputs

    regions = check_regions(ignore)  # a malformed rectangle fails before the clip is animated
    if frames is not None and frames < 2:
        raise ConfigError(f"frames={frames}: self-reenactment animates frame 0 and scores the frames after it; "
                          f"use at least 2")
    with open_video(video, end=2) as src:
        head = list(src)
    if not head:
        raise InputError(f"video {video} has no frames; pass a real clip")
    if len(head) < 2:
        raise InputError(f"{video} has a single frame: self-reenactment animates frame 0 and scores the frames "
                         f"after it; pass a clip of at least 2 frames")
    first = head[0]
    out = Path(os.path.expanduser(str(out_dir)))
    report_path, sheet_path = out / "report.json", out / "contact_sheet.png"
    for path in (report_path, sheet_path):
        refuse_overwriting_inputs(path, video, config)  # even with overwrite
    clip_size = (first.shape[1], first.shape[0])
    if renderer != "puppet":  # the scores' minimum before loading (weights); the puppet's, larger, below
        check_eval_height(height, clip_size)
    size = eval_size(*clip_size, height)
    keep_mask(size, regions)  # regions covering the whole frame, before the clip is animated
    lpips_weights = _optional("LPIPS", lpips_weights)[0] or lpips_weights  # a wrong file fails here
    fvd_weights = _optional("FVD", fvd_weights)[0] or fvd_weights
    with new_folders_removed_on_error(report_path):  # a failed run leaves no new empty out_dir behind
        report_path = check_output_path(report_path, overwrite=overwrite, video=False)
        check_output_path(sheet_path, overwrite=overwrite, video=False)
        with Animator.from_config(config, renderer=renderer, **overrides) as animator:
            check_eval_height(height, clip_size, animator.renderer)  # a puppet's mesh, before any work
            backdrop = getattr(getattr(animator.renderer, "options", None), "background", "plate")
            if getattr(animator.renderer, "channels", 3) != 3 or backdrop not in (None, "plate"):
                raise ConfigError(f"self-reenactment compares the rendered frames with the real ones, so the character "
                                  f"must be drawn over its own background, not background={backdrop!r}; drop that "
                                  "renderer option")
            driving = animator.load_driving(video, end=frames, progress=progress)
            if not driving[0].has_person or driving.status[0] not in (FrameStatus.DETECTED, FrameStatus.MANUAL):
                raise NoPersonError(f"no person found in frame 0 of {video}: self-reenactment animates the person "
                                    "in frame 0, so the clip must start with them in view; cut the clip to start "
                                    "there (e.g. ffmpeg -ss SECONDS)")
            generated = animator.stream(first, driving, size=size, fps=driving.fps, reference_pose=driving[0],
                                        preview=False, progress=progress)
            report = compare_videos(
                generated, video, height=height, frames=len(driving),
                driving_poses=animator.last_poses if pck_eval else None, detector=animator.config.pose.detector,
                detector_options={k: v for k, v in (driving.meta.get("detector_options") or {}).items()
                                  if k in WINDOW_OPTIONS},
                lpips_weights=lpips_weights, fvd_weights=fvd_weights,
                contact_sheet_path=sheet_path, skip_first=True, progress=False, ignore=ignore,
            )
            stats = animator.last_stats
        report = {
            "video": str(video), "renderer": renderer, **report,
            "animate": stats.to_dict() if stats else None,
            "driving": {k: v for k, v in driving.summary().items() if k != "meta"},
        }
        try:
            with atomic_output(report_path, overwrite=True) as tmp:  # checked above, before any work
                tmp.write_text(json.dumps(_json_safe(report), indent=2, allow_nan=False))
        except BaseException:
            if report.get("contact_sheet"):  # written by this run: no contact sheet without its report
                sheet_path.unlink(missing_ok=True)
            raise
    report["report"] = str(report_path)
    g, b = report["generated"], report.get("baseline_first_frame", {})
    logger.info(
        "self-reenactment of %s (%d frames, %s): SSIM %.4f PSNR %.2f L1 %.4f | first-frame baseline SSIM %.4f PSNR %.2f L1 %.4f",
        video, report["frames"], renderer, g["ssim"], g["psnr"], g["l1"],
        b.get("ssim") or 0, b.get("psnr") or 0, b.get("l1") or 0,
    )
    return report
