"""Numbered PNG frames as an output (``shots/dance_%05d.png``), for compositing and editing tools.

An image sequence keeps every frame lossless and, for RGBA frames, their transparency; it carries no audio.
Like :class:`pose.video.VideoWriter`, the writer is atomic: the frames go to a temporary folder beside the
destination and are moved in only when all are written, so an error or Ctrl-C leaves no partial sequence.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np

from .errors import OutputError
from .io import AtomicWriter, ensure_output_folder, remove_numbered_files

logger = logging.getLogger(__name__)

#: A frame-number field in printf style (``%d``, ``%05d``) in the file name.
_FIELD = re.compile(r"%(0?\d*)d")
#: PNG compression: level 1 writes a 512x768 frame in a few milliseconds, files about 10 % larger than 9.
PNG_COMPRESSION = 1


def is_image_sequence(path: str | os.PathLike) -> bool:
    """Whether ``path`` names numbered PNG frames: a ``.png`` file name with a ``%d``-style field."""
    p = Path(path)
    return p.suffix.lower() == ".png" and _FIELD.search(p.name) is not None


def frame_path(pattern: str | os.PathLike, index: int) -> Path:
    """The file of frame ``index`` of ``pattern`` (``shots/dance_%05d.png``, 7 -> ``shots/dance_00007.png``)."""
    p = Path(pattern)
    return p.parent / (p.name % index)


def check_sequence_output(pattern: str | os.PathLike, overwrite: bool = False) -> Path:
    """Check that the frames of ``pattern`` may be written (before any work), creating its folder if needed.

    Raises:
        OutputError: the name has no single ``%d`` field, its first frame exists (without ``overwrite``),
            or the folder cannot be created or written.
    """
    p = Path(os.path.expanduser(str(pattern)))
    if len(_FIELD.findall(p.name)) != 1 or "%" in _FIELD.sub("", p.name) or "%" in str(p.parent):
        raise OutputError(f"image sequence {p} needs exactly one frame-number field such as %05d in its file name "
                          "(e.g. shots/dance_%05d.png)")
    if not overwrite:
        existing = sequence_frames(p)
        if existing:
            raise OutputError(f"{existing[0]} already exists ({len(existing)} frame(s) of this name); pass --overwrite "
                              "(overwrite=True) to replace the sequence")
    ensure_output_folder(p)
    return p


def sequence_frames(pattern: str | os.PathLike) -> list[Path]:
    """The existing files that ``pattern`` names, whatever their numbers (``f_%03d.png``: ``f_000.png``,
    ``f_017.png``, ``f_1000.png``...), sorted by name."""
    p = Path(pattern)
    folder = p.parent if str(p.parent) else Path(".")
    name = frame_name_regex(p.name)
    if name is None or not folder.is_dir():
        return []
    return sorted(f for f in folder.iterdir() if name.fullmatch(f.name) and f.is_file())


def frame_name_regex(pattern_name: str) -> re.Pattern | None:
    """The file names of any frame of the pattern's file name ``pattern_name`` (``f_%03d.png``: ``f_000.png``,
    ``f_1000.png``, not ``f_03.png``), or ``None`` when it has no frame-number field."""
    match = _FIELD.search(pattern_name)
    if match is None:
        return None
    width = int(match.group(1) or 0)
    digits = rf"\d{{{width},}}" if width > 1 else r"\d+"
    return re.compile(re.escape(pattern_name[:match.start()]) + digits + re.escape(pattern_name[match.end():]))


class ImageSequenceWriter(AtomicWriter):
    """Write frames as numbered PNG files (RGB, or RGBA with ``alpha``), atomically.

    Same interface as :class:`pose.video.VideoWriter` (``write``, ``close``, ``abort``, context manager).

    Args:
        pattern: output names with one ``%d``-style field, e.g. ``shots/dance_%05d.png``; frames are
            numbered from 0.
        fps: frame rate (recorded in the log only: PNG files have none).
        size: ``(width, height)`` of the frames.
        overwrite: replace an existing sequence of the same names (default: refuse); the frames of a
            longer earlier sequence beyond this one's end are deleted once this one is in place.
        alpha: frames are ``(H, W, 4)`` RGBA and the PNGs keep the transparency.
    """

    def __init__(self, pattern: str | os.PathLike, fps: float, size: tuple[int, int], *, overwrite: bool = False,
                 alpha: bool = False) -> None:
        self.path = check_sequence_output(pattern, overwrite)
        self.fps = float(fps)
        self.width, self.height = (int(v) for v in size)
        self.alpha = bool(alpha)
        self.overwrite = overwrite
        self.frames_written = 0
        self._done = False
        folder = self.path.parent if str(self.path.parent) else Path(".")
        self._work = Path(tempfile.mkdtemp(prefix=f".{self.path.stem.split('%')[0]}", suffix=".partial", dir=folder))

    def write(self, frame: np.ndarray) -> None:
        """Append one ``(H, W, 3)`` RGB (or, with ``alpha``, ``(H, W, 4)`` RGBA) uint8 frame."""
        if self._done:
            raise OutputError(f"image sequence {self.path} is already closed; open a new writer")
        channels = 4 if self.alpha else 3
        frame = np.asarray(frame)
        if frame.shape != (self.height, self.width, channels) or frame.dtype != np.uint8:
            raise OutputError(f"frame {frame.shape} {frame.dtype} written to {self.path}, which was opened for "
                              f"{self.width}x{self.height} with {channels} channels")
        code = cv2.COLOR_RGBA2BGRA if self.alpha else cv2.COLOR_RGB2BGR
        name = self._work / frame_path(self.path, self.frames_written).name
        if not cv2.imwrite(str(name), cv2.cvtColor(frame, code), [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION]):
            self.abort()
            raise OutputError(f"could not write {name.name} for {self.path}; check the free disk space")
        self.frames_written += 1

    def close(self) -> Path:
        """Move the finished frames into place; returns the pattern."""
        if self._done:
            return self.path
        if self.frames_written == 0:
            self.abort()
            raise OutputError(f"no frames were written to {self.path}; nothing was saved")
        self._done = True
        moved: list[Path] = []
        try:
            for i in range(self.frames_written):
                target = frame_path(self.path, i)
                if target.exists() and not self.overwrite:
                    for done in moved:  # all or nothing: the frames moved in so far go again
                        done.unlink(missing_ok=True)
                    raise OutputError(f"{target} appeared while rendering; pass --overwrite or choose another name")
                os.replace(self._work / target.name, target)
                moved.append(target)
            stale = 0
            if self.overwrite:  # the frames of an earlier, longer sequence past this one's end
                stale = remove_numbered_files(lambda i: frame_path(self.path, i), self.frames_written)
        finally:
            shutil.rmtree(self._work, ignore_errors=True)
        if stale:
            logger.info("removed %d frames of an earlier, longer sequence %s", stale, self.path)
        logger.info("wrote %s (%d frames, %dx%d%s)", self.path, self.frames_written, self.width, self.height,
                    ", with alpha" if self.alpha else "")
        return self.path

    def abort(self) -> None:
        """Delete the frames written so far; the destination is left untouched."""
        if self._done:
            return
        self._done = True
        shutil.rmtree(self._work, ignore_errors=True)

    def __del__(self) -> None:  # never leave a partial sequence behind (even at interpreter shutdown)
        with contextlib.suppress(Exception):
            self.abort()
