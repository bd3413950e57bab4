"""Save and load pose sequences: JSON (human-editable) and NPZ (compact), one versioned schema.

JSON layout (``schema = "posedrive.pose_sequence"``, ``version = 1``)::

    {
      "schema": "posedrive.pose_sequence", "version": 1, "layout": "wholebody-134",
      "width": 1080, "height": 1920, "fps": 24.0,
      "coordinates": "pixels, origin top-left, +y down; missing keypoint = [null, null, 0]",
      "meta": {...},
      "frames": [
        {"index": 0, "status": "detected", "confidence": 0.93,
         "body": [[x, y, score], ... 18], "feet": [... 6], "face": [... 68],
         "left_hand": [... 21], "right_hand": [... 21]},
        ...
      ]
    }

Floats are written with full precision, so ``load(save(seq))`` reproduces every float32 exactly. Both
formats hold the same values, checked on saving as on loading: coordinates finite or missing (``null`` /
NaN), scores in [0, 1] (a NaN score means "missing", like score 0, and is stored as 0), finite confidences,
known statuses, at least one frame, and JSON-serialisable ``meta`` without NaN or infinity.
NPZ holds the arrays ``keypoints (T, 134, 3)``, ``status (T,)``, ``confidence (T,)`` and a JSON
``header`` string with the scalar fields; it never uses pickle.

A pose *override* file for a reference image (``--reference-pose``) is the same format with one frame, or
an OpenPose JSON file (an OpenPose editor's export); OpenPose files and folders of them are read by
:mod:`pose.openpose_json`.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from . import layout
from .errors import InputError, OutputError, PoseFileError
from .sequence import FrameStatus, PoseFrame, PoseSequence

SCHEMA = "posedrive.pose_sequence"
VERSION = 1
LAYOUT = "wholebody-134"
_COORDS = "pixels, origin top-left, +y down; missing keypoint = [null, null, 0]"
_PARTS = ("body", "feet", "face", "left_hand", "right_hand")
#: Largest frame side a pose file may state (px): beyond it the file is damaged or was edited wrongly.
MAX_FRAME_SIDE = 65536
#: Highest frame rate a pose file may state (high-speed cameras film at up to about 1000 fps).
MAX_SEQUENCE_FPS = 1000.0


def publish(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Move a finished temporary file onto ``path`` atomically, with ordinary file permissions.

    ``tempfile.mkstemp`` creates files readable by their owner only; the published file gets the
    permissions a plain ``open(path, "w")`` would give it (``0o666`` minus the process umask).
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def remove_numbered_files(path_of: Callable[[int], Path], start: int) -> int:
    """Delete the files ``path_of(start)``, ``path_of(start + 1)``, ... up to the first missing one: what an
    earlier, longer export of numbered files left past the end of a new one (they would be read as part of
    it). Returns how many were deleted."""
    removed = 0
    while (old := path_of(start + removed)).is_file():
        old.unlink()
        removed += 1
    return removed


def partial_file(path: Path, folder: Path, suffix: str | None = None) -> Path:
    """Create the empty temporary file a video writer fills before publishing ``path``:
    ``<folder>/.<stem>.<random>.partial<suffix>`` (``suffix`` defaults to the path's own).

    Raises:
        OSError: the file cannot be created (the caller words the error for its output).
    """
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".partial{path.suffix if suffix is None else suffix}",
                                dir=folder)
    os.close(fd)
    return Path(name)


def ensure_output_folder(path: str | os.PathLike) -> Path:
    """Create the folder of the output ``path`` if needed and check that it can be written; returns the folder.

    Raises:
        OutputError: the folder cannot be created or is not writable (the message names ``path``).
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create folder {folder} for {path} ({exc.strerror}); choose a writable output path") from exc
    # the writers' temp file goes into this folder, so one named like it is created and removed now, before
    # any work: the permission bits alone do not tell (root, /proc, some network and FUSE mounts)
    try:
        probe = partial_file(path, folder)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise OutputError(f"cannot write {path}: folder {folder} is not writable; choose another output "
                              f"path") from exc
        if exc.errno == errno.ENAMETOOLONG:
            raise OutputError(f"cannot write {path}: the name is too long for the temporary file written next to "
                              f"it first; use a shorter file name") from exc
        raise OutputError(f"cannot write {path}: folder {folder} does not take new files ({exc.strerror}); "
                          f"choose another output path") from exc
    probe.unlink()
    return folder


_Writer = TypeVar("_Writer", bound="AtomicWriter")


class AtomicWriter:
    """The context-manager side of the streaming writers: :meth:`close` when the block succeeds (the output
    moves into place), :meth:`abort` on an exception, Ctrl-C included (nothing partial is left)."""

    def close(self) -> Path:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self: _Writer) -> _Writer:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    Nothing partial is ever left at ``path``: on any exception (KeyboardInterrupt included) the
    temporary file is removed.

    Raises:
        OutputError: ``path`` exists and ``overwrite`` is False, or its folder cannot be written.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputError(f"{path} already exists; pass --overwrite (overwrite=True) to replace it")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"cannot write {path}: folder {folder} does not exist; create it first")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{path.suffix}", dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror}; choose a writable output folder") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        publish(tmp, path)
    except OSError as exc:  # a full disk, a quota, a mount gone away: the user's to fix, in one line
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path} ({exc.strerror or exc}); free some space or choose another "
                          "output path") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ------------------------------------------------------------------------------------------------
# save
# ------------------------------------------------------------------------------------------------
def _kp_rows(kps: np.ndarray) -> list[list[float | None]]:
    rows = []
    for x, y, s in kps.tolist():  # a NaN score means "missing", like 0 (keypoint_valid), and is stored as 0
        rows.append([None if math.isnan(x) else x, None if math.isnan(y) else y, 0.0 if math.isnan(s) else s])
    return rows


def sequence_to_dict(seq: PoseSequence) -> dict[str, Any]:
    """The JSON-ready dictionary of ``seq`` (see the module docstring for the layout)."""
    frames = []
    for i in range(len(seq)):
        kps = seq.keypoints[i]
        entry: dict[str, Any] = {
            "index": i,
            "status": FrameStatus(int(seq.status[i])).name.lower(),
            "confidence": float(seq.confidence[i]),
        }
        for part in _PARTS:
            entry[part] = _kp_rows(kps[layout.PARTS[part]])
        frames.append(entry)
    return {
        "schema": SCHEMA, "version": VERSION, "layout": LAYOUT,
        "width": seq.width, "height": seq.height, "fps": seq.fps,
        "coordinates": _COORDS, "meta": seq.meta, "frames": frames,
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in pose file metadata")


def _dump_json(data: dict[str, Any], fh) -> None:
    # One frame per block and one keypoint per line keeps the file diff- and hand-editable.
    head = {k: v for k, v in data.items() if k != "frames"}
    text = json.dumps(head, indent=1, allow_nan=False, default=_json_default)[:-2]
    fh.write(text + ',\n "frames": [\n')
    for n, frame in enumerate(data["frames"]):
        fh.write("  {" + ", ".join(f'"{k}": {json.dumps(frame[k], allow_nan=False)}'
                                   for k in ("index", "status", "confidence")))
        for part in _PARTS:
            rows = ",\n    ".join(json.dumps(r, allow_nan=False) for r in frame[part])
            fh.write(f',\n   "{part}": [\n    {rows}]')
        fh.write("}" + (",\n" if n + 1 < len(data["frames"]) else "\n"))
    fh.write(" ]\n}\n")


def _keypoint_name(k: int) -> str:
    """``part[j]`` of keypoint ``k`` of the 134 layout, as the JSON file names it."""
    for part in _PARTS:
        sl = layout.PARTS[part]
        if sl.start <= k < sl.stop:
            return f"{part}[{k - sl.start}]"
    return f"keypoint {k}"  # pragma: no cover - every keypoint belongs to a part


def _bad_keypoint(kps: np.ndarray) -> tuple[int, int, str] | None:
    """The first keypoint of ``(T, K, 3)`` ``kps`` that a pose file cannot hold, as ``(frame, keypoint,
    problem)``, or ``None``: a coordinate must be finite or NaN (missing), a score in [0, 1] or NaN (missing)."""
    score = kps[..., 2]
    with np.errstate(invalid="ignore"):
        score_bad = (score < 0) | (score > 1)
        if not np.isinf(kps).any() and not score_bad.any():  # the usual case: two cheap passes
            return None
    xy_bad = np.isinf(kps[..., :2]).any(axis=-1)
    bad = xy_bad | score_bad
    t, k = (int(v) for v in np.unravel_index(int(np.argmax(bad)), bad.shape))
    if xy_bad[t, k]:
        x, y = kps[t, k, :2].tolist()
        return t, k, f"coordinates must be finite numbers or NaN (missing), got x={x}, y={y}"
    return t, k, f"score must be a number in [0, 1], got {kps[t, k, 2].item()}"


def _bad_arrays(kps: np.ndarray, status: np.ndarray, conf: np.ndarray,
                keypoint_kinds: str = "iuf") -> tuple[str, int | tuple[int, int] | None, str] | None:
    """The first problem of a pose file's arrays (``(T, 134, 3)`` keypoints, ``(T,)`` statuses and
    confidences) that :func:`load_sequence` refuses, as ``(array, index, problem)`` (``index``: a frame, a
    ``(frame, keypoint)`` or ``None`` for the whole array), or ``None``. Shared by saving and loading, so that
    a file that was saved is read back."""
    if kps.ndim != 3 or kps.shape[1:] != (layout.NUM_KEYPOINTS, 3) or len(kps) == 0:
        return "keypoints", None, f"must have shape (T>0, {layout.NUM_KEYPOINTS}, 3), got {kps.shape}"
    for name, arr in (("status", status), ("confidence", conf)):
        if arr.shape != (len(kps),):
            return name, None, f"must have shape ({len(kps)},), got {arr.shape}"
    for name, arr, kinds in (("keypoints", kps, keypoint_kinds), ("status", status, "iu"), ("confidence", conf, "iuf")):
        if arr.dtype.kind not in kinds:
            what = "integer frame status codes" if name == "status" else "numbers"
            return name, None, f"must hold {what}, got {arr.dtype} values"
    top = int(max(FrameStatus))
    bad = np.flatnonzero((status < 0) | (status > top))
    if len(bad):
        i = int(bad[0])
        return "status", i, f"is {int(status[i])}, expected a frame status code 0..{top}"
    bad = np.flatnonzero(~np.isfinite(conf))
    if len(bad):
        i = int(bad[0])
        return "confidence", i, f"must be a finite number, got {conf[i].item()}"
    found = _bad_keypoint(kps)
    if found is not None:
        t, k, problem = found
        return "keypoints", (t, k), problem
    return None


def _bad_meta(value: Any, where: str) -> str | None:
    """Where and why ``value`` (found at ``where``) cannot be stored as strict JSON, or ``None``."""
    if isinstance(value, (np.generic, np.ndarray, Path)):
        value = _json_default(value)
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where} is {value}; pose files hold finite numbers only (use None)"
    if value is None or isinstance(value, (str, int)):  # bool is an int
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not (key is None or isinstance(key, (str, int)) or (isinstance(key, float) and math.isfinite(key))):
                return f"{where} has a key {key!r}; use strings"
            problem = _bad_meta(item, f"{where}.{key}")
            if problem:
                return problem
        return None
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            problem = _bad_meta(item, f"{where}[{i}]")
            if problem:
                return problem
        return None
    return f"{where} is of type {type(value).__name__}; use JSON values (numbers, strings, lists, dicts)"


def _check_savable(seq: PoseSequence, path: str | os.PathLike) -> None:
    """Check that ``seq`` holds only what :func:`load_sequence` reads back (see the module docstring).

    Vectorised over the keypoints; called by :func:`save_sequence` before anything is written.

    Raises:
        InputError: one line naming ``path`` and the offending frame, keypoint or field.
    """
    def fail(problem: str) -> InputError:
        return InputError(f"cannot save poses to {path}: {problem}")

    kps = np.asarray(seq.keypoints)
    if len(kps) == 0:
        raise fail("the sequence has no frames; a pose file holds at least one")
    for name, value in (("width", seq.width), ("height", seq.height)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 < value <= MAX_FRAME_SIDE:
            raise fail(f"{name} must be a positive integer up to {MAX_FRAME_SIDE}, got {value!r}")
    fps = seq.fps
    if isinstance(fps, bool) or not isinstance(fps, (int, float, np.integer, np.floating)) or not (
            math.isfinite(fps) and 0 < fps <= MAX_SEQUENCE_FPS):
        raise fail(f"fps must be a number > 0 and up to {MAX_SEQUENCE_FPS:g}, got {fps!r}")
    found = _bad_arrays(kps, np.asarray(seq.status), np.asarray(seq.confidence), keypoint_kinds="f")
    if found is not None:
        name, index, problem = found
        if isinstance(index, tuple):
            t, k = index
            raise fail(f"frame {t} keypoint {k} ('frames[{t}].{_keypoint_name(k)}'): {problem}")
        raise fail(f"{name} {problem}" if index is None else f"frame {index}: {name} {problem}")
    if not isinstance(seq.meta, dict):
        raise fail(f"meta must be a dict, got {type(seq.meta).__name__}")
    try:
        problem = _bad_meta(seq.meta, "meta")
    except RecursionError:
        problem = "meta holds a circular reference"
    if problem:
        raise fail(problem)


def save_sequence(seq: PoseSequence, path: str | os.PathLike, *, overwrite: bool = True) -> Path:
    """Write ``seq`` to ``path`` (``.json`` or ``.npz``), atomically.

    Args:
        seq: the sequence to save.
        path: output file; the suffix picks the format.
        overwrite: replace an existing file (default True).

    Returns:
        The written path.

    Raises:
        InputError: ``seq`` holds something :func:`load_sequence` would refuse (an infinite coordinate, a
            score outside [0, 1], no frames, NaN or a non-JSON value in ``meta``, ...); the message names
            the file and the frame, keypoint or field, and nothing is written.
        OutputError: a bad file name, or ``path`` cannot be written.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".npz"):
        raise OutputError(f"cannot save poses to {path}: use a .json or .npz file name")
    _check_savable(seq, path)
    with atomic_output(path, overwrite=overwrite) as tmp:
        if suffix == ".json":
            with open(tmp, "w", encoding="utf-8") as fh:
                _dump_json(sequence_to_dict(seq), fh)
        else:
            header = {"schema": SCHEMA, "version": VERSION, "layout": LAYOUT, "width": seq.width,
                      "height": seq.height, "fps": seq.fps, "meta": seq.meta}
            kps = seq.keypoints
            missing = np.isnan(kps[..., 2])
            if missing.any():  # stored as 0, like the JSON file (_kp_rows)
                kps = kps.copy()
                kps[..., 2][missing] = 0.0
            # zipped in memory (a few MB for an hour of video), then written in one go: a full disk mid-zip left
            # numpy's ZipFile to fail again, noisily, when it was collected
            buffer = io.BytesIO()
            np.savez_compressed(
                buffer, keypoints=kps, status=seq.status, confidence=seq.confidence,
                header=np.array(json.dumps(header, allow_nan=False, default=_json_default)),
            )
            tmp.write_bytes(buffer.getvalue())
    return path


# ------------------------------------------------------------------------------------------------
# load
# ------------------------------------------------------------------------------------------------
def _fail(path: Path, field: str, problem: str) -> PoseFileError:
    return PoseFileError(f"pose file {path}: field '{field}' {problem}")


def _check_header(path: Path, head: dict[str, Any]) -> None:
    if not isinstance(head, dict):
        raise _fail(path, "<root>", "must be a JSON object")
    if head.get("schema") != SCHEMA:
        raise _fail(path, "schema", f"is {head.get('schema')!r}, expected {SCHEMA!r}; is this a posedrive pose file?")
    if head.get("version") != VERSION:
        raise _fail(path, "version", f"is {head.get('version')!r}, this posedrive reads version {VERSION}; "
                                     "re-extract the poses or upgrade posedrive")
    if head.get("layout", LAYOUT) != LAYOUT:
        raise _fail(path, "layout", f"is {head.get('layout')!r}, expected {LAYOUT!r}")
    for key, kind, top, what in (("width", int, MAX_FRAME_SIDE, "a whole number of pixels"),
                                 ("height", int, MAX_FRAME_SIDE, "a whole number of pixels"),
                                 ("fps", (int, float), MAX_SEQUENCE_FPS, "a number")):
        value = head.get(key)
        if isinstance(value, bool) or not isinstance(value, kind) or not 0 < value <= top:
            raise _fail(path, key, f"must be {what} > 0 and up to {top:g}, got {value!r}")
    if not isinstance(head.get("meta", {}), dict):
        raise _fail(path, "meta", "must be an object")


def _parse_part(path: Path, field: str, rows: Any, n: int) -> np.ndarray:
    if not isinstance(rows, list) or len(rows) != n:
        got = len(rows) if isinstance(rows, list) else type(rows).__name__
        raise _fail(path, field, f"must list {n} keypoints, got {got}")
    out = np.empty((n, 3), dtype=np.float32)
    for j, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != 3:
            raise _fail(path, f"{field}[{j}]", "must be [x, y, score]")
        x, y, s = row
        for name, v in (("x", x), ("y", y)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise _fail(path, f"{field}[{j}]", f"{name} must be a number or null, got {v!r}")
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0.0 <= s <= 1.0:
            raise _fail(path, f"{field}[{j}]", f"score must be a number in [0, 1], got {s!r}")
        with np.errstate(over="ignore"):  # beyond float32's range: inf, refused below
            out[j] = (np.nan if x is None else x, np.nan if y is None else y, s)
    found = _bad_keypoint(out[None])
    if found is not None:
        _, j, problem = found
        raise _fail(path, f"{field}[{j}]", problem.replace("or NaN (missing)", "or null"))
    return out


def sequence_from_dict(data: Any, path: str | os.PathLike = "<dict>") -> PoseSequence:
    """Validate and convert a dictionary in the JSON layout to a :class:`PoseSequence`."""
    path = Path(path)
    _check_header(path, data)
    frames = data.get("frames")
    if not isinstance(frames, list) or not frames:
        raise _fail(path, "frames", "must be a non-empty list of frames")
    statuses = {s.name.lower(): int(s) for s in FrameStatus}
    kps = np.empty((len(frames), layout.NUM_KEYPOINTS, 3), dtype=np.float32)
    status = np.empty(len(frames), dtype=np.uint8)
    conf = np.empty(len(frames), dtype=np.float32)
    for i, frame in enumerate(frames):
        where = f"frames[{i}]"
        if not isinstance(frame, dict):
            raise _fail(path, where, "must be an object")
        index = frame.get("index", i)  # optional; when given, frames are listed in order, none left out
        if isinstance(index, bool) or index != i:
            raise _fail(path, f"{where}.index", f"is {index!r}, expected {i}: list the frames in order, one per "
                        "frame of the video (or leave the index out)")
        st = frame.get("status", "detected")
        if st not in statuses:
            raise _fail(path, f"{where}.status", f"is {st!r}, expected one of {sorted(statuses)}")
        status[i] = statuses[st]
        c = frame.get("confidence", 0.0)
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c):
            raise _fail(path, f"{where}.confidence", f"must be a number, got {c!r}")
        conf[i] = c
        for part in _PARTS:
            sl = layout.PARTS[part]
            if part not in frame:
                raise _fail(path, f"{where}.{part}", "is missing")
            kps[i, sl] = _parse_part(path, f"{where}.{part}", frame[part], sl.stop - sl.start)
    return PoseSequence(kps, data["width"], data["height"], data["fps"], status, conf, dict(data.get("meta", {})))


def _load_npz(path: Path) -> PoseSequence:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # empty or truncated archives too
        raise PoseFileError(f"pose file {path} is not a readable NPZ archive ({exc}); re-save it with posedrive") from exc
    for key in ("header", "keypoints", "status", "confidence"):
        if key not in arrays:
            raise _fail(path, key, "is missing")
    try:
        head = json.loads(str(arrays["header"]))
    except json.JSONDecodeError as exc:
        raise _fail(path, "header", f"is not valid JSON ({exc.msg})") from exc
    _check_header(path, head)
    kps, status, conf = arrays["keypoints"], arrays["status"], arrays["confidence"]
    with np.errstate(over="ignore"):  # beyond float32's range: inf, refused by the checks
        kps, conf = (a.astype(np.float32, copy=False) if a.dtype.kind in "iuf" else a for a in (kps, conf))
    found = _bad_arrays(kps, status, conf)  # the same checks as on saving and in the JSON reader
    if found is not None:
        name, index, problem = found
        if isinstance(index, tuple):
            t, k = index
            raise _fail(path, f"keypoints[{t}, {k}]", f"(frame {t}, {_keypoint_name(k)}): {problem}")
        raise _fail(path, name if index is None else f"{name}[{index}]", problem)
    missing = np.isnan(kps[..., 2])
    if missing.any():  # files written before NaN scores were stored as 0
        kps[..., 2][missing] = 0.0
    return PoseSequence(kps, head["width"], head["height"], head["fps"], status.astype(np.uint8), conf,
                        dict(head.get("meta", {})))


def read_json(path: Path) -> Any:
    """Parse a JSON file (UTF-8, with or without the byte-order mark Windows editors write); a
    :class:`PoseFileError` names the file when it is not UTF-8 text or not JSON."""
    try:
        with open(path, encoding="utf-8-sig") as fh:
            return json.load(fh)
    except UnicodeDecodeError as exc:
        raise PoseFileError(f"pose file {path} is not UTF-8 text JSON; is it really a pose file?") from exc
    except json.JSONDecodeError as exc:
        raise PoseFileError(f"pose file {path} is not valid JSON (line {exc.lineno}: {exc.msg})") from exc


def load_sequence(path: str | os.PathLike, fps: float | None = None) -> PoseSequence:
    """Read a pose sequence saved by :func:`save_sequence` (``.json`` or ``.npz``), an OpenPose JSON file
    (one frame) or a folder of OpenPose per-frame JSON files (:mod:`pose.openpose_json`).

    Args:
        path: the file or folder.
        fps: frame rate of an OpenPose folder, whose files do not state one (default 24, like a folder
            of frames); ignored for posedrive's own files.

    Raises:
        PoseFileError: missing file, unknown format, malformed content or another schema version;
            the message names the file and the offending field.
    """
    from .openpose_json import (
        frame_from_openpose,
        is_openpose,
        load_openpose_folder,
        openpose_files,
    )
    from .video import DEFAULT_FOLDER_FPS

    path = Path(path)
    if path.is_dir():
        if not openpose_files(path):
            raise PoseFileError(f"pose folder {path} holds no OpenPose .json files; give a pose file or such a folder")
        return load_openpose_folder(path, fps or DEFAULT_FOLDER_FPS)
    if not path.is_file():
        raise PoseFileError(f"pose file {path} does not exist; check the path")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _load_npz(path)
    if suffix != ".json":
        raise PoseFileError(f"pose file {path} must be .json or .npz (or a folder of OpenPose JSON files); for a "
                            "video or an image, extract its poses with `posedrive pose extract` first")
    data = read_json(path)
    if is_openpose(data):
        frame = frame_from_openpose(data, path)
        return PoseSequence(frame.keypoints[None].copy(), frame.width, frame.height, fps or DEFAULT_FOLDER_FPS,
                            np.array([int(frame.status)], np.uint8), meta={"source": str(path), "format": "openpose"})
    return sequence_from_dict(data, path)


def load_pose_frame(path: str | os.PathLike, index: int = 0, size: tuple[int, int] | None = None) -> PoseFrame:
    """Read one frame (default the first) of a pose file, e.g. a ``--reference-pose`` override.

    The file is posedrive's own (``.json``/``.npz``) or an OpenPose JSON file, such as an OpenPose
    editor's export (:mod:`pose.openpose_json`). The frame's status becomes ``MANUAL`` so later stages know
    it did not come from a detector.

    Args:
        path: the pose file.
        index: frame of the sequence.
        size: ``(width, height)`` of the image the pose belongs to, for an OpenPose file that states no
            canvas size.
    """
    path = Path(path)
    if path.suffix.lower() == ".json" and path.is_file():
        from .openpose_json import frame_from_openpose, is_openpose

        data = read_json(path)
        if is_openpose(data):
            if index != 0:
                raise PoseFileError(f"OpenPose file {path} holds one frame; frame {index} does not exist")
            return frame_from_openpose(data, path, size)
        seq = sequence_from_dict(data, path)
    else:
        seq = load_sequence(path)
    if not -len(seq) <= index < len(seq):
        raise PoseFileError(f"pose file {path} has {len(seq)} frames; frame {index} does not exist")
    frame = seq[index]
    frame.status = FrameStatus.MANUAL
    if not frame.has_person:
        raise PoseFileError(f"pose file {path}: frame {index} has fewer than 2 visible body keypoints")
    return frame


def save_pose_frame(frame: PoseFrame, path: str | os.PathLike, *, overwrite: bool = True) -> Path:
    """Save a single pose (e.g. to hand-edit a reference pose override) as a one-frame sequence."""
    seq = PoseSequence(frame.keypoints[None].copy(), frame.width, frame.height, 1.0,
                       np.array([int(frame.status)], np.uint8))
    return save_sequence(seq, path, overwrite=overwrite)
