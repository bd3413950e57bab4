"""Self-reenactment of a video with the puppet renderer: reference = frame 0, driving = the video's own poses.

Scores the rendered frames against the real ones at ``--height`` pixels (SSIM, PSNR with skimage, pose PCK@0.05
by re-detecting the pose on the rendered frames, temporal warp error with Farneback flow) and compares with the
"first frame repeated" baseline. Poses are cached in ``--cache`` (an .npz) so that iterations are fast.

    python benchmarks/selfreenact_puppet.py examples/assets/dance.mp4 --deformation skinning
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
from pose.sequence import PoseFrame, PoseSequence

logger = logging.getLogger("selfreenact_puppet")

# mediapipe pose (33) -> OpenPose-18 body and the 6 feet points of the layout
_MP_BODY = {0: 0, 2: 12, 3: 14, 4: 16, 5: 11, 6: 13, 7: 15, 8: 24, 9: 26, 10: 28, 11: 23, 12: 25, 13: 27,
            14: 5, 15: 2, 16: 8, 17: 7, 18: 31, 19: 31, 20: 29, 21: 32, 22: 32, 23: 30}


def read_frames(path: str, height: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        h, w = bgr.shape[:2]
        size = (int(round(w * height / h)), height)
        frames.append(cv2.cvtColor(cv2.resize(bgr, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB))
    cap.release()
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
    if cache and os.path.exists(cache):
        return np.load(cache)["keypoints"]
    det = _Holistic(static)
    kps = np.stack([det(f) for f in frames])
    det.close()
    if cache:
        np.savez(cache, keypoints=kps)
    return kps


def pck(pred: np.ndarray, gt: np.ndarray, size: float, thr: float = 0.05) -> float:
    """PCK over body joints visible in both, threshold ``thr`` x max(image side)."""
    vis = (gt[..., 2] >= 0.3) & (pred[..., 2] >= 0.3)
    d = np.linalg.norm(pred[..., :2] - gt[..., :2], axis=-1)
    return float((d[vis] <= thr * size).mean()) if vis.any() else 0.0


def warp_error(frames: list[np.ndarray]) -> float:
    """Mean abs difference (0..255) of frame t+1 and frame t warped by the DIS flow of the same video."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    h, w = frames[0].shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    errs = []
    for t in range(len(frames) - 1):
        flow = dis.calc(gray[t + 1], gray[t], None)
        warped = cv2.remap(frames[t], gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR)
        errs.append(np.abs(warped.astype(np.float32) - frames[t + 1].astype(np.float32)).mean())
    return float(np.mean(errs))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video")
    ap.add_argument("--height", type=int, default=512)
    ap.add_argument("--frames", type=int, default=0, help="limit the number of frames (0 = all)")
    ap.add_argument("--cache", default="/tmp/posedrive_selfreenact_poses.npz")
    ap.add_argument("--deformation", default="skinning")
    ap.add_argument("--options", default="{}", help="JSON dict of extra PuppetRenderer options")
    ap.add_argument("--no-smooth", action="store_true", help="drive with the raw detections (no One-Euro filter)")
    ap.add_argument("--pck", action="store_true", help="re-detect poses on the output for PCK@0.05 (slower)")
    ap.add_argument("--save", default="", help="write the rendered video here (mp4)")
    ap.add_argument("--json", default="", help="write the scores here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    real = read_frames(args.video, args.height)
    if args.frames:
        real = real[: args.frames]
    h, w = real[0].shape[:2]
    kps = poses_of(real, args.cache)[: len(real)]
    seq = PoseSequence(kps, w, h, 24.0)
    if not args.no_smooth:
        from pose.smoothing import smooth_sequence  # the pipeline's One-Euro filter

        seq = smooth_sequence(seq)
    renderer = PuppetRenderer(deformation=args.deformation, **json.loads(args.options))
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
