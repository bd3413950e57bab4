"""Batch job: every character image in a folder -> one video each, all driven by the same dance.

    python examples/studio_batch.py                                  # tests' reference images -> out/batch/
    python examples/studio_batch.py CHARACTERS_DIR --driving dance.mp4 --out-dir renders/
    python examples/studio_batch.py CHARACTERS_DIR --background transparent   # .webm with alpha, to composite

Driving poses are extracted once and reused for every character. A character whose pose cannot be found is
reported and skipped (give it a pose file named ``<image stem>.pose.json`` next to the image); the job
writes ``summary.json`` with each character's result.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from animate.api import Animator
from pose.errors import PosedriveError

HERE = Path(__file__).resolve().parent
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")

log = logging.getLogger("studio_batch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("characters", nargs="?", default=str(HERE.parent / "tests" / "data" / "ref"),
                        help="folder of character images (default: tests/data/ref)")
    parser.add_argument("--driving", default=str(HERE / "assets" / "dance.mp4"), help="driving video or pose file")
    parser.add_argument("--out-dir", default="out/batch", help="output folder (default out/batch)")
    parser.add_argument("--end", type=int, default=48, help="stop before this driving frame (default 48 = 2 s)")
    parser.add_argument("--size", default="384x640", help="output WxH for every character (default 384x640)")
    parser.add_argument("--renderer", default="puppet", help="puppet (CPU) or diffusion (GPU)")
    parser.add_argument("--config", help="Animator YAML (see configs/default.yaml)")
    parser.add_argument("--background", help="puppet: green, #rrggbb, a picture, or transparent (writes .webm "
                                             "with an alpha channel) instead of each character's own background")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    images = sorted(p for p in Path(args.characters).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    out_dir = Path(args.out_dir)
    summary: dict[str, dict] = {}
    overrides = {"renderer__options__background": args.background} if args.background else {}
    suffix = ".webm" if args.background == "transparent" else ".mp4"
    with Animator.from_config(args.config, renderer=args.renderer, size=args.size, **overrides) as animator:
        driving = animator.load_driving(args.driving, end=args.end)  # extracted once for every character
        for image in images:
            pose_file = image.with_suffix(".pose.json")
            try:
                path = animator.animate(image, driving, out_dir / f"{image.stem}{suffix}", overwrite=True,
                                        reference_pose=pose_file if pose_file.is_file() else None)
                summary[image.name] = {"output": str(path), **animator.last_stats.to_dict()}
            except PosedriveError as exc:  # one bad character must not stop the batch
                log.warning("skipped %s: %s", image.name, exc)
                summary[image.name] = {"error": str(exc)}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    done = sum("output" in v for v in summary.values())
    log.info("%d of %d characters rendered; summary in %s", done, len(images), out_dir / "summary.json")


if __name__ == "__main__":
    main()
