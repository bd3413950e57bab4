"""Self-reenactment scores of a renderer on a real clip, recorded next to the first-frame baseline.

    python benchmarks/eval_selfreenact.py                         # dance.mp4, 48 frames, puppet
    python benchmarks/eval_selfreenact.py --frames 96 --renderer diffusion --weights WEIGHTS_DIR

Writes ``benchmarks/results/eval_selfreenact/{report.json,contact_sheet.png}`` (see animate.evaluation for
the protocol and metric definitions).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from animate.evaluation import evaluate_self_reenactment

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", default=str(ROOT / "examples" / "assets" / "dance.mp4"))
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--renderer", default="puppet")
    parser.add_argument("--weights", help="weights folder of the diffusion renderer")
    parser.add_argument("--out-dir", default=str(ROOT / "benchmarks" / "results" / "eval_selfreenact"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    report = evaluate_self_reenactment(args.video, renderer=args.renderer, frames=args.frames,
                                       out_dir=args.out_dir, weights=args.weights, progress=False,
                                       overwrite=True)  # a re-run refreshes the recorded results
    keys = ("ssim", "psnr", "l1", "pck", "warp_error_ratio")
    table = {k: {"generated": report["generated"].get(k), "first_frame": report["baseline_first_frame"].get(k)} for k in keys}
    logging.getLogger("eval_selfreenact").info("%s\n%s", report["report"], json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
