"""CPU benchmark of the diffusion pipeline with tiny random models, so a figure exists on every machine.

Usage: python benchmarks/bench_diffusion_cpu.py [--size 64] [--frames 16] [--steps 4] [--window 8] [--threads 1]
Prints seconds per generated frame (reference encoding, denoising with context windows and VAE decode included).
"""

from __future__ import annotations

import argparse
import json
import logging
import time

import numpy as np
import torch

from animate.diffusion.pipeline import PoseDrivePipeline
from animate.diffusion.tiny import tiny_components

logger = logging.getLogger("bench_diffusion_cpu")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=64, help="square generation size in pixels (default 64)")
    ap.add_argument("--frames", type=int, default=16, help="frames (default 16)")
    ap.add_argument("--steps", type=int, default=4, help="denoising steps (default 4)")
    ap.add_argument("--window", type=int, default=8, help="context window (tiny max_len is 8)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    pipe = PoseDrivePipeline(**tiny_components())
    pipe.set_progress_bar_config(disable=True)
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
    poses = rng.integers(0, 256, (args.frames, args.size, args.size, 3), dtype=np.uint8)
    pipe(poses[:2], ref, num_inference_steps=1, context_frames=args.window)  # warm-up
    t0 = time.perf_counter()
    pipe(poses, ref, num_inference_steps=args.steps, context_frames=args.window, context_overlap=2,
         generator=torch.Generator().manual_seed(0))
    dt = time.perf_counter() - t0
    result = dict(device="cpu", threads=args.threads, size=args.size, frames=args.frames, steps=args.steps,
                  window=args.window, seconds=round(dt, 3), seconds_per_frame=round(dt / args.frames, 4))
    logger.info(json.dumps(result))


if __name__ == "__main__":
    main()
