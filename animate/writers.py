"""Writing output videos: streamed, atomic, with the driving video's audio kept.

:func:`write_video` consumes frames one at a time (memory does not grow with the video's length) and
encodes them with :class:`pose.video.VideoWriter`, which writes a temporary file and renames it into place
only when encoding finished. When ``audio_from`` names a video with an audio track, the silent encode goes
to a temporary file first, then ffmpeg (the binary shipped by ``imageio-ffmpeg``) copies that video stream
unchanged (``-c:v copy``) and muxes the audio, trimmed to the rendered frame range, into a second temporary
file that replaces the first (the writer's ``on_finalize`` hook) before the writer renames it onto the
output. Any exception, ``KeyboardInterrupt`` included, removes every temporary file, so a failed or
interrupted run never leaves a partial video behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pose.errors import InputError, OutputError
from pose.image_sequence import check_sequence_output, is_image_sequence, sequence_frames
from pose.io import ensure_output_folder
from pose.video import ffmpeg_exe, video_format

logger = logging.getLogger(__name__)

#: Bit rate of the muxed audio track (AAC, or Opus in .webm).
AUDIO_BITRATE = "192k"
#: seconds allowed for one ffmpeg mux/probe call before it is treated as failed.
FFMPEG_TIMEOUT_S = 600


def check_output_path(path: str | os.PathLike, overwrite: bool = False, video: bool = True,
                      alpha: bool = False) -> Path:
    """Check that ``path`` may be written, creating its folder if needed.

    Args:
        path: the output file.
        overwrite: allow replacing an existing file.
        video: the file is a video: its suffix must be a known format (:func:`pose.video.video_format`).
        alpha: the video is transparent: its format must keep an alpha channel (``.webm``, ``.mov``).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputError: the file exists and ``overwrite`` is False, the path is a folder, a video's format is
            unknown, or its folder cannot be created or written.
    """
    if video and is_image_sequence(path):  # numbered PNG frames: lossless, alpha kept, no audio
        return check_sequence_output(path, overwrite)
    path = Path(os.path.expanduser(str(path)))
    if path.is_dir() and video:
        raise OutputError(f"output {path} is a folder; give a file name such as {path / 'out.mp4'}")
    if path.is_dir():  # a report, a contact sheet: their names are fixed
        raise OutputError(f"{path} is a folder where this file must be written; move the folder away or write "
                          "elsewhere")
    if (path.exists() or path.is_symlink()) and not overwrite:  # a dangling link too: it is the user's
        raise OutputError(f"{path} already exists; pass --overwrite (overwrite=True) to replace it")
    if video:
        video_format(path, alpha)  # an unknown container fails now, not after the rendering
    ensure_output_folder(path)
    return path


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when the paths ``a`` and ``b`` name one file: equal once resolved (``~`` expanded, links
    followed; either may not exist yet), or :func:`os.path.samefile` when both exist (hard links, a
    case-insensitive file system)."""
    pa, pb = (Path(os.path.expanduser(str(p))) for p in (a, b))
    try:
        if pa.resolve() == pb.resolve():
            return True
    except (OSError, RuntimeError):  # a symlink loop: compare what exists below
        pass
    try:
        return pa.exists() and pb.exists() and os.path.samefile(pa, pb)
    except OSError:
        return False


def refuse_overwriting_inputs(output: str | os.PathLike, *inputs: object, name: str = "output") -> None:
    """Refuse, whatever ``overwrite`` says, to write ``output`` over one of the run's ``inputs``.

    Args:
        output: the file to write; numbered PNG frames (``shots/f_%05d.png``): each existing frame of the
            pattern, which the writer would replace or remove.
        inputs: what the run reads; items that are not paths (``None``, arrays, images, pose sequences) are
            skipped. An input folder (of frames or of OpenPose JSON files) is refused as ``output``'s folder:
            a file written there would become part of that input.
        name: how the message calls ``output`` (``"output"``, ``"--stats file"``).

    Raises:
        OutputError: ``output`` is one of ``inputs`` (same path, a link to it, or a hard link).
    """
    out = Path(os.path.expanduser(str(output)))
    targets = sequence_frames(out) if is_image_sequence(out) else [out]
    for src in inputs:
        if not isinstance(src, (str, os.PathLike)) or not str(src):
            continue
        path = Path(os.path.expanduser(str(src)))
        if path.is_dir():
            if same_file(out.parent, path):
                raise OutputError(f"{name} {output} would be written into the input folder {src}, changing that "
                                  "input; choose a path outside it")
        elif any(same_file(t, path) for t in targets):
            raise OutputError(f"{name} {output} is the input {src}: writing it would destroy that input (even with "
                              f"--overwrite); choose another {name} path")


def missing_folders(*files: str | os.PathLike | None) -> list[Path]:
    """The folders that writing each of ``files`` would create (absent now), deepest first."""
    found: set[Path] = set()
    for f in files:
        if f is None:
            continue
        folder = Path(os.path.expanduser(str(f))).absolute().parent
        while not folder.exists() and folder != folder.parent:
            found.add(folder)
            folder = folder.parent
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


@contextlib.contextmanager
def new_folders_removed_on_error(*files: str | os.PathLike | None) -> Iterator[None]:
    """Remove, when the block fails (Ctrl-C included), the folders it created for ``files`` that are still
    empty: a failed run leaves no new empty output folders behind either."""
    created = missing_folders(*files)
    try:
        yield
    except BaseException:
        for folder in created:  # deepest first; a folder something else was written into stays
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def has_audio(path: str | os.PathLike) -> bool:
    """True when the media file at ``path`` has at least one audio stream (probed with ffmpeg)."""
    return audio_track(path) is not None


def audio_track(path: str | os.PathLike) -> int | None:
    """The audio stream of ``path`` to keep, counted among its audio streams: the one marked default (a film
    with a commentary track, a dance video with a guide track first), else the first; ``None`` without audio."""
    try:
        res = subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-i", str(path)],
            capture_output=True, text=True, timeout=FFMPEG_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.warning("could not probe %s for audio (%s); writing without audio", path, exc)
        return None
    tracks = [line for line in res.stderr.splitlines() if re.search(r"Stream #\d+:\d+.*: Audio:", line)]
    if not tracks:
        return None
    chosen = next((i for i, line in enumerate(tracks) if "(default)" in line), 0)
    if len(tracks) > 1:
        logger.info("%s has %d audio tracks: keeping track %d%s", path, len(tracks), chosen + 1,
                    " (marked default)" if "(default)" in tracks[chosen] else "")
    return chosen


def mux_audio(video: str | os.PathLike, audio_from: str | os.PathLike, output: str | os.PathLike,
              *, start: float = 0.0, duration: float, track: int = 0) -> None:
    """Copy the video stream of ``video`` and the audio of ``audio_from`` into ``output``.

    Args:
        video: a silent (or any) video whose first video stream is copied without re-encoding.
        audio_from: media file whose audio stream ``track`` (counted among its audio streams; default the
            first, see :func:`audio_track`) is used.
        output: file to write (overwritten).
        start: seconds into ``audio_from`` where the audio starts (the first rendered frame's time).
        duration: seconds of audio to keep: the video's duration (audio shorter than that ends early; the
            video is always copied whole).

    Raises:
        OutputError: ffmpeg failed.
    """
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y", "-i", str(video)]
    if start > 0:
        cmd += ["-ss", f"{start:.6f}"]
    cmd += ["-t", f"{duration:.6f}"]
    fmt = video_format(output)
    # no -shortest: audio shorter than the video would cut the copied video where it ends (and the AVI muxer
    # then wrote no audio at all); -t above already ends the audio with the video
    cmd += ["-i", str(audio_from), "-map", "0:v:0", "-map", f"1:a:{int(track)}", "-c:v", "copy",
            "-c:a", fmt.audio or "aac", "-b:a", AUDIO_BITRATE]
    if fmt.faststart:
        cmd += ["-movflags", "+faststart"]
    cmd += [str(output)]
    logger.debug("muxing audio: %s", " ".join(cmd))
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=FFMPEG_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OutputError(f"could not add the audio of {audio_from} to {output} ({exc}); retry with keep_audio off") from exc
    if res.returncode != 0:
        reason = (res.stderr.strip().splitlines() or ["unknown ffmpeg error"])[-1]
        raise OutputError(f"could not add the audio of {audio_from} to {output} ({reason}); retry with keep_audio off")


def _audio_finalizer(audio_from: str | os.PathLike, start: float, fps: float,
                     counter: list[int], track: int = 0) -> Callable[[Path], None]:
    """``VideoWriter.on_finalize`` hook: mux audio into the finished temporary video, in place."""

    def finalize(temp_video: Path) -> None:
        fd, name = tempfile.mkstemp(prefix=f".{temp_video.stem}.", suffix=".audio" + temp_video.suffix,
                                    dir=temp_video.parent)
        os.close(fd)
        muxed = Path(name)
        try:
            mux_audio(temp_video, audio_from, muxed, start=start, duration=counter[0] / fps, track=track)
            os.replace(muxed, temp_video)
        finally:
            muxed.unlink(missing_ok=True)

    return finalize


def write_video(
    frames: Iterable[np.ndarray],
    path: str | os.PathLike,
    fps: float,
    *,
    audio_from: str | os.PathLike | None = None,
    audio_start: float = 0.0,
    overwrite: bool = False,
    progress: bool = False,
    total: int | None = None,
) -> Path:
    """Encode RGB frames to ``path`` atomically, optionally with the audio of another video.

    Args:
        frames: iterable of ``(H, W, 3)`` uint8 RGB frames, all of one size (consumed lazily); ``(H, W, 4)``
            RGBA frames keep their transparency and need a ``.webm`` or ``.mov`` path.
        path: output video file (a suffix of :data:`pose.video.VIDEO_FORMATS`: ``.mp4``, ``.webm``, ``.gif``...),
            or numbered PNG frames (``shots/dance_%05d.png``, :mod:`pose.image_sequence`; no audio); its folder
            is created if missing.
        fps: frame rate of the output.
        audio_from: a video/audio file whose audio track is copied, trimmed to
            ``[audio_start, audio_start + frames / fps)``; ``None`` or a file without audio gives a
            silent video.
        audio_start: seconds into ``audio_from`` matching the first frame (for a trimmed range).
        overwrite: replace an existing ``path``.
        progress: show a tqdm bar.
        total: number of frames, for the progress bar only.

    Returns:
        ``path``.

    Raises:
        OutputError: ``path`` exists and ``overwrite`` is False, cannot be written, or muxing failed.
        InputError: there are no frames, or a frame has another size or dtype than the first.
    """
    from pose.image_sequence import ImageSequenceWriter
    from pose.video import VideoWriter

    if not fps > 0:
        raise InputError(f"fps for {path} must be positive, got {fps}")
    path = check_output_path(path, overwrite)
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise InputError(f"no frames to write to {path}; check the input range (start/end) and the driving video")
    first = np.asarray(first)
    if first.ndim != 3 or first.shape[2] not in (3, 4) or first.dtype != np.uint8:
        raise InputError(f"frames for {path} must be (H, W, 3) uint8 RGB or (H, W, 4) RGBA, got {first.shape} "
                         f"{first.dtype}")
    alpha = first.shape[2] == 4
    sequence = is_image_sequence(path)
    if alpha and not sequence:
        video_format(path, alpha=True)  # transparent frames need a container with an alpha channel

    track = audio_track(audio_from) if audio_from is not None and not sequence else None
    with_audio = track is not None
    if sequence and audio_from is not None:
        logger.info("an image sequence has no audio track; the audio of %s is left out", audio_from)
    if audio_from is not None and not with_audio and not sequence:
        logger.info("%s has no audio track; %s will be silent", audio_from, path.name)
    if with_audio and video_format(path, alpha).audio is None:
        logger.info("%s cannot hold audio; the audio of %s is left out", path.name, audio_from)
        with_audio = False
    counter = [0]
    finalize = _audio_finalizer(audio_from, audio_start, fps, counter, track or 0) if with_audio else None
    h, w = first.shape[:2]
    bar = tqdm(total=total, desc=f"writing {path.name}", unit="frame", disable=not progress, leave=False)
    try:
        writer_cls = ImageSequenceWriter if sequence else VideoWriter
        options = {} if sequence else {"on_finalize": finalize}
        with writer_cls(path, fps, (w, h), overwrite=overwrite, alpha=alpha, **options) as writer:
            for frame in _chain(first, it):
                if frame.shape != first.shape or frame.dtype != np.uint8:
                    raise InputError(
                        f"frame {counter[0]} for {path} is {frame.shape} {frame.dtype}; every frame must be "
                        f"{first.shape} uint8"
                    )
                writer.write(frame)
                counter[0] += 1
                bar.update(1)
    finally:
        bar.close()
    logger.info("wrote %s (%d frames, %.5g fps%s)", path, counter[0], fps,
                f", audio from {audio_from} at {audio_start:.3f} s" if with_audio else "")
    return path


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest
