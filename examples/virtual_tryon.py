"""Virtual try-on preview: a fashion photo performs a dance, to see the outfit in motion.

    python examples/virtual_tryon.py                  # examples/assets/tryon_model.png + dance -> out/tryon.mp4

The default photo is Moore-AnimateAnyone's ``anyone-3.png`` (see examples/assets/README.md). A short
excerpt of the dance is used by default (``--start``/``--end``); the photo's aspect sets the canvas.
An existing output is only replaced with ``--overwrite``. Errors are one line on stderr (exit status 2),
like ``posedrive``'s; Ctrl-C exits with 130 and leaves no partial video.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from animate import Animator
from animate.cli import run_reporting_errors

ASSETS = Path(__file__).resolve().parent / "assets"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: the command line), animate, and return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photo", default=str(ASSETS / "tryon_model.png"), help="full-body fashion photo")
    parser.add_argument("--driving", default=str(ASSETS / "dance.mp4"), help="driving video or pose file")
    parser.add_argument("-o", "--output", default="out/tryon.mp4", help="video to write (default out/tryon.mp4)")
    parser.add_argument("--start", type=int, default=0, help="first driving frame (default 0)")
    parser.add_argument("--end", type=int, default=96, help="stop before this frame (default 96 = 4 s)")
    parser.add_argument("--mask", help="garment/person mask of the photo (white = person), if segmentation fails")
    parser.add_argument("--reference-pose", help="pose file of the model, if detection fails")
    parser.add_argument("--renderer", help="puppet (CPU, the default) or diffusion (GPU)")
    parser.add_argument("--weights", help="weights folder of the diffusion renderer")
    parser.add_argument("--overwrite", action="store_true", help="replace the output if it exists")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_reporting_errors(lambda: run(args), prog="virtual_tryon")


def run(args: argparse.Namespace) -> None:
    with Animator(renderer=args.renderer, weights=args.weights, preview=True) as animator:
        path = animator.animate(args.photo, args.driving, args.output, start=args.start, end=args.end,
                                mask=args.mask, reference_pose=args.reference_pose, overwrite=args.overwrite)
        stats = animator.last_stats
    logging.getLogger("virtual_tryon").info("wrote %s (%d frames, %.2f fps)", path, stats.frames, stats.render_fps)


if __name__ == "__main__":
    sys.exit(main())
