"""Driving video -> :class:`~pose.sequence.PoseSequence`, and reference image -> :class:`PoseFrame`.

:func:`extract_poses` streams frames from a video file or a folder of frames (never holding the video in
memory), runs a pose detector on each, then fills short gaps (:func:`pose.gaps.fill_gaps`) and smooths the
tracks (:func:`pose.smoothing.smooth_sequence`). Rendered skeleton videos (e.g. ``*_kps.mp4``) are
recognised from their first frame and read back with :mod:`pose.skeleton_parse` instead of being detected.

Speed (the default mediapipe detector is the bottleneck, ~10 frames/s per CPU core):

* frames are downscaled inside the ffmpeg decoder to the detector's working size (``max_size``, long side
  960 px by default), which is far cheaper than decoding at full size and resizing;
* a reader thread decodes ahead while the detector runs;
* with ``workers > 1`` the frame range is cut into contiguous chunks, one per worker process, each with
  its own detector (Holistic tracks from frame to frame, so each chunk starts a fresh track at its first
  frame, and each worker seeks there).

Keypoints are always returned in pixels of the source frames, whatever size detection ran at.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import threading
import time
import traceback
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from tqdm import tqdm

from .detectors.base import DEFAULT_DETECTOR, Detector, create_detector
from .errors import InputError, NoPersonError, PosedriveError, VideoError
from .sequence import FrameStatus, PoseFrame, PoseSequence
from .video import open_video, read_image, to_rgb

logger = logging.getLogger(__name__)

# A worker process is only worth its start-up cost (~1-2 s: interpreter, mediapipe graph) for this many frames.
MIN_FRAMES_PER_WORKER = 48
# Frames decoded ahead of the detector by the reader thread.
PREFETCH_FRAMES = 4
# Seconds between progress updates sent by worker processes.
_PROGRESS_PERIOD_S = 0.25


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------
def _prefetch(frames: Iterator[np.ndarray], depth: int = PREFETCH_FRAMES) -> Iterator[np.ndarray]:
    """Iterate ``frames`` in a background thread, ``depth`` items ahead (exceptions re-raised here)."""
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    done = object()
    stop = threading.Event()

    def run() -> None:
        try:
            for item in frames:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as exc:  # handed to the consumer
            q.put(exc)

    t = threading.Thread(target=run, daemon=True, name="pose-prefetch")
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        t.join(timeout=5.0)


def _resolve_detector_name(detector: str | Detector) -> str:
    return detector.name if isinstance(detector, Detector) else str(detector)


def _detector_max_size(name: str, options: dict) -> int | None:
    """Frame size the detector works at, so that the decoder can downscale to it (None = full size)."""
    if name == "mediapipe":
        from .detectors.mediapipe_holistic import DEFAULT_MAX_SIZE

        return options.get("max_size", DEFAULT_MAX_SIZE)
    return None


def _smoothing_meta(smoothing: Any) -> Any:
    if smoothing is None or isinstance(smoothing, bool):
        return bool(smoothing)
    if is_dataclass(smoothing):
        return asdict(smoothing)
    return repr(smoothing)


def _scale_frame(frame: PoseFrame, sx: float, sy: float, width: int, height: int) -> PoseFrame:
    if (sx, sy) == (1.0, 1.0):
        return frame
    return frame.transformed(np.array([[sx, 0.0, 0.0], [0.0, sy, 0.0]]), width, height)


def _detect_range(path: str, name: str, options: dict, start: int, end: int | None, step: int,
                  max_size: int | None, fps: float | None, progress_cb=None) -> tuple[np.ndarray, np.ndarray, int]:
    """Detect poses on frames ``start:end:step`` of ``path``; returns (keypoints, status, frames decoded).

    Runs in the calling process or in a worker process. Keypoints are in source-frame pixels.
    """
    kps: list[np.ndarray] = []
    status: list[int] = []
    with create_detector(name, **options) as det, open_video(path, fps, max_size=max_size, start=start, end=end) as src:
        sx, sy = src.scale
        decoded = 0
        for i, rgb in enumerate(_prefetch(iter(src))):
            decoded += 1
            if i % step:
                continue
            f = _scale_frame(det(rgb), sx, sy, src.source_width, src.source_height)
            kps.append(f.keypoints)
            status.append(int(f.status))
            if progress_cb is not None:
                progress_cb(1)
    if not kps:
        return np.zeros((0, 134, 3), np.float32), np.zeros(0, np.uint8), decoded
    return np.stack(kps), np.asarray(status, np.uint8), decoded


def _worker_main(job_id: int, args: tuple, out_q) -> None:
    """Entry point of a worker process: run :func:`_detect_range` and post results on ``out_q``."""
    pending = [0]
    last = [time.monotonic()]

    def progress(n: int) -> None:
        pending[0] += n
        now = time.monotonic()
        if now - last[0] >= _PROGRESS_PERIOD_S:
            out_q.put(("progress", job_id, pending[0]))
            pending[0] = 0
            last[0] = now

    try:
        kps, status, decoded = _detect_range(*args, progress_cb=progress)
        if pending[0]:
            out_q.put(("progress", job_id, pending[0]))
        out_q.put(("done", job_id, (kps, status, decoded)))
    except PosedriveError as exc:
        out_q.put(("error", job_id, (type(exc).__name__, str(exc))))
    except BaseException as exc:  # report anything else with its traceback
        out_q.put(("error", job_id, ("RuntimeError", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")))


def _raise_worker_error(kind: str, message: str) -> None:
    from . import errors

    cls = getattr(errors, kind, None)
    if isinstance(cls, type) and issubclass(cls, PosedriveError):
        raise cls(message)
    raise RuntimeError(f"pose extraction worker failed: {message}")


def _chunks(start: int, stop: int, step: int, workers: int) -> list[tuple[int, int]]:
    """Split ``range(start, stop, step)`` into ``workers`` contiguous frame ranges aligned on ``step``."""
    n = len(range(start, stop, step))
    per = -(-n // workers)
    out = []
    for w in range(workers):
        a, b = w * per, min(n, (w + 1) * per)
        if a < b:
            out.append((start + a * step, min(stop, start + (b - 1) * step + 1)))
    return out


def auto_workers(n_frames: int | None) -> int:
    """Worker processes for ``n_frames`` frames: one per CPU core, each with >= MIN_FRAMES_PER_WORKER frames."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if n_frames is None:
        return 1
    return max(1, min(cores, n_frames // MIN_FRAMES_PER_WORKER))


def _run_parallel(path: str, name: str, options: dict, ranges: list[tuple[int, int]], step: int,
                  max_size: int | None, fps: float | None, bar: tqdm) -> tuple[np.ndarray, np.ndarray, int]:
    ctx = mp.get_context("spawn")  # fresh interpreters: mediapipe's native threads do not survive fork
    out_q = ctx.Queue()
    procs = [
        ctx.Process(target=_worker_main, args=(i, (path, name, options, a, b, step, max_size, fps), out_q),
                    daemon=True, name=f"pose-extract-{i}")
        for i, (a, b) in enumerate(ranges)
    ]
    for p in procs:
        p.start()
    results: dict[int, tuple] = {}
    try:
        while len(results) < len(procs):
            try:
                kind, job, payload = out_q.get(timeout=1.0)
            except queue.Empty:
                dead = [p for i, p in enumerate(procs) if i not in results and not p.is_alive()]
                if dead and out_q.empty():
                    raise RuntimeError(f"pose extraction worker {dead[0].name} died (exit code {dead[0].exitcode})")
                continue
            if kind == "progress":
                bar.update(payload)
            elif kind == "error":
                _raise_worker_error(*payload)
            else:
                results[job] = payload
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join(timeout=5.0)
        out_q.close()
    kps = np.concatenate([results[i][0] for i in range(len(procs))])
    status = np.concatenate([results[i][1] for i in range(len(procs))])
    return kps, status, sum(results[i][2] for i in range(len(procs)))


# --------------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------------
def extract_poses(
    source: str | os.PathLike | PoseSequence,
    detector: str | Detector = DEFAULT_DETECTOR,
    *,
    fill_gaps: bool = True,
    max_interp_gap: int = 8,
    smoothing: Any = True,
    start: int = 0,
    end: int | None = None,
    step: int = 1,
    progress: bool = True,
    workers: int | str = "auto",
    detector_options: dict | None = None,
    fps: float | None = None,
    max_size: int | str | None = "auto",
    detect_skeleton: bool = True,
) -> PoseSequence:
    """Extract one person's whole-body poses from every frame of a video.

    Args:
        source: a video file, a folder of frame images, a rendered skeleton video, or a
            :class:`PoseSequence` (then only slicing, gap filling and smoothing are applied).
        detector: detector name (``"mediapipe"`` default, ``"openpose"``, ``"skeleton"``) or a ready
            :class:`~pose.detectors.Detector` (used as is, in this process).
        fill_gaps: fill frames without a detection (:func:`pose.gaps.fill_gaps`). Default True.
        max_interp_gap: longest gap in frames that is interpolated; longer ones are held. Default 8.
        smoothing: ``True`` (default One-Euro settings), a :class:`pose.smoothing.OneEuroConfig`, or
            ``None``/``False`` for none.
        start, end, step: frame range ``start:end:step`` of the source (``end`` None = to the end).
            The result's fps is the source fps divided by ``step``.
        progress: show a tqdm progress bar. Default True.
        workers: detector processes; ``"auto"`` (default) uses one per CPU core when the range has at
            least 48 frames per worker. Only video files use more than one (folders and ready detectors
            run in this process). Workers are started with the ``spawn`` method, so a script calling this
            with several workers needs the usual ``if __name__ == "__main__":`` guard.
        detector_options: keyword options for :func:`pose.detectors.create_detector`.
        fps: override the source frame rate (folders default to 24).
        max_size: decode frames with their long side shrunk to this many pixels; ``"auto"`` (default)
            uses the detector's working size (960 for mediapipe, full size otherwise).
        detect_skeleton: when the first frame looks like a rendered OpenPose skeleton
            (:func:`pose.skeleton_parse.is_skeleton_image`), read poses back from the drawing instead of
            running ``detector``. Default True.

    Returns:
        :class:`PoseSequence` in source-frame pixels with ``meta`` recording source, detector and options.

    Raises:
        VideoError: the source cannot be read. NoPersonError: no frame has a person.
        DetectorError: the detector cannot be created.
    """
    if step < 1 or start < 0 or (end is not None and end <= start):
        raise InputError(f"invalid frame range start={start} end={end} step={step}; use 0 <= start < end and step >= 1")
    if isinstance(source, PoseSequence):
        seq = source.slice(start, end, step)
        if len(seq) == 0:
            raise InputError(f"pose sequence has no frames in range start={start} end={end}; widen the range")
        return _postprocess(seq, fill_gaps, max_interp_gap, smoothing)
    path = Path(source)
    options = dict(detector_options or {})
    name = _resolve_detector_name(detector)

    if detect_skeleton and name != "skeleton" and not isinstance(detector, Detector):
        if _looks_like_skeleton(path):
            logger.info("%s looks like a rendered skeleton video; reading poses from the drawing", path)
            name, options = "skeleton", {}

    if max_size == "auto":
        max_size = None if isinstance(detector, Detector) else _detector_max_size(name, options)

    t0 = time.perf_counter()
    with open_video(path, fps, max_size=max_size, start=start, end=end) as probe:
        src_fps, total = probe.fps, probe.frame_count
        width, height = probe.source_width, probe.source_height
        is_folder = path.is_dir()
    n_expected = None if total is None else len(range(0, total, step))
    bar = tqdm(total=n_expected, desc=f"poses {path.name}", unit="frame", disable=not progress)
    try:
        if isinstance(detector, Detector):
            kps, status, decoded = _detect_with(detector, path, start, end, step, max_size, fps, bar)
        else:
            n_workers = auto_workers(n_expected) if workers == "auto" else int(workers)
            if n_workers < 1:
                raise InputError(f"workers must be >= 1 or 'auto', got {workers!r}")
            if is_folder or total is None or name == "skeleton":
                n_workers = 1
            stop = start + total if total is not None else None
            ranges = _chunks(start, stop, step, n_workers) if stop is not None and n_workers > 1 else []
            if len(ranges) > 1:
                kps, status, decoded = _run_parallel(str(path), name, options, ranges, step, max_size, fps, bar)
            else:
                kps, status, decoded = _detect_range(str(path), name, options, start, end, step, max_size, fps,
                                                     progress_cb=bar.update)
                n_workers = 1
    finally:
        bar.close()
    t_detect = time.perf_counter() - t0
    if len(kps) == 0:
        raise VideoError(f"video {path} has no frames in range start={start} end={end}; check the range")
    if not np.any(status == FrameStatus.DETECTED):
        raise NoPersonError(
            f"no person detected in any of the {len(kps)} frames of {path}; check that one person is fully "
            f"visible, or try another detector (available: mediapipe, openpose)"
        )
    det_opts = detector.options() if isinstance(detector, Detector) else options
    meta = {
        "source": str(path),
        "detector": name,
        "detector_options": det_opts,
        "start": start, "end": end, "step": step,
        "source_fps": src_fps,
        "decode_max_size": max_size,
        "workers": 1 if isinstance(detector, Detector) else n_workers,
        "frames_decoded": int(decoded),
        "fill_gaps": bool(fill_gaps), "max_interp_gap": int(max_interp_gap),
        "smoothing": _smoothing_meta(smoothing),
    }
    seq = PoseSequence(kps, width, height, src_fps / step, status,
                       np.where(status == FrameStatus.DETECTED,
                                np.nan_to_num(kps[:, :18, 2]).mean(axis=1), 0.0).astype(np.float32),
                       meta)
    logger.info("%s: %d frames, detection rate %.1f%%, %.1f frames/s", path, len(seq),
                100 * seq.detection_rate(), len(seq) / max(t_detect, 1e-9))
    return _postprocess(seq, fill_gaps, max_interp_gap, smoothing)


def _detect_with(det: Detector, path: Path, start: int, end: int | None, step: int, max_size: int | None,
                 fps: float | None, bar: tqdm) -> tuple[np.ndarray, np.ndarray, int]:
    kps, status, decoded = [], [], 0
    det.reset()
    with open_video(path, fps, max_size=max_size, start=start, end=end) as src:
        sx, sy = src.scale
        for i, rgb in enumerate(_prefetch(iter(src))):
            decoded += 1
            if i % step:
                continue
            f = _scale_frame(det(rgb), sx, sy, src.source_width, src.source_height)
            kps.append(f.keypoints)
            status.append(int(f.status))
            bar.update(1)
    if not kps:
        return np.zeros((0, 134, 3), np.float32), np.zeros(0, np.uint8), decoded
    return np.stack(kps), np.asarray(status, np.uint8), decoded


def _looks_like_skeleton(path: Path) -> bool:
    from .skeleton_parse import is_skeleton_image

    with open_video(path, end=1) as src:
        first = next(iter(src), None)
    return first is not None and is_skeleton_image(first)


def _postprocess(seq: PoseSequence, fill_gaps: bool, max_interp_gap: int, smoothing: Any) -> PoseSequence:
    if fill_gaps:
        try:
            from .gaps import fill_gaps as _fill
        except ImportError:  # pragma: no cover - pose.gaps ships with posedrive
            logger.warning("pose.gaps is not available; gaps are left unfilled")
        else:
            seq = _fill(seq, max_interp_gap=max_interp_gap)
    if smoothing is not None and smoothing is not False:
        try:
            from .smoothing import smooth_sequence
        except ImportError:  # pragma: no cover
            logger.warning("pose.smoothing is not available; poses are not smoothed")
        else:
            seq = smooth_sequence(seq, None if smoothing is True else smoothing)
    return seq


def detect_image(image, detector: str | Detector = DEFAULT_DETECTOR, *,
                 detector_options: dict | None = None, detect_skeleton: bool = True) -> PoseFrame:
    """Detect the person in one image (e.g. the reference character).

    Args:
        image: image file path, ``(H, W, 3|4)`` array or PIL image (see :func:`pose.video.to_rgb`).
        detector: detector name or instance (default ``"mediapipe"``, run in single-image mode).
        detector_options: keyword options for :func:`pose.detectors.create_detector`.
        detect_skeleton: read a rendered skeleton image back instead of detecting. Default True.

    Returns:
        :class:`PoseFrame` in the image's pixels (status ``DETECTED``).

    Raises:
        NoPersonError: no person found (the message names the image and suggests ``--reference-pose``).
    """
    if isinstance(image, (str, os.PathLike)):
        label = str(image)
        rgb = read_image(image)
    else:
        label = "the given image"
        rgb = to_rgb(image)
    if isinstance(detector, Detector):
        frame = detector(rgb)
    else:
        name, options = str(detector), dict(detector_options or {})
        if detect_skeleton and name != "skeleton":
            from .skeleton_parse import is_skeleton_image

            if is_skeleton_image(rgb):
                name, options = "skeleton", {}
        if name == "mediapipe":
            options.setdefault("static_image_mode", True)
        with create_detector(name, **options) as det:
            frame = det(rgb)
    if not frame.has_person:
        raise NoPersonError(
            f"no person detected in {label}; use an image with one clearly visible full body, or give the pose "
            "with --reference-pose FILE"
        )
    return frame
