"""Batch job: every character image in a folder -> one video each, all driven by the same dance.

    python examples/studio_batch.py                                  # tests' reference images -> out/batch/
    python examples/studio_batch.py CHARACTERS_DIR --driving dance.mp4 --out-dir renders/
    python examples/studio_batch.py CHARACTERS_DIR --background transparent   # .webm with alpha, to composite
    python examples/studio_batch.py CHARACTERS_DIR --config my.yaml            # renderer, size, ... from a YAML

Driving poses are extracted once and reused for every character. A character whose pose cannot be found is
reported and skipped (give it a pose file named ``<image stem>.pose.json`` next to the image); the job
writes ``summary.json`` with each character's result, also when it is interrupted (Ctrl-C: the characters
finished so far). Flags given on the command line win over the ``--config`` YAML; without ``--config`` every
character is rendered with the puppet at 384x640.

Everything is checked before any work: the folder holds character images (plain files), no two of them
would write the same video (``hero.png`` and ``hero.jpg``: rename one), and no output exists yet (pass
``--overwrite`` to replace them; a character that then fails has its earlier video removed, so what is in
the folder matches ``summary.json``). Exit status: 0 when every character was rendered, 1 when some failed
(the others are still rendered), 2 for a user error (one line on stderr), 130 on Ctrl-C.
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
from animate.config import load_config
from animate.writers import check_output_path, new_folders_removed_on_error, refuse_overwriting_inputs
from pose.errors import InputError, NoPersonError, OutputError, PosedriveError
from pose.io import atomic_output

HERE = Path(__file__).resolve().parent
#: Reference formats the README lists: what pose.video.read_image decodes, and a GIF's first frame.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif")
#: Output size without --config (a config's own output settings apply otherwise).
DEFAULT_SIZE = "384x640"
EXIT_SOME_FAILED = 1

log = logging.getLogger("studio_batch")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: the command line), run the batch, and return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("characters", nargs="?", default=str(HERE.parent / "tests" / "data" / "ref"),
                        help="folder of character images (default: tests/data/ref)")
    parser.add_argument("--driving", default=str(HERE / "assets" / "dance.mp4"), help="driving video or pose file")
    parser.add_argument("--out-dir", default="out/batch", help="output folder (default out/batch)")
    parser.add_argument("--end", type=int, default=48, help="stop before this driving frame (default 48 = 2 s)")
    parser.add_argument("--size", help=f"output WxH for every character (default {DEFAULT_SIZE}, or the --config's "
                                       "output settings)")
    parser.add_argument("--renderer", help="puppet (CPU) or diffusion (GPU) (default: the --config's, else puppet)")
    parser.add_argument("--config", help="Animator YAML (see configs/default.yaml)")
    parser.add_argument("--background", help="puppet: green, #rrggbb, a picture, or transparent (writes .webm "
                                             "with an alpha channel) instead of each character's own background")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the videos and summary.json of an earlier run in --out-dir")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_reporting_errors(lambda: run(args), prog="studio_batch",
                                interrupted="interrupted; videos finished so far and summary.json were kept, "
                                            "no partial video")


def character_images(folder: Path) -> list[Path]:
    """The character images (plain files with an image suffix) in ``folder``, sorted by name.

    Raises:
        InputError: ``folder`` does not exist, is not a folder, or holds no character image.
    """
    if not folder.exists():
        raise InputError(f"character folder {folder} does not exist; give a folder of character images")
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder; give a folder of character images")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not images:
        raise InputError(f"no character images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return images


def plan_outputs(images: list[Path], out_dir: Path, suffix: str) -> dict[Path, Path]:
    """The video each image writes, ``<out_dir>/<image stem><suffix>``.

    Raises:
        InputError: two images would write the same video (same stem, compared case-insensitively).
        OutputError: ``out_dir`` exists and is not a folder.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"--out-dir {out_dir} is a file, not a folder; give a folder for the videos")
    planned: dict[Path, Path] = {}
    by_name: dict[str, Path] = {}
    for image in images:
        output = out_dir / f"{image.stem}{suffix}"
        other = by_name.setdefault(output.name.casefold(), image)
        if other is not image:
            raise InputError(f"characters {other} and {image} would both write {output}; rename one of them")
        planned[image] = output
    return planned


def write_summary(path: Path, summary: dict[str, dict]) -> None:
    """Write ``summary`` as JSON to ``path`` atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(summary, indent=2), encoding="utf-8")


def run(args: argparse.Namespace) -> int:
    images = character_images(Path(args.characters))
    out_dir = Path(args.out_dir)
    # flags that were not given (None) leave the YAML's values; without a YAML the batch's size applies
    size = args.size if args.size is not None or args.config else DEFAULT_SIZE
    background = {"renderer__options__background": args.background} if args.background else {}
    config = load_config(args.config, renderer=args.renderer, size=size, **background)
    transparent = config.renderer.name == "puppet" and config.renderer.options.get("background") == "transparent"
    planned = plan_outputs(images, out_dir, ".webm" if transparent else ".mp4")
    summary_path = out_dir / "summary.json"
    summary: dict[str, dict] = {}
    with new_folders_removed_on_error(summary_path):  # a batch that fails before any output leaves no folder
        # every output is checked before any work: not an input, not existing (without --overwrite), writable
        # (an image or pose file cannot be a .mp4/.webm/.json output; animate() checks those links again)
        for output in planned.values():
            refuse_overwriting_inputs(output, args.driving)
            check_output_path(output, args.overwrite, alpha=transparent)
        refuse_overwriting_inputs(summary_path, args.driving, name="summary")
        check_output_path(summary_path, args.overwrite, video=False)

        with Animator(config) as animator:
            driving = animator.load_driving(args.driving, end=args.end)  # extracted once for every character
            try:
                for image, output in planned.items():
                    pose_file = image.with_suffix(".pose.json")
                    try:
                        path = animator.animate(image, driving, output, overwrite=args.overwrite,
                                                reference_pose=pose_file if pose_file.is_file() else None)
                        summary[image.name] = {"output": str(path), **animator.last_stats.to_dict()}
                    except PosedriveError as exc:  # one bad character must not stop the batch
                        hint = (f" (in this batch: put its pose in {pose_file.name} next to it)"
                                if isinstance(exc, NoPersonError) and not pose_file.is_file() else "")
                        log.warning("skipped %s: %s%s", image.name, exc, hint)
                        summary[image.name] = {"error": str(exc)}
                        if args.overwrite and (output.is_file() or output.is_symlink()):  # video of a run before
                            output.unlink()
                            log.warning("removed %s of an earlier run", output)
            finally:  # Ctrl-C or a crash included: the summary lists what was done
                write_summary(summary_path, summary)
    done = sum("output" in v for v in summary.values())
    log.info("%d of %d characters rendered; summary in %s", done, len(images), summary_path)
    if done < len(images):
        failed = [name for name, v in summary.items() if "error" in v]
        log.error("%d character(s) failed: %s", len(failed), ", ".join(failed))
        return EXIT_SOME_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
