"""``posedrive animate REFERENCE DRIVING -o OUT.mp4``: the whole pipeline from the command line."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

from pose.retarget import ROOT_MOTIONS

from .cli_args import frame_index, positive_float, size_arg, window_arg

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``animate`` subcommand."""
    p = subparsers.add_parser(
        "animate",
        help="animate a character image with the motion of a driving video",
        description="Animate REFERENCE (a character image) with the motion of DRIVING (a video, a skeleton "
                    "video *_kps.mp4, or a pose file .json/.npz). The output keeps the driving video's audio "
                    "(not in .gif or PNG frames). Outputs are at most 4096 px a side and 240 fps; an output that "
                    "is one of the inputs is refused even with --overwrite.",
    )
    p.add_argument("reference", metavar="REFERENCE",
                   help="character image (PNG, JPEG, WebP, ...); an RGBA cut-out's transparency is used as the mask")
    p.add_argument("driving", metavar="DRIVING", help="driving video, folder of frames, skeleton video (*_kps.mp4), pose file "
                                                        "(.json/.npz) or folder of OpenPose JSON files")
    p.add_argument("-o", "--output", required=True, help="video to write: .mp4 (H.264), .mov, .mkv, .avi, .webm (VP9) or "
                                                           ".gif; or numbered PNG frames such as shots/dance_%%05d.png")
    p.add_argument("--size", type=size_arg, help="output WxH (default: the reference's aspect at 768 px height)")
    p.add_argument("--fps", type=positive_float, help="output frame rate (default: the driving video's)")
    p.add_argument("--start", type=frame_index, help="first driving frame (default 0)")
    p.add_argument("--end", type=frame_index, help="stop before this driving frame (default: the last)")
    p.add_argument("--renderer", help="renderer: puppet (CPU, default) or diffusion (GPU, needs --weights)")
    p.add_argument("--config", metavar="YAML", help="Animator config (see configs/default.yaml)")
    p.add_argument("--no-smoothing", action="store_true", help="keep raw driving detections (no One-Euro filter)")
    p.add_argument("--window", type=window_arg, metavar="X0,Y0,X1,Y1",
                   help="detect the dancer only inside this part of the driving frames (fractions, e.g. 0.5,0,1,1 "
                        "for the right half): picks one person when several dance")
    p.add_argument("--root-motion", choices=ROOT_MOTIONS,
                   help="how far the character travels when the dancer moves about: auto (default: like the "
                        "dancer, kept on the canvas), body, frame, or none (dances in place)")
    p.add_argument("--reference-pose", metavar="FILE", help="pose file of the character, used instead of detecting it (posedrive's .json/.npz, "
                        "or an OpenPose JSON such as an OpenPose editor's export)")
    p.add_argument("--mask", metavar="FILE", help="character mask image, reference size (white = character)")
    p.add_argument("--background", metavar="B",
                   help="puppet renderer: draw the character over B instead of the reference's own background: "
                        "a colour (green, blue, white, black, grey, #rrggbb; a green screen for compositing), "
                        "a picture file, or transparent (RGBA, for a .webm, .mov or PNG-frames output; an .mp4 "
                        "is refused)")
    p.add_argument("--preview", action="store_true", help="write reference | skeleton | result side by side")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--weights", metavar="DIR", help="weights folder of the diffusion renderer")
    p.add_argument("--stats", metavar="JSON", help="also write the run statistics (frames held, fps, ...) here")
    p.set_defaults(func=run_animate)


def run_animate(args: argparse.Namespace) -> int:
    """Handler of ``posedrive animate``; errors propagate as :class:`~pose.errors.PosedriveError`."""
    from pose.errors import InputError

    from .api import Animator
    from .writers import new_folders_removed_on_error, refuse_overwriting_inputs

    if args.start is not None and args.end is not None and args.end <= args.start:
        raise InputError(f"--end {args.end} must be greater than --start {args.start}")
    overrides = {
        "renderer": args.renderer,
        "smoothing": False if args.no_smoothing else None,
        "weights": args.weights,
        "retarget__options__root_motion": args.root_motion,
        "pose__detector_options__crop": args.window,
        "renderer__options__background": args.background,
    }
    progress = getattr(args, "progress", True)
    with _flags_named_in_errors(args):
        if args.background is not None:  # the renderer it is for, before its options are checked against another's
            from .config import load_config

            name = load_config(args.config, **{k: v for k, v in overrides.items() if "background" not in k}).renderer.name
            if name != "puppet":
                raise InputError(f"--background works with the puppet renderer, not '{name}' (a diffusion model "
                                 "draws its own background); drop --background or use --renderer puppet")
        animator = Animator.from_config(args.config, **overrides)
    if args.weights is not None and animator.config.renderer.name != "diffusion":
        log.warning("--weights %s is for the diffusion renderer; the %s renderer needs none (add --renderer "
                    "diffusion to use them)", args.weights, animator.config.renderer.name)
    with animator:
        # the config file and a background picture (from --background or the config) are inputs too
        inputs = (args.reference, args.driving, args.mask, args.reference_pose, *animator.config.input_files())
        refuse_overwriting_inputs(args.output, *inputs)  # even with --overwrite
        with new_folders_removed_on_error(args.stats):  # a failed run leaves no new empty folder for --stats
            if args.stats:
                _check_stats_path(args.stats, args.output, inputs, args.overwrite)  # before any work
            path = animator.animate(
                args.reference, args.driving, args.output, size=args.size, fps=args.fps, start=args.start,
                end=args.end, reference_pose=args.reference_pose, mask=args.mask,
                preview=True if args.preview else None, overwrite=args.overwrite, progress=progress,
            )
            stats = animator.last_stats
            if args.stats:
                _write_stats(args.stats, stats.to_dict(), path, args.overwrite)
    log.info(
        "wrote %s: %d frames %dx%d at %g fps (%d driving frames without a person held, %d interpolated), %.2f fps",
        path, stats.frames, stats.size[0], stats.size[1], stats.fps, stats.held, stats.interpolated, stats.render_fps,
    )
    return 0


def _check_stats_path(stats: str, output: str, inputs: tuple, overwrite: bool) -> None:
    """Refuse a ``--stats`` file that is an input or the video output, or that exists without ``--overwrite``;
    create its folder. Raises OutputError."""
    from pose.errors import OutputError
    from pose.image_sequence import is_image_sequence

    from .writers import check_output_path, refuse_overwriting_inputs, same_file

    refuse_overwriting_inputs(stats, *inputs, name="--stats")
    if is_image_sequence(output):  # any frame number the sequence may write
        pattern, name = Path(os.path.expanduser(output)), Path(os.path.expanduser(stats))
        clash = same_file(pattern.parent, name.parent) and _frame_name(pattern.name, name.name)
    else:
        clash = same_file(stats, output)
    if clash:
        raise OutputError(f"--stats {stats} is the video output {output} (-o); give the statistics another file "
                          f"name such as {Path(output).with_name('stats.json')}")
    if Path(os.path.expanduser(stats)).is_dir():
        raise OutputError(f"--stats {stats} is a folder; give a file name such as {Path(stats) / 'stats.json'}")
    try:
        check_output_path(stats, overwrite, video=False)
    except OutputError as exc:
        raise OutputError(f"--stats: {exc}") from exc


def _frame_name(pattern: str, name: str) -> bool:
    """True when the file name ``name`` is one frame of the numbered-frames ``pattern`` (``f_%05d.png``)."""
    from pose.image_sequence import frame_name_regex

    frames = frame_name_regex(pattern)
    return frames is not None and frames.fullmatch(name) is not None


#: config fields that `animate`'s flags set, for errors that name the flag rather than the field
_FLAG_FIELDS = {
    "renderer.name": ("--renderer", "renderer"),
    "renderer.options.background": ("--background", "background"),
    "retarget.options.root_motion": ("--root-motion", "root_motion"),
    "pose.detector_options.crop": ("--window", "window"),
}


@contextlib.contextmanager
def _flags_named_in_errors(args: argparse.Namespace) -> Iterator[None]:
    """A config error about a field a flag set names the flag (``--background chartreuse: ...``), not the
    keyword override it became (``keyword overrides (renderer__options__background) on package defaults``)."""
    from pose.errors import ConfigError

    try:
        yield
    except ConfigError as exc:
        found = re.match(r"keyword overrides? .*?: config field '([^']+)' (.*)$", str(exc), re.DOTALL)
        flag = _FLAG_FIELDS.get(found.group(1)) if found else None
        if flag is None or getattr(args, flag[1], None) is None:
            raise
        raise ConfigError(f"{flag[0]} {getattr(args, flag[1])}: {found.group(2)}") from exc


def _write_stats(stats: str, data: dict, video: Path, overwrite: bool) -> None:
    """Write the run statistics atomically; on failure remove the video just written (nothing partial)."""
    from pose.errors import OutputError
    from pose.image_sequence import is_image_sequence, sequence_frames
    from pose.io import atomic_output

    try:
        with atomic_output(stats, overwrite=overwrite) as tmp:
            tmp.write_text(json.dumps(data, indent=2))
    except BaseException as exc:
        for f in sequence_frames(video) if is_image_sequence(video) else [Path(video)]:
            f.unlink(missing_ok=True)
        cause = exc.__cause__ if isinstance(exc, OutputError) else exc  # atomic_output words a failed write
        if isinstance(cause, OSError):
            raise OutputError(f"cannot write --stats {stats} ({cause.strerror or cause}); the video was removed, "
                              "choose another --stats path") from cause
        raise
