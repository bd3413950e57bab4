"""End-to-end animate benchmark: frames per second at 512x768 and peak memory, 1x vs 10x longer input.

    python benchmarks/bench_animate.py                      # results -> benchmarks/results/bench_animate.json
    python benchmarks/bench_animate.py --frames 48 --repeat 10 --renderer puppet

What is measured (each run in a fresh subprocess, so peak RSS is per run):

1. pose extraction of ``--frames`` frames of the driving video (frames per second);
2. ``Animator.animate`` of the character with those poses at 512x768 (render + encode, frames per second);
3. the same with the driving poses looped ``--repeat`` times (10x longer video).

``fps_end_to_end`` includes the renderer's per-character ``prepare`` (segmentation, mesh, inpainting) and
the final encode; ``fps_render_loop`` is the render loop alone (frames handed to the encoder, which runs
concurrently). Peak resident memory (``ru_maxrss``) of the two animate runs shows whether memory grows with video length:
frames are streamed, so the 10x run should stay within a small margin of the 1x run (the pose sequence itself
is ~1.6 kB per frame).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZE = (512, 768)

log = logging.getLogger("bench_animate")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def _child(args: argparse.Namespace) -> None:
    """One measured run in this process; prints a JSON line."""
    import numpy as np

    from animate.api import Animator
    from pose.io import load_sequence

    poses = load_sequence(args.poses)
    if args.repeat > 1:
        idx = np.tile(np.arange(len(poses)), args.repeat)
        poses = poses.copy(poses.keypoints[idx].copy(), status=poses.status[idx].copy(),
                           confidence=poses.confidence[idx].copy())
    with Animator(renderer=args.renderer, size=SIZE) as animator:
        t0 = time.perf_counter()
        animator.animate(args.reference, poses, args.output, overwrite=True, progress=False)
        wall = time.perf_counter() - t0
        stats = animator.last_stats
    print(json.dumps({
        "frames": stats.frames, "wall_s": round(wall, 3), "fps_end_to_end": round(stats.frames / wall, 3),
        "fps_render_loop": round(stats.render_fps, 3), "peak_rss_mb": round(_peak_rss_mb(), 1),
    }))


def _run_child(args: argparse.Namespace, poses: Path, output: Path, repeat: int) -> dict:
    cmd = [sys.executable, __file__, "--child", "--poses", str(poses), "--output", str(output),
           "--repeat", str(repeat), "--renderer", args.renderer, "--reference", args.reference]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if res.returncode != 0:
        raise SystemExit(f"benchmark run failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", default=str(ROOT / "examples" / "assets" / "musepose_ref.png"))
    parser.add_argument("--driving", default=str(ROOT / "examples" / "assets" / "dance.mp4"))
    parser.add_argument("--frames", type=int, default=48, help="driving frames of the 1x run (default 48)")
    parser.add_argument("--repeat", type=int, default=10, help="loop factor of the long run (default 10)")
    parser.add_argument("--renderer", default="puppet")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "bench_animate.json"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--poses", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from pose.extract import extract_poses
    from pose.io import save_sequence

    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        t0 = time.perf_counter()
        seq = extract_poses(args.driving, end=args.frames, progress=False)
        extract_s = time.perf_counter() - t0
        poses = save_sequence(seq, tmp_dir / "poses.npz")
        log.info("extracted %d frames in %.1f s", len(seq), extract_s)
        one = _run_child(args, poses, tmp_dir / "x1.mp4", 1)
        log.info("1x: %s", one)
        ten = _run_child(args, poses, tmp_dir / "x10.mp4", args.repeat)
        log.info("%dx: %s", args.repeat, ten)

    result = {
        "renderer": args.renderer, "size": list(SIZE), "driving": str(Path(args.driving).name),
        "pose_extraction": {"frames": len(seq), "seconds": round(extract_s, 2), "fps": round(len(seq) / extract_s, 2)},
        "animate_1x": one, f"animate_{args.repeat}x": ten,
        "peak_rss_growth": round(ten["peak_rss_mb"] / one["peak_rss_mb"], 3),
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                    "cores": __import__("os").cpu_count()},
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    out = Path(args.results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    log.info("results in %s:\n%s", out, json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
