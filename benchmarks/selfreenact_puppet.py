"""Self-reenactment of a video with the puppet renderer: reference = frame 0, driving = the video's own poses.

A fast-iteration twin of ``posedrive eval`` (animate/evaluation.py): frames are read with ``pose.video`` and
resized like the evaluator, the driving poses come from the product path (``pose.extract.extract_poses`` +
``pose.retarget.retarget`` onto frame 0, ``--poses pipeline``, default) or from a plain mediapipe holistic
pass (``--poses holistic``), and are cached in ``--cache`` so that re-runs only render and score.
Scores: SSIM, PSNR (skimage), pose PCK@0.05 (``--pck``), DIS-flow warp error, the "first frame repeated"
baseline, and with ``--breakdown`` the squared error split by region: the character in the real frame
(mediapipe segmentation of every real frame, cached), the background the reference character covered
("revealed"), the bottom ``--band`` fraction of the frame (burnt-in subtitles / overlays) and the rest.

    python benchmarks/selfreenact_puppet.py examples/assets/dance.mp4 --breakdown
    python benchmarks/selfreenact_puppet.py examples/assets/dance.mp4 --options '{"leg_layers": false}'
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

import cv2
import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from animate.puppet import PuppetRenderer
from pose import layout
from pose.sequence import PoseSequence

logger = logging.getLogger("selfreenact_puppet")

# mediapipe pose (33) -> OpenPose-18 body and the 6 feet points of the layout
_MP_BODY = {0: 0, 2: 12, 3: 14, 4: 16, 5: 11, 6: 13, 7: 15, 8: 24, 9: 26, 10: 28, 11: 23, 12: 25, 13: 27,
            14: 5, 15: 2, 16: 8, 17: 7, 18: 31, 19: 31, 20: 29, 21: 32, 22: 32, 23: 30}


def read_frames(path: str, height: int) -> list[np.ndarray]:
    """All frames of ``path`` at the evaluator's comparison size (``eval_size``, INTER_AREA)."""
    from animate.evaluation import eval_size
    from pose.video import open_video

    frames: list[np.ndarray] = []
    size = None
    for frame in open_video(path):
        if size is None:
            size = eval_size(frame.shape[1], frame.shape[0], height)
        frames.append(cv2.resize(frame, size, interpolation=cv2.INTER_AREA) if frame.shape[1::-1] != size else frame)
    return frames


class _Holistic:
    """mediapipe holistic -> 134-keypoint layout (used when pose.extract is not available)."""

    def __init__(self, static: bool) -> None:
        import mediapipe as mp

        self._h = mp.solutions.holistic.Holistic(static_image_mode=static, model_complexity=1)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        r = self._h.process(rgb)
        kp = np.full((layout.NUM_KEYPOINTS, 3), np.nan, np.float32)
        kp[:, 2] = 0.0
        if r.pose_landmarks:
            lm = np.array([[p.x * w, p.y * h, p.visibility] for p in r.pose_landmarks.landmark], np.float32)
            for o, m in _MP_BODY.items():
                kp[o] = lm[m]
            kp[1, :2] = (lm[11, :2] + lm[12, :2]) / 2.0
            kp[1, 2] = min(lm[11, 2], lm[12, 2])
        for hl, sl in ((r.left_hand_landmarks, layout.LEFT_HAND), (r.right_hand_landmarks, layout.RIGHT_HAND)):
            if hl:
                kp[sl] = np.array([[p.x * w, p.y * h, 1.0] for p in hl.landmark], np.float32)
        return kp

    def close(self) -> None:
        self._h.close()


def poses_of(frames: list[np.ndarray], cache: str | None, static: bool = False) -> np.ndarray:
    """Raw mediapipe holistic keypoints of ``frames`` (``(T, 134, 3)``), cached in ``cache``."""
    if cache and os.path.exists(cache):
        return np.load(cache)["keypoints"]
    det = _Holistic(static)
    kps = np.stack([det(f) for f in frames])
    det.close()
    if cache:
        np.savez(cache, keypoints=kps)
    return kps


def pipeline_poses(video: str, size: tuple[int, int], cache: str | None) -> PoseSequence:
    """The product's driving poses: extracted (gap fill + One-Euro), retargeted onto frame 0, on the canvas."""
    if cache and os.path.exists(cache):
        d = np.load(cache)
        return PoseSequence(d["keypoints"], int(d["width"]), int(d["height"]), float(d["fps"]), d["status"])
    from pose.extract import extract_poses
    from pose.retarget import retarget

    driving = extract_poses(video, progress=False)
    seq = retarget(driving, driving[0]).resized(*size)
    if cache:
        np.savez(cache, keypoints=seq.keypoints, width=seq.width, height=seq.height, fps=seq.fps, status=seq.status)
    return seq


def character_masks(frames: list[np.ndarray], cache: str | None) -> np.ndarray:
    """``(T, H, W)`` bool person masks of the real frames (mediapipe holistic segmentation), cached."""
    if cache and os.path.exists(cache):
        return np.load(cache)["masks"]
    import mediapipe as mp

    with mp.solutions.holistic.Holistic(static_image_mode=False, model_complexity=1,
                                        enable_segmentation=True) as holistic:
        out = []
        for f in frames:
            seg = holistic.process(f).segmentation_mask
            out.append(np.zeros(f.shape[:2], bool) if seg is None else np.asarray(seg) > 0.5)
    masks = np.stack(out)
    if cache:
        np.savez_compressed(cache, masks=masks)
    return masks


def error_breakdown(out: list[np.ndarray], real: list[np.ndarray], masks: np.ndarray, band: float) -> dict:
    """Share of the squared error and MSE per region (character / revealed / band / rest), frames 1..T-1."""
    h = real[0].shape[0]
    band_rows = np.zeros(real[0].shape[:2], bool)
    band_rows[int(round((1.0 - band) * h)):] = True
    covered = masks[0]
    sse = dict.fromkeys(("character", "revealed", "band", "rest"), 0.0)
    count = dict.fromkeys(sse, 0)
    for t in range(1, len(real)):
        err = ((out[t].astype(np.float64) - real[t]) ** 2).mean(axis=2)
        char = masks[t] & ~band_rows
        revealed = covered & ~masks[t] & ~band_rows
        rest = ~(char | revealed | band_rows)
        for key, sel in (("character", char), ("revealed", revealed), ("band", band_rows), ("rest", rest)):
            sse[key] += float(err[sel].sum())
            count[key] += int(sel.sum())
    total = max(sum(sse.values()), 1e-9)
    return {k: {"share": round(sse[k] / total, 3), "mse": round(sse[k] / max(count[k], 1), 1)} for k in sse}


def pck(pred: np.ndarray, gt: np.ndarray, size: float, thr: float = 0.05) -> float:
    """PCK over body joints visible in both, threshold ``thr`` x max(image side)."""
    vis = (gt[..., 2] >= 0.3) & (pred[..., 2] >= 0.3)
    d = np.linalg.norm(pred[..., :2] - gt[..., :2], axis=-1)
    return float((d[vis] <= thr * size).mean()) if vis.any() else 0.0


def warp_error(frames: list[np.ndarray]) -> float:
    """Mean abs difference (0..255) of frame t+1 and frame t warped by DIS flow, as ``posedrive eval`` does."""
    from animate.evaluation import WarpError

    warp = WarpError()
    for f in frames:
        warp.update(f)
    return 255.0 * (warp.mean or 0.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video")
    ap.add_argument("--height", type=int, default=512)
    ap.add_argument("--frames", type=int, default=0, help="limit the number of frames (0 = all)")
    ap.add_argument("--cache", default="/tmp/posedrive_selfreenact", help="prefix of the cached poses / masks")
    ap.add_argument("--poses", choices=("pipeline", "holistic"), default="pipeline",
                    help="driving poses: the product path (extract + retarget) or raw mediapipe holistic")
    ap.add_argument("--breakdown", action="store_true", help="split the squared error by region")
    ap.add_argument("--band", type=float, default=0.125, help="bottom fraction of the frame counted as overlay band")
    ap.add_argument("--deformation", default="skinning")
    ap.add_argument("--options", default="{}", help="JSON dict of extra PuppetRenderer options")
    ap.add_argument("--no-smooth", action="store_true", help="--poses holistic: drive with the raw detections")
    ap.add_argument("--pck", action="store_true", help="re-detect poses on the output for PCK@0.05 (slower)")
    ap.add_argument("--save", default="", help="write the rendered video here (mp4)")
    ap.add_argument("--json", default="", help="write the scores here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    real = read_frames(args.video, args.height)
    if args.frames:
        real = real[: args.frames]
    h, w = real[0].shape[:2]
    tag = os.path.splitext(os.path.basename(args.video))[0]
    if args.poses == "pipeline":
        seq = pipeline_poses(args.video, (w, h), f"{args.cache}_{tag}_{h}_pipeline.npz").slice(0, len(real))
        kps = seq.keypoints
    else:
        kps = poses_of(real, f"{args.cache}_{tag}_{h}_holistic.npz")[: len(real)]
        seq = PoseSequence(kps, w, h, 24.0)
        if not args.no_smooth:
            from pose.smoothing import smooth_sequence  # the pipeline's One-Euro filter

            seq = smooth_sequence(seq)
    renderer = PuppetRenderer(**{"deformation": args.deformation, **json.loads(args.options)})
    t0 = time.perf_counter()
    renderer.prepare(real[0], seq[0])
    t_prep = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = list(renderer.render(seq))
    t_render = time.perf_counter() - t0

    def scores(frames: list[np.ndarray]) -> tuple[float, float]:
        # frame 0 is the reference itself: scored from frame 1 on (the baseline would be infinite there)
        pairs = list(zip(frames, real))[1:]
        s = np.mean([structural_similarity(a, b, channel_axis=2, data_range=255) for a, b in pairs])
        p = np.mean([peak_signal_noise_ratio(b, a, data_range=255) for a, b in pairs])
        return float(s), float(p)

    ssim, psnr = scores(out)
    base_ssim, base_psnr = scores([real[0]] * len(real))
    report = {
        "frames": len(real), "size": [w, h], "deformation": args.deformation, "options": json.loads(args.options),
        "ssim": round(ssim, 4), "psnr": round(psnr, 3),
        "baseline_first_frame": {"ssim": round(base_ssim, 4), "psnr": round(base_psnr, 3)},
        "warp_error": round(warp_error(out), 3), "warp_error_real": round(warp_error(real), 3),
        "prepare_s": round(t_prep, 2), "render_fps": round(len(out) / t_render, 1),
    }
    report["warp_ratio"] = round(report["warp_error"] / max(report["warp_error_real"], 1e-6), 3)
    if args.breakdown:
        masks = character_masks(real, f"{args.cache}_{tag}_{h}_masks.npz")[: len(real)]
        report["breakdown"] = error_breakdown(out, real, masks, args.band)
    if args.pck:
        det = _Holistic(static=False)
        pred = np.stack([det(f) for f in out])
        det.close()
        report["pck@0.05"] = round(pck(pred[:, layout.BODY], kps[:, layout.BODY], max(w, h)), 4)
    if args.save:
        import imageio.v2 as imageio

        imageio.mimwrite(args.save, out, fps=24, macro_block_size=1)
    logger.info("%s", json.dumps(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
