"""Animate the bundled character with the bundled dance: examples/assets -> out/avatar.mp4.

    python examples/avatar_from_dance.py                       # CPU puppet renderer, ~12 s of video
    python examples/avatar_from_dance.py --preview -o out/avatar_preview.mp4
    python examples/avatar_from_dance.py --renderer diffusion --weights WEIGHTS_DIR   # on a GPU

Flags given on the command line win over the ``--config`` YAML (its renderer, output size, ... apply
otherwise). An existing output is only replaced with ``--overwrite``. Errors are one line on stderr (exit
status 2), like ``posedrive``'s; Ctrl-C exits with 130 and leaves no partial video.
"""

from __future__ import annotations

import argparse
import json
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
    parser.add_argument("--reference", default=str(ASSETS / "musepose_ref.png"), help="character image")
    parser.add_argument("--driving", default=str(ASSETS / "dance.mp4"), help="driving dance video")
    parser.add_argument("-o", "--output", default="out/avatar.mp4", help="video to write (default out/avatar.mp4)")
    parser.add_argument("--renderer", help="puppet (CPU) or diffusion (GPU) (default: the --config's, else puppet)")
    parser.add_argument("--weights", help="weights folder of the diffusion renderer")
    parser.add_argument("--config", help="Animator YAML (see configs/default.yaml)")
    parser.add_argument("--end", type=int, help="stop before this driving frame (default: whole video)")
    parser.add_argument("--preview", action="store_true", help="reference | skeleton | result side by side")
    parser.add_argument("--overwrite", action="store_true", help="replace the output if it exists")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_reporting_errors(lambda: run(args), prog="avatar_from_dance")


def run(args: argparse.Namespace) -> None:
    with Animator.from_config(args.config, renderer=args.renderer, weights=args.weights) as animator:
        path = animator.animate(args.reference, args.driving, args.output, end=args.end,
                                preview=args.preview or None, overwrite=args.overwrite)
        logging.getLogger("avatar_from_dance").info("wrote %s\n%s", path, json.dumps(animator.last_stats.to_dict(), indent=2))


if __name__ == "__main__":
    sys.exit(main())
