"""``posedrive pose ...``: extract, retarget, render and inspect whole-body skeleton sequences."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
from pathlib import Path

from pose.errors import InputError, NoPersonError
from pose.outliers import DEFAULT_MAX_JUMP
from pose.retarget import ROOT_MOTIONS

from .cli_args import frame_index, positive_int, size_arg, window_arg

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``pose`` and its subcommands."""
    pose = subparsers.add_parser("pose", help="driving video -> whole-body skeleton sequence (and back)")
    sub = pose.add_subparsers(dest="pose_command", metavar="ACTION")
    sub.required = True

    p = sub.add_parser("extract", help="detect whole-body poses in a video, frame folder or skeleton video")
    p.add_argument("video", help="video file, folder of frames, or skeleton video (*_kps.mp4)")
    p.add_argument("-o", "--output", required=True, help="pose file to write (.json or .npz)")
    p.add_argument("--render", metavar="VIDEO", help="also render the skeleton to this video (or PNG frames: skel/%%05d.png)")
    p.add_argument("--openpose", metavar="DIR", help="also write one OpenPose JSON file per frame into this folder "
                                                     "(BODY_25, face, hands; for ControlNet tools)")
    p.add_argument("--style", default="openpose", help="skeleton style for --render (default: openpose)")
    p.add_argument("--detector", default="mediapipe", help="pose detector: mediapipe (default), openpose, skeleton")
    p.add_argument("--annotator-dir", help="local folder with the openpose annotator weights (detector openpose)")
    p.add_argument("--no-smoothing", action="store_true", help="keep raw detections (no One-Euro filter)")
    p.add_argument("--max-gap", type=frame_index, default=8, help="longest gap (frames) to interpolate; longer gaps are held")
    p.add_argument("--start", type=frame_index, default=0, help="first frame (default 0)")
    p.add_argument("--end", type=frame_index, default=None, help="stop before this frame")
    p.add_argument("--step", type=positive_int, default=1, help="use every STEP-th frame")
    p.add_argument("--detect-every", default="auto", type=_detect_every,
                   help="run the detector on every Nth frame and interpolate between (default auto: ~8 "
                        "detections per second of video; 1 = every frame)")
    p.add_argument("--window", type=window_arg, metavar="X0,Y0,X1,Y1",
                   help="detect only inside this part of the frames (fractions, e.g. 0.5,0,1,1 for the right half): "
                        "picks one person when several dance")
    p.add_argument("--max-scale-jump", type=_scale_jump, default=DEFAULT_MAX_JUMP, metavar="X",
                   help="drop a detection whose body is over X times larger or smaller than the detections within "
                        f"1 s around it (a half-hidden person's collapsed skeleton); 0 keeps all (default {DEFAULT_MAX_JUMP})")
    p.add_argument("--no-follow-identity", dest="follow_identity", action="store_false",
                   help="do not check that the detections keep looking like the person of the first frames (by "
                        "default, when someone crossing in front takes the tracker, the first person is found again)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(func=run_extract)

    p = sub.add_parser("retarget", help="retarget a pose sequence to a character's body proportions")
    p.add_argument("poses", help="driving pose file (.json/.npz) or folder of OpenPose JSON files")
    p.add_argument("--reference", required=True, help="character image whose body the poses are fitted to")
    p.add_argument("--reference-pose", metavar="FILE", help="pose file to use instead of detecting the character "
                                                              "(posedrive's, or an OpenPose JSON)")
    p.add_argument("-o", "--output", required=True, help="retargeted pose file (.json or .npz)")
    p.add_argument("--root-motion", choices=ROOT_MOTIONS, default="auto",
                   help="how far the body travels when the dancer moves about: auto (default: like the dancer, "
                        "kept on the canvas), body, frame, or none (in place)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=run_retarget)

    p = sub.add_parser("render", help="render a pose sequence as a skeleton video")
    p.add_argument("poses", help="pose file (.json/.npz) or folder of OpenPose JSON files")
    p.add_argument("-o", "--output", required=True,
                   help="video to write (.mp4, .webm, ...) or numbered PNG frames (skel/%%05d.png, for ControlNet)")
    p.add_argument("--style", default="openpose", help="drawing convention: openpose (default), musepose, ...")
    p.add_argument("--size", type=size_arg, help="output size WxH (default: the pose file's size)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=run_render)

    p = sub.add_parser("show", help="summarise a pose file: frames, fps, detection rate, gaps")
    p.add_argument("poses", help="pose file (.json/.npz), OpenPose JSON file, or folder of OpenPose JSON files")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run_show)


def _scale_jump(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if value == 0:
        return None
    if not value > 1:
        raise argparse.ArgumentTypeError(f"expected 0 (off) or a number > 1, got {text!r}")
    return value


def _detect_every(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a whole number >= 1, got {text!r}") from None


def _check_not_an_input(output: str | None, inputs: list[str | None], option: str) -> None:
    """Refuse an output that is one of the command's inputs (even with --overwrite: it would destroy it).

    A folder output (``--openpose DIR``, numbered PNG frames) must not be an input folder either: its files
    would replace, or be read as, the input's."""
    from pose.errors import OutputError
    from pose.image_sequence import is_image_sequence

    from .writers import same_file

    if output is None:
        return
    targets = [output]
    if is_image_sequence(output):  # the frames land in the pattern's folder
        targets = [Path(os.path.expanduser(output)).parent]
    for given in inputs:
        if given is None:
            continue
        if any(same_file(t, given) for t in targets):
            raise OutputError(f"{option} {output} would replace the input {given}, even with --overwrite; "
                              "choose another output name")


def _check_pose_output(path: str, overwrite: bool) -> None:
    """A pose file (``-o``) that :func:`pose.io.save_sequence` can write (checked before any work)."""
    from pose.errors import OutputError

    from .writers import check_output_path

    if Path(path).suffix.lower() not in (".json", ".npz"):
        raise OutputError(f"cannot save poses to {path}: use a .json or .npz file name")
    check_output_path(path, overwrite, video=False)


def _check_skeleton_output(path: str, style: str, overwrite: bool) -> None:
    """A skeleton video (known format) or PNG frames, and a known style (checked before any work)."""
    from pose.render import get_style

    from .writers import check_output_path

    get_style(style)
    check_output_path(path, overwrite, video=True)


def _output_files(path: str | None, frames: int) -> list[Path]:
    """The files an output ``path`` of ``frames`` frames consists of (one per frame for a PNG sequence)."""
    from pose.image_sequence import frame_path, is_image_sequence

    if not path:
        return []
    return [frame_path(path, i) for i in range(frames)] if is_image_sequence(path) else [Path(path)]


def _file_state(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _remove_new_files(before: dict[Path, tuple | None]) -> None:
    """Delete the files of ``before`` (path -> :func:`_file_state` before the run) that this run wrote, even
    those moved into place just before a Ctrl-C (no partial result is left; untouched files stay)."""
    removed = 0
    for path, state in before.items():
        now = _file_state(path)
        if now is not None and now != state:
            with contextlib.suppress(OSError):
                path.unlink()
                removed += 1
    if removed:
        log.info("removed the %d output file(s) written before the run stopped", removed)


def skeleton_size(seq, size: tuple[int, int] | None, label: str) -> tuple[int, int]:
    """The size to draw ``seq`` at: ``size``, or its canvas shrunk to fit :data:`~animate.config.MAX_OUTPUT_SIDE`
    (an 8K video's poses; a pose file may state up to 65536 px). Raises OutputError for a rate above
    :data:`~animate.config.MAX_FPS`; ``label`` names the poses' file."""
    from pose.errors import OutputError

    from .config import MAX_FPS, MAX_OUTPUT_SIDE

    if seq.fps > MAX_FPS:
        raise OutputError(f"{label} runs at {seq.fps:g} fps, above the {MAX_FPS:g} fps a skeleton video may have; "
                          "extract the poses again with --step to lower the rate")
    if size is not None:
        return size
    scale = min(1.0, MAX_OUTPUT_SIDE / max(seq.width, seq.height))
    if scale < 1.0:
        fitted = max(2, int(seq.width * scale)), max(2, int(seq.height * scale))
        log.info("%s is %dx%d; drawn at %dx%d (outputs are at most %d px a side; --size sets another size)",
                 label, seq.width, seq.height, *fitted, MAX_OUTPUT_SIDE)
        return fitted
    return seq.width, seq.height


def write_skeleton_video(seq, path: str, style: str, size, overwrite: bool, progress: bool,
                         label: str = "the poses") -> None:
    """Render ``seq`` with ``style`` into the video ``path``, or numbered PNG frames (``skel/%05d.png``),
    atomically, at ``size`` or :func:`skeleton_size`'s."""
    from tqdm import tqdm

    from pose.errors import OutputError
    from pose.image_sequence import ImageSequenceWriter, is_image_sequence
    from pose.render import render_sequence
    from pose.video import VideoWriter

    width, height = skeleton_size(seq, size, label)
    sequence = is_image_sequence(path)
    if not sequence:  # yuv420p video needs even sides
        if width < 2 or height < 2:
            raise OutputError(f"{label} has a {width}x{height} canvas, too small for a video; pass --size WxH")
        width, height = width - width % 2, height - height % 2
    writer_cls = ImageSequenceWriter if sequence else VideoWriter
    with writer_cls(path, seq.fps, (width, height), overwrite=overwrite) as writer:
        frames = render_sequence(seq, style=style, size=(width, height))
        for frame in tqdm(frames, total=len(seq), desc="render", unit="frame", disable=not progress):
            writer.write(frame)


def _check_distinct_outputs(output: str, render: str | None, openpose: str | None) -> None:
    """``-o``, ``--render`` and ``--openpose`` name three different places (else the second would replace the
    first, or fail after the detection). Raises OutputError."""
    from pose.errors import OutputError

    from .writers import same_file

    named = [("-o", output), ("--render", render), ("--openpose", openpose)]
    named = [(flag, path) for flag, path in named if path]
    for i, (flag_a, a) in enumerate(named):
        for flag_b, b in named[i + 1:]:
            if same_file(a, b):
                raise OutputError(f"{flag_a} and {flag_b} both name {b}; give each output its own name")


def run_extract(args: argparse.Namespace) -> int:
    from pose.extract import extract_poses
    from pose.io import save_sequence
    from pose.openpose_json import check_openpose_output, save_openpose

    if args.step < 1 or args.start < 0 or (args.end is not None and args.end <= args.start):
        raise InputError(f"invalid frame range --start {args.start} --end {args.end} --step {args.step}")
    # every output is checked before the detection, which can take minutes
    _check_not_an_input(args.output, [args.video], "-o")
    _check_not_an_input(args.render, [args.video], "--render")
    _check_not_an_input(args.openpose, [args.video], "--openpose")
    _check_distinct_outputs(args.output, args.render, args.openpose)
    _check_pose_output(args.output, args.overwrite)
    if args.render:
        _check_skeleton_output(args.render, args.style, args.overwrite)
    else:
        from pose.render import get_style

        get_style(args.style)
    stem = Path(args.video).stem
    if args.openpose:
        check_openpose_output(args.openpose, stem, args.overwrite)
    options = {"annotator_dir": args.annotator_dir} if args.annotator_dir else {}
    if args.window:
        options["crop"] = args.window
    seq = extract_poses(
        args.video, detector=args.detector, smoothing=not args.no_smoothing, max_interp_gap=args.max_gap,
        start=args.start, end=args.end, step=args.step, progress=args.progress, detector_options=options,
        detect_every=args.detect_every, max_scale_jump=args.max_scale_jump, follow_identity=args.follow_identity,
    )
    # the outputs as they were: a Ctrl-C right after a file was moved into place takes it away too
    before = {f: _file_state(f) for f in [*_output_files(args.output, len(seq)), *_output_files(args.render, len(seq))]}
    try:
        save_sequence(seq, args.output, overwrite=args.overwrite)
        log.info("wrote %s: %d frames, detection rate %.1f%%", args.output, len(seq), 100 * seq.detection_rate())
        if args.render:
            write_skeleton_video(seq, args.render, args.style, None, args.overwrite, args.progress,
                                 f"the poses of {args.video}")
            log.info("wrote %s", args.render)
        if args.openpose:  # the last step: it takes its own files back when it fails
            files = save_openpose(seq, args.openpose, stem, overwrite=args.overwrite)
            log.info("wrote %d OpenPose files to %s", len(files), args.openpose)
    except BaseException:  # Ctrl-C included: the outputs written so far go too
        _remove_new_files(before)
        raise
    return 0


def run_retarget(args: argparse.Namespace) -> int:
    from pose.extract import detect_image
    from pose.io import load_pose_frame, load_sequence, save_sequence
    from pose.retarget import retarget

    from .writers import same_file

    inputs = [args.poses, args.reference, args.reference_pose]
    _check_not_an_input(args.output, inputs, "-o")
    if (Path(args.poses).is_dir() and Path(args.output).suffix.lower() == ".json"
            and same_file(Path(os.path.expanduser(args.output)).parent, args.poses)):
        from pose.errors import OutputError

        raise OutputError(f"-o {args.output} is inside the input folder {args.poses}, where it would be read as "
                          "one of its OpenPose files; choose another output folder")
    _check_pose_output(args.output, args.overwrite)
    driving = load_sequence(args.poses)
    if args.reference_pose:
        from pose.video import read_image

        # the image's size places an OpenPose file that states no canvas size
        size = tuple(read_image(args.reference).shape[1::-1]) if Path(args.reference).is_file() else None
        ref_pose = load_pose_frame(args.reference_pose, size=size)
        if size is not None and (ref_pose.width, ref_pose.height) != size:
            log.warning("reference pose %s is for a %dx%d image but the reference %s is %dx%d; scaling it to fit",
                        args.reference_pose, ref_pose.width, ref_pose.height, args.reference, *size)
            ref_pose = ref_pose.resized(*size)
    else:
        ref_pose = detect_image(args.reference)
    try:
        out = retarget(driving, ref_pose, root_motion=args.root_motion)
    except NoPersonError as exc:  # the driving poses have no body: name their file
        raise NoPersonError(f"{args.poses}: {exc}") from None
    out.meta["reference"] = str(args.reference)
    save_sequence(out, args.output, overwrite=args.overwrite)
    log.info("wrote %s (%d frames on a %dx%d canvas)", args.output, len(out), out.width, out.height)
    return 0


def run_render(args: argparse.Namespace) -> int:
    from pose.io import load_sequence

    _check_not_an_input(args.output, [args.poses], "-o")
    _check_skeleton_output(args.output, args.style, args.overwrite)
    seq = load_sequence(args.poses)
    write_skeleton_video(seq, args.output, args.style, args.size, args.overwrite, args.progress, args.poses)
    log.info("wrote %s", args.output)
    return 0


def run_show(args: argparse.Namespace) -> int:
    from pose.io import load_sequence

    summary = load_sequence(args.poses).summary()
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    gaps = summary["gaps"]
    counts = ", ".join(f"{k} {v}" for k, v in summary["status_counts"].items() if v)
    lines = [
        f"file:            {args.poses}",
        f"frames:          {summary['frames']} at {summary['fps']:g} fps ({summary['duration_s']:.2f} s)",
        f"canvas:          {summary['size'][0]}x{summary['size'][1]} px",
        f"detection rate:  {100 * summary['detection_rate']:.1f}% ({counts})",
        f"mean confidence: {summary['mean_confidence']:.3f}",
        f"gaps:            {len(gaps)}" + (": " + ", ".join(f"{a}-{b - 1}" for a, b in gaps[:10]) if gaps else ""),
    ]
    meta = summary["meta"]
    for key in ("source", "detector", "reference"):
        if key in meta:
            lines.append(f"{key + ':':<17}{meta[key]}")
    det_opts = meta.get("detector_options") or {}
    if det_opts.get("crop"):
        crop = det_opts["crop"]
        why = "a small person found by a search" if meta.get("person_search") else "given with --window"
        lines.append(f"{'window:':<17}x {crop[0]:.2f}-{crop[2]:.2f}, y {crop[1]:.2f}-{crop[3]:.2f} of the frame "
                     f"({why}, detected inside it)")
    elif det_opts.get("follow"):
        lines.append(f"{'window:':<17}following a small person from keyframe to keyframe")
    rejected = meta.get("rejected_frames") or []
    if rejected:
        shown = ", ".join(str(t) for t in rejected[:10]) + (", ..." if len(rejected) > 10 else "")
        lines.append(f"{'rejected:':<17}{len(rejected)} implausible detections (frames {shown})")
    for run in meta.get("identity_runs") or []:
        first, last = run["frames"]
        if run["kept"]:
            lines.append(f"{'look changed:':<17}frames {first}-{last} look unlike the first frames; nobody more like "
                         "them was found, kept")
        elif run.get("other_seen"):
            lines.append(f"{'person switch:':<17}frames {first}-{last}: the tracker took someone else, seen apart after; "
                         f"the first person was hidden there ({run['hidden']} detections)")
        else:
            lines.append(f"{'person switch:':<17}frames {first}-{last}: the tracker took someone else; the first "
                         f"person was found again in {run['recovered']} detections, {run['hidden']} hidden")
    print("\n".join(lines))
    return 0
