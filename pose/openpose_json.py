"""OpenPose JSON: read the keypoint files of OpenPose and the pose editors, write them for other tools.

The format is the one OpenPose writes with ``--write_json`` (one file per frame) and the pose editors of
the ControlNet ecosystem export, which add the canvas size::

    {"version": 1.3, "canvas_width": 512, "canvas_height": 768,          # the editors' addition
     "people": [{"pose_keypoints_2d": [x, y, c, ...],                     # BODY_25 (75) or COCO-18 (54)
                 "face_keypoints_2d": [...],                              # 70 points: iBUG 68 + 2 pupils
                 "hand_left_keypoints_2d": [...], "hand_right_keypoints_2d": [...]}]}   # 21 each

A keypoint that was not found is ``0, 0, 0``. Coordinates are pixels, or fractions of the canvas when every
one of them is at most 1 (some editors write those). The body maps onto posedrive's OpenPose-18 body
and the BODY_25 feet (same order as :data:`pose.layout.FEET_NAMES`); the face's 68 landmarks and the hands
are in posedrive's order already.

Uses: a hand-made pose for a character the detector does not find (``--reference-pose pose.json``, e.g.
drawn in an OpenPose editor), a folder of OpenPose per-frame files as driving poses, and
:func:`save_openpose` to hand posedrive's poses to ControlNet tools.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from . import layout
from .errors import OutputError, PoseFileError
from .io import ensure_output_folder, publish, read_json, remove_numbered_files
from .sequence import FrameStatus, PoseFrame, PoseSequence
from .video import natural_key

logger = logging.getLogger(__name__)

# BODY_25 index of each OpenPose-18 body keypoint (BODY_25 adds MidHip at 8 and the feet at 19-24).
BODY25_TO_BODY18 = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)
BODY25_FEET = tuple(range(19, 25))
BODY25_MID_HIP = 8
_PARTS = (("face_keypoints_2d", layout.FACE), ("hand_left_keypoints_2d", layout.LEFT_HAND),
          ("hand_right_keypoints_2d", layout.RIGHT_HAND))


def is_openpose(data: Any) -> bool:
    """Whether a parsed JSON document is an OpenPose keypoint file (an object with a ``people`` list)."""
    return isinstance(data, dict) and isinstance(data.get("people"), list) and "schema" not in data


def _points(path: Path, field: str, values: Any, counts: tuple[int, ...]) -> np.ndarray:
    """``(n, 3)`` float array of a flat ``[x, y, c, ...]`` list, missing points as NaN with score 0."""
    if not isinstance(values, list) or len(values) % 3 or len(values) // 3 not in counts:
        got = len(values) if isinstance(values, list) else type(values).__name__
        want = " or ".join(str(3 * n) for n in counts)
        raise PoseFileError(f"OpenPose file {path}: '{field}' must hold {want} numbers (x, y, confidence), got {got}")
    try:
        pts = np.asarray(values, dtype=np.float64).reshape(-1, 3)
    except (TypeError, ValueError):
        raise PoseFileError(f"OpenPose file {path}: '{field}' must hold numbers only") from None
    if not np.isfinite(pts).all():
        raise PoseFileError(f"OpenPose file {path}: '{field}' holds a NaN or infinite value")
    missing = pts[:, 2] <= 0
    pts[missing] = (np.nan, np.nan, 0.0)
    pts[:, 2] = np.clip(pts[:, 2], 0.0, 1.0)
    return pts


def _person_keypoints(path: Path, person: Any) -> np.ndarray:
    """``(134, 3)`` keypoints of one entry of ``people`` (coordinates as written)."""
    if not isinstance(person, dict):
        raise PoseFileError(f"OpenPose file {path}: every entry of 'people' must be an object")
    kps = np.full((layout.NUM_KEYPOINTS, 3), np.nan)
    kps[:, 2] = 0.0
    body = _points(path, "pose_keypoints_2d", person.get("pose_keypoints_2d"), (18, 25))
    if len(body) == 25:
        kps[layout.BODY] = body[list(BODY25_TO_BODY18)]
        kps[layout.FEET] = body[list(BODY25_FEET)]
    else:
        kps[layout.BODY] = body
    for field, part in _PARTS:
        values = person.get(field)
        if values:  # absent or empty: not detected
            n = part.stop - part.start
            pts = _points(path, field, values, (n, 70) if part == layout.FACE else (n,))
            kps[part] = pts[:n]
    return kps


def _canvas(path: Path, data: dict) -> tuple[int, int] | None:
    w, h = data.get("canvas_width"), data.get("canvas_height")
    if w is None and h is None:
        return None
    for name, v in (("canvas_width", w), ("canvas_height", h)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 1:
            raise PoseFileError(f"OpenPose file {path}: '{name}' must be a positive number, got {v!r}")
    return round(w), round(h)


def _body_score(kps: np.ndarray) -> float:
    return float(np.nansum(kps[layout.BODY, 2]))


def _read(path: Path) -> dict:
    data = read_json(path)
    if not is_openpose(data):
        raise PoseFileError(f"{path} is not an OpenPose keypoint file (no 'people' list)")
    return data


def _people(path: Path, data: dict) -> list[np.ndarray]:
    return [_person_keypoints(path, p) for p in data["people"]]


#: Keypoints all within this many canvas sizes of the origin are fractions of the canvas (editors write
#: them so), not pixels: a hand or a foot drawn past the canvas edge reaches past 1.0 (a person in pixels
#: would be at most 2 px tall).
FRACTION_LIMIT = 2.0


def _fractions(xy: np.ndarray) -> bool:
    """Whether the finite coordinates of ``xy`` are fractions of the canvas (:data:`FRACTION_LIMIT`)."""
    seen = np.isfinite(xy).all(axis=-1)
    return bool(seen.any() and np.abs(xy[seen]).max() <= FRACTION_LIMIT)


def _to_pixels(kps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Keypoints written as fractions of the canvas (:func:`_fractions`) scaled to pixels."""
    if _fractions(kps[..., :2]) and max(size) > 2 * FRACTION_LIMIT:
        kps = kps.copy()
        kps[..., 0] *= size[0]
        kps[..., 1] *= size[1]
    return kps


def _extent(path: Path, people: list[np.ndarray]) -> tuple[int, int]:
    """A canvas size guessed from the keypoints' extent (the files state none)."""
    xy = np.concatenate([k[:, :2] for k in people]) if people else np.zeros((0, 2))
    xy = xy[np.isfinite(xy).all(axis=1)]
    if not len(xy) or _fractions(xy):
        raise PoseFileError(f"OpenPose file {path} states no canvas size; add \"canvas_width\" and \"canvas_height\"")
    return math.ceil(xy[:, 0].max() * 1.05), math.ceil(xy[:, 1].max() * 1.05)


def load_openpose_frame(path: str | os.PathLike, size: tuple[int, int] | None = None) -> PoseFrame:
    """The person of one OpenPose JSON file as a :class:`PoseFrame` (status ``MANUAL``).

    Of several people, the one with the most confident body is taken.

    Args:
        path: the JSON file.
        size: ``(width, height)`` of the image the pose belongs to, used when the file states no canvas
            size (OpenPose's own files do not); without either, the keypoints' extent is taken.

    Raises:
        PoseFileError: unreadable file, malformed keypoints or no person; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise PoseFileError(f"pose file {path} does not exist; check the path")
    return frame_from_openpose(_read(path), path, size)


def frame_from_openpose(data: dict, path: str | os.PathLike, size: tuple[int, int] | None = None) -> PoseFrame:
    """:func:`load_openpose_frame` of the already parsed file ``data`` (``path`` names it in errors)."""
    path = Path(path)
    people = _people(path, data)
    if not people:
        raise PoseFileError(f"OpenPose file {path} lists no person in 'people'")
    canvas = _canvas(path, data) or size or _extent(path, people)
    kps = _to_pixels(max(people, key=_body_score), canvas)
    frame = PoseFrame(kps.astype(np.float32), canvas[0], canvas[1], FrameStatus.MANUAL)
    if not frame.has_person:
        raise PoseFileError(f"OpenPose file {path}: the person has fewer than 2 keypoints with a confidence above 0")
    return frame


def openpose_files(folder: str | os.PathLike) -> list[Path]:
    """The OpenPose JSON files of a folder in frame order (``*.json``, natural sort), or ``[]``."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted((f for f in folder.iterdir() if f.is_file() and f.suffix.lower() == ".json"),
                  key=lambda f: natural_key(f.name))


def load_openpose_folder(folder: str | os.PathLike, fps: float, size: tuple[int, int] | None = None) -> PoseSequence:
    """A folder of OpenPose per-frame JSON files (``--write_json``) as a :class:`PoseSequence`.

    One person is followed: the most confident in the first frame that shows anyone, then in each frame
    the one whose body centre is nearest to the last one taken. Frames without anyone are ``MISSING``.

    Args:
        folder: the folder; every ``*.json`` file in it is a frame, in natural name order.
        fps: frame rate of the poses (OpenPose files do not state it).
        size: ``(width, height)`` of the video, used when the files state no canvas size; without either,
            the keypoints' extent over all frames is taken (and a warning says so).

    Raises:
        PoseFileError: no JSON file, a malformed file, or no person in any frame.
    """
    folder = Path(folder)
    files = openpose_files(folder)
    if not files:
        raise PoseFileError(f"folder {folder} holds no OpenPose .json files")
    if not fps > 0:
        raise PoseFileError(f"fps for the OpenPose folder {folder} must be positive, got {fps}")
    frames, canvases = [], set()
    for f in files:
        data = _read(f)
        frames.append(_people(f, data))
        canvas = _canvas(f, data)
        if canvas:
            canvases.add(canvas)
    if len(canvases) > 1:
        raise PoseFileError(f"the OpenPose files in {folder} state different canvas sizes {sorted(canvases)}; "
                            "use files from one video")
    if canvases:
        canvas = canvases.pop()
    elif size is not None:
        canvas = (int(size[0]), int(size[1]))
    else:
        canvas = _extent(folder, [k for people in frames for k in people])
        logger.warning("OpenPose files in %s state no canvas size; assuming %dx%d from the keypoints' extent",
                       folder, *canvas)
    kps = np.full((len(files), layout.NUM_KEYPOINTS, 3), np.nan, np.float32)
    kps[..., 2] = 0.0
    status = np.full(len(files), int(FrameStatus.MISSING), np.uint8)
    last = None
    for i, people in enumerate(frames):
        people = [_to_pixels(k, canvas) for k in people]
        people = [k for k in people if np.isfinite(k[layout.BODY, :2]).all(axis=1).sum() >= 2]
        if not people:
            continue
        if last is None:
            pick = max(people, key=_body_score)
        else:
            pick = min(people, key=lambda k: float(np.linalg.norm(np.nanmean(k[layout.BODY, :2], axis=0) - last)))
        last = np.nanmean(pick[layout.BODY, :2], axis=0)
        kps[i] = pick
        status[i] = int(FrameStatus.DETECTED)
    if not (status == int(FrameStatus.DETECTED)).any():
        raise PoseFileError(f"no OpenPose file in {folder} shows a person with 2 or more keypoints")
    conf = np.where(status == int(FrameStatus.DETECTED), np.nanmean(kps[:, layout.BODY, 2], axis=1), 0.0)
    return PoseSequence(kps, canvas[0], canvas[1], float(fps), status, conf.astype(np.float32),
                        {"source": str(folder), "format": "openpose"})


def openpose_person(frame: PoseFrame) -> dict[str, list[float]]:
    """One ``people`` entry (BODY_25 with its mid-hip, 70 face points with the pupils, both hands) of a frame;
    missing keypoints are ``0, 0, 0``."""
    kps = frame.keypoints.astype(np.float64)

    def flat(points: np.ndarray) -> list[float]:
        pts = np.where(np.isfinite(points[:, :2]).all(axis=1, keepdims=True) & (points[:, 2:] > 0), points, 0.0)
        return [round(float(v), 3) for v in pts.reshape(-1)]

    body = np.zeros((25, 3))
    body[list(BODY25_TO_BODY18)] = kps[layout.BODY]
    body[list(BODY25_FEET)] = kps[layout.FEET]
    hips = kps[[layout.B["right_hip"], layout.B["left_hip"]]]
    if np.isfinite(hips[:, :2]).all() and (hips[:, 2] > 0).all():
        body[BODY25_MID_HIP] = (*hips[:, :2].mean(axis=0), hips[:, 2].min())
    face = np.zeros((70, 3))
    face[:68] = kps[layout.FACE]
    eyes = layout.FACE.start + np.array([36, 42])  # the pupils: centre of each eye's six landmarks
    for k, start in enumerate(eyes):
        ring = kps[start:start + 6]
        if np.isfinite(ring[:, :2]).all() and (ring[:, 2] > 0).all():
            face[68 + k] = (*ring[:, :2].mean(axis=0), ring[:, 2].min())
    return {"pose_keypoints_2d": flat(body), "face_keypoints_2d": flat(face),
            "hand_left_keypoints_2d": flat(kps[layout.LEFT_HAND]),
            "hand_right_keypoints_2d": flat(kps[layout.RIGHT_HAND])}


def openpose_name(stem: str, index: int) -> str:
    """The file name :func:`save_openpose` gives frame ``index`` (OpenPose's: ``<stem>_<index:012d>_keypoints.json``)."""
    return f"{stem}_{index:012d}_keypoints.json"


def check_openpose_output(folder: str | os.PathLike, stem: str = "frame", overwrite: bool = False) -> None:
    """Fail early (before a long extraction) when :func:`save_openpose` could not write to ``folder``.

    Raises:
        OutputError: the missing folders cannot be created or take no new files, ``folder`` is a file or
            takes no new files, or (without ``overwrite``) it already holds OpenPose files of this ``stem``.
    """
    folder = Path(os.path.expanduser(str(folder)))
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"cannot write OpenPose files to {folder}: it is a file; give a folder name")
    if not overwrite and folder.is_dir():
        taken = sorted(folder.glob(f"{stem}_*_keypoints.json"))
        if taken:
            raise OutputError(f"{taken[0]} already exists ({len(taken)} OpenPose files of {stem!r} in {folder}); "
                              "pass --overwrite (overwrite=True) or choose another folder")
    # the files are written into a temporary folder inside ``folder`` and moved up into it, so only the folder
    # must take files (probed by creating and removing a file, as the permission bits alone do not tell), or
    # its parent when the folder is still to be made (created now with the folders above it, as for the other
    # outputs)
    ensure_output_folder(folder / openpose_name(stem, 0) if folder.is_dir() else folder)


def save_openpose(seq: PoseSequence, folder: str | os.PathLike, stem: str = "frame", *,
                  overwrite: bool = False) -> list[Path]:
    """Write one OpenPose JSON file per frame (``<stem>_<index:012d>_keypoints.json``, OpenPose's naming)
    with the canvas size; a frame without a person gets an empty ``people`` list.

    The files are written to a hidden temporary folder inside ``folder`` and moved up when all are done (on
    the same file system, also when ``folder`` is a mount point), so an error or Ctrl-C leaves no partial
    set; an existing file is only replaced with ``overwrite``.

    Args:
        seq: the poses.
        folder: output folder (created if missing, with the folders above it).
        stem: file name prefix.
        overwrite: replace existing files of the same names (default False: they are an error); the files
            of a longer earlier export numbered on from this one's end are deleted once this one is in place.

    Returns:
        The written paths.
    """
    folder = Path(os.path.expanduser(str(folder)))
    check_openpose_output(folder, stem, overwrite)
    names = [openpose_name(stem, i) for i in range(len(seq))]
    created = not folder.exists()
    published: list[Path] = []
    work: Path | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{stem}.", suffix=".partial", dir=folder))
        for name, frame in zip(names, seq):
            people = [openpose_person(frame)] if frame.has_person else []
            doc = {"version": 1.3, "canvas_width": seq.width, "canvas_height": seq.height, "people": people}
            (work / name).write_text(json.dumps(doc), encoding="utf-8")
        for name in names:
            publish(work / name, folder / name)
            published.append(folder / name)
    except BaseException as exc:  # no partial set: the files moved in so far go again (and the folder, if new)
        for path in published:
            path.unlink(missing_ok=True)
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        if isinstance(exc, OSError):  # a full disk, a quota: the user's to fix, in one line
            raise OutputError(f"cannot write OpenPose files to {folder} ({exc.strerror or exc}); free some space "
                              "or choose another folder") from exc
        raise
    shutil.rmtree(work, ignore_errors=True)
    # the files of an earlier, longer export past this one's end
    stale = remove_numbered_files(lambda i: folder / openpose_name(stem, i), len(names)) if overwrite else 0
    if stale:
        logger.info("removed %d OpenPose files of an earlier, longer export from %s", stale, folder)
    return [folder / n for n in names]
