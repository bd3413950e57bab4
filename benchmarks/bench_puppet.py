"""Render speed of the CPU puppet renderer at 512x768 (the product's default canvas).

The MusePose reference character is fitted onto a 512x768 canvas and driven by the real dance clip of the
test data (tests/data/dance_short.mp4, poses extracted and retargeted onto the reference, then looped), so
the meshes deform as in use. Reports prepare time and render frames per second for each deformation mode.

    python benchmarks/bench_puppet.py [--frames 240] [--width 512 --height 768]
    python benchmarks/bench_puppet.py --reference tests/data/ref/anyone-1.png --modes skinning \
        --options '{"border_extend": 0}'      # a half-body character, without its continuation past the border
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from animate.puppet import PuppetRenderer
from pose.extract import detect_image, extract_poses
from pose.retarget import retarget
from pose.sequence import PoseSequence, fit_matrix
from pose.video import read_image

ROOT = Path(__file__).resolve().parents[1]
logger = logging.getLogger("bench_puppet")


def canvas_reference(width: int, height: int, path: Path) -> np.ndarray:
    """The reference (default MusePose's) fitted (aspect kept, letterboxed with its edge colour) onto the canvas."""
    import cv2

    img = read_image(path)
    m = fit_matrix(img.shape[1], img.shape[0], width, height)
    return cv2.warpAffine(img, m, (width, height), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--height", type=int, default=768)
    ap.add_argument("--frames", type=int, default=240)
    ap.add_argument("--modes", default="skinning,arap")
    ap.add_argument("--reference", default=str(ROOT / "tests" / "data" / "ref" / "musepose_ref.png"))
    ap.add_argument("--options", default="{}", help="JSON dict of extra PuppetRenderer options")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    ref = canvas_reference(args.width, args.height, Path(args.reference))
    ref_pose = detect_image(ref)
    driving = extract_poses(ROOT / "tests" / "data" / "dance_short.mp4", progress=False)
    poses = retarget(driving, ref_pose)
    reps = int(np.ceil(args.frames / len(poses)))
    kps = np.concatenate([poses.keypoints] * reps)[: args.frames]
    seq = PoseSequence(kps, poses.width, poses.height, poses.fps)
    results = {}
    for mode in args.modes.split(","):
        r = PuppetRenderer(deformation=mode, **json.loads(args.options))
        t0 = time.perf_counter()
        r.prepare(ref, ref_pose)
        prep = time.perf_counter() - t0
        next(iter(r.render(seq.slice(0, 1))))  # warm-up
        t0 = time.perf_counter()
        n = sum(1 for _ in r.render(seq))
        dt = time.perf_counter() - t0
        results[mode] = {"prepare_s": round(prep, 2), "render_fps": round(n / dt, 1), "frames": n,
                         "size": [args.width, args.height]}
    sys.stdout.write(json.dumps(results) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
