"""Driving video -> :class:`~pose.sequence.PoseSequence`, and reference image -> :class:`PoseFrame`.

:func:`extract_poses` streams frames from a video file or a folder of frames (never holding the video in
memory), runs a pose detector on each, drops detections whose body size jumps away from the track around
them (:mod:`pose.outliers`: a collapsed skeleton of a person half out of the frame), then fills the gaps
(:func:`pose.gaps.fill_gaps`) and smooths the tracks (:func:`pose.smoothing.smooth_sequence`). When the
detector finds the person in too few frames, a person too small for it (a dancer on a wide stage) is
searched for tile by tile on a few frames, and the video detected again inside a window around them, or
following them (:mod:`pose.person_search`). When the detections start to look like someone else (a second
dancer crossing in front took the tracker), those frames are detected again with that person painted over
(:mod:`pose.identity`). Rendered skeleton videos (e.g. ``*_kps.mp4``) are
recognised from their first frame and read back with :mod:`pose.skeleton_parse` instead of being detected.

Speed (the default mediapipe detector is the bottleneck: Holistic costs ~40-50 ms of CPU per frame):

* keyframe stride (``detect_every``): every frame is decoded, but the detector runs only on every ``N``-th
  one (and the last); frames in between are interpolated from the detections around them and flagged
  ``INTERPOLATED``, along a spline through the keyframes. ``"auto"`` gives about 8 detections per second
  of video (every 3rd frame at 24 fps), whose error on the in-between frames (0.36 % of body height,
  median) is below the detector's own jitter;
* the packet listing of the file (:func:`pose.video.index_packets`, no decoding) gives the exact frame
  count and the key frames, so the decoders drop non-keyframes before converting them, and the work is
  split between workers counting what each decoder must decode from the key frame before its range;
* the decoder skips the codec's deblocking filter when it shrinks the frames for the detector (25 % less
  decoding; 44 dB PSNR to a normal decode at 960 px);
* frames are downscaled inside the ffmpeg decoder to the detector's working size (``max_size``, long side
  960 px by default), which is far cheaper than decoding at full size and resizing;
* a reader thread decodes ahead while the detector runs;
* with ``workers > 1`` the frame range is cut into contiguous chunks aligned on keyframes, one per worker
  process (forked on Linux, pinned to its own core), each with its own detector and decoder (Holistic
  tracks from frame to frame, so each chunk starts a fresh track at its first frame, and each worker seeks
  there). Measured figures: ``benchmarks/bench_pose_extract.py``.

Keypoints are always returned in pixels of the source frames, whatever size detection ran at.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm import tqdm

from . import identity, layout
from .detectors.base import DEFAULT_DETECTOR, WINDOW_OPTIONS, Detector, create_detector, detect_in_window
from .errors import ConfigError, InputError, NoPersonError, PosedriveError, VideoError
from .identity import SIGNATURE_SIZE, RunResult, appearance
from .outliers import DEFAULT_MAX_JUMP, implausible_frames
from .sequence import FrameStatus, PoseFrame, PoseSequence, body_confidence, empty_keypoints, keypoint_valid
from .video import VideoSource, first_frame, index_packets, open_video, read_image, to_rgb

logger = logging.getLogger(__name__)

# A worker process is only worth its start-up cost (fork + mediapipe graph ~0.1 s; spawn ~1-2 s) for this many
# detector runs.
MIN_DETECTIONS_PER_WORKER = 24
# detect_every="auto" (see auto_detect_every): about this many detections per second of video, ...
AUTO_DETECTIONS_PER_SECOND = 8.0
# ... never more than this many frames apart, ...
MAX_DETECT_EVERY = 5
# ... and none below this frame rate (motion between frames too large to interpolate) ...
MIN_FPS_FOR_STRIDE = 16.0
# ... or for sequences shorter than this (seconds), whose cost is mostly start-up anyway.
MIN_SECONDS_FOR_STRIDE = 2.0
# ffmpeg decoding threads of each worker when several run (one per core already; more only add overhead).
WORKER_DECODER_THREADS = 1
# A worker that reports no progress for this long (seconds) is considered hung and the extraction fails.
WORKER_STALL_TIMEOUT_S = 120.0
# Cost of decoding one frame of one megapixel relative to one detection (about 2 ms vs 48 ms of CPU for
# mediapipe Holistic, measured on 1080x1920 H.264 with one decoder thread): used to balance the workers'
# frame ranges, whose decoders also decode from the key frame before their first frame.
DECODE_COST_PER_MEGAPIXEL = 0.04
# Decode for the detector without the codec's deblocking filter when frames are downscaled for it (25 %
# less decoding CPU; compare with benchmarks/bench_pose_extract.py --no-fast-decode; its --accuracy reference
# decodes normally).
FAST_DECODE = True
# Pin each worker process (and its ffmpeg decoder) to its own CPU core (see benchmarks/bench_pose_extract.py).
PIN_WORKERS = True

# Set once a forked worker crashed or hung in this process: later calls do not fork again.
_FORK_STATE = {"failed": False}

# (positions of detected frames, their (n, K, 3) keypoints, their statuses, sequence frames, frames decoded,
# their (n, SIGNATURE_SIZE) appearance signatures, NaN rows where none)
_RangeResult = tuple[np.ndarray, np.ndarray, np.ndarray, int, int, np.ndarray]
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


class _Background:
    """Run ``fn(*args)`` in a daemon thread; :meth:`result` waits and returns its value or re-raises."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn, args), daemon=True, name="pose-startup")
        self._thread.start()

    def _run(self, fn: Callable[..., Any], args: tuple) -> None:
        try:
            self._value = fn(*args)
        except BaseException as exc:  # handed to result()
            self._error = exc

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def _preload_detector(name: str) -> None:
    """Import the detector's heavy package ahead of time (no model is created); errors surface later."""
    if name != "mediapipe":
        return
    from .detectors.mediapipe_holistic import preload

    try:
        preload()
    except PosedriveError as exc:  # create_detector raises it again where it matters
        logger.debug("mediapipe preload failed: %s", exc)


class _Once:
    """Call ``fn`` (if any) the first time this object is called; later calls do nothing."""

    def __init__(self, fn: Callable[[], Any] | None) -> None:
        self.fn = fn

    def __call__(self) -> None:
        fn, self.fn = self.fn, None
        if fn is not None:
            fn()


def _import_postprocessing() -> None:
    """Import what runs after detection (gap filling, smoothing, scipy's splines) while the workers detect.

    Otherwise the import (about 0.25 s, mostly ``scipy.interpolate``) would wait until the last worker ends.
    """
    from . import gaps, smoothing  # noqa: F401

    try:
        import scipy.interpolate  # noqa: F401
    except ImportError:  # pragma: no cover - scipy is a dependency; gaps reports it where it is needed
        pass


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


def _detect_stream(det: Detector, src, every: int, offset: int, detect_tail: bool,
                   progress_cb: Callable[[int], None] | None = None, count: int | None = None,
                   with_looks: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, np.ndarray]:
    """Run ``det`` on the keyframes of the frames streamed from ``src`` (an open :class:`VideoSource`).

    The ``i``-th frame of ``src`` is sequence position ``offset + i``; it is a keyframe when that position
    is a multiple of ``every``. With ``detect_tail`` the last frame is detected too (end point of the
    interpolation). Only keyframes reach the detector; when ``count`` (the exact number of frames of
    ``src``) is known, a video file's decoder drops the other frames itself
    (:meth:`~pose.video.VideoSource.iter_keyframes`). Keypoints are in source-frame pixels. With
    ``with_looks``, each detection's look (:func:`pose.identity.appearance`, NaN when its torso is unseen) is
    taken on the frame detected; without, every look is NaN (nobody will compare them).
    """
    sx, sy = src.scale
    positions: list[int] = []
    kps: list[np.ndarray] = []
    status: list[int] = []
    looks: list[np.ndarray] = []
    unseen = np.full(SIGNATURE_SIZE, np.nan, np.float32)

    def detect(i: int, rgb: np.ndarray) -> None:
        found = det(rgb)
        look = appearance(rgb, found.keypoints) if with_looks and found.has_person else None
        f = _scale_frame(found, sx, sy, src.source_width, src.source_height)
        positions.append(i)
        kps.append(f.keypoints)
        status.append(int(f.status))
        looks.append(unseen if look is None else look)

    done = 0
    for i, rgb in _prefetch(src.iter_keyframes(every, offset, detect_tail, count)):
        detect(i, rgb)
        if progress_cb is not None and i + 1 > done:
            progress_cb(i + 1 - done)
        done = max(done, i + 1)
    n = int(src.frames_read)
    if progress_cb is not None and n > done:
        progress_cb(n - done)
    if not kps:
        return (np.zeros(0, np.int64), np.zeros((0, layout.NUM_KEYPOINTS, 3), np.float32), np.zeros(0, np.uint8), n,
                np.zeros((0, SIGNATURE_SIZE), np.float32))
    return np.asarray(positions, np.int64), np.stack(kps), np.asarray(status, np.uint8), n, np.stack(looks)


def _detect_range(path: str, name: str, options: dict, start: int, end: int | None, step: int,
                  max_size: int | None, fps: float | None, every: int = 1, offset: int = 0,
                  detect_tail: bool = True, progress_cb: Callable[[int], None] | None = None,
                  cpu: int | None = None, in_worker: bool = False, count: int | None = None,
                  with_looks: bool = True) -> _RangeResult:
    """Detect poses on the keyframes of frames ``start:end:step`` of ``path`` (see :func:`_detect_stream`).

    Runs in the calling process or in a worker process (``in_worker``: one of several, so the ffmpeg
    decoder gets ``WORKER_DECODER_THREADS`` threads); ``cpu`` pins the calling process (and the decoder it
    starts) to that core; ``count`` is the exact number of frames in the range when known (``step`` 1
    only), which lets the decoder drop non-keyframes. Returns ``(positions, keypoints, status, frames,
    decoded, looks)``: positions of the detected frames relative to ``start``, their ``(n, 134, 3)``
    keypoints and statuses, the number of sequence frames read, the number of frames decoded, and the
    detections' ``(n, SIGNATURE_SIZE)`` looks (:func:`pose.identity.appearance`; NaN without ``with_looks``).
    """
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError as exc:  # e.g. the core was taken away from this process meanwhile
            logger.debug("could not pin pose worker to CPU %d: %s", cpu, exc)
    threads = WORKER_DECODER_THREADS if cpu is not None or in_worker else 0
    with create_detector(name, **options) as det, \
            open_video(path, fps, max_size=max_size, start=start, end=end, threads=threads,
                       skip_deblocking=FAST_DECODE) as src:
        frames = src if step == 1 else _StepSource(src, step)
        positions, kps, status, n, looks = _detect_stream(det, frames, every, offset, detect_tail, progress_cb,
                                                          count if step == 1 else None, with_looks)
        return positions, kps, status, n, src.frames_read if step == 1 else frames.read, looks


class _StepSource:
    """Every ``step``-th frame of an open :class:`VideoSource` (same ``scale`` and source size)."""

    def __init__(self, src, step: int) -> None:
        self._src, self._step = src, step
        self.read = 0  # frames decoded, skipped ones included
        self.scale = src.scale
        self.source_width, self.source_height = src.source_width, src.source_height

    @property
    def frames_read(self) -> int:
        """Frames yielded so far (every ``step``-th of those decoded)."""
        return -(-self.read // self._step)

    def __iter__(self) -> Iterator[np.ndarray]:
        for i, rgb in enumerate(self._src):
            self.read = i + 1
            if i % self._step == 0:
                yield rgb

    def iter_keyframes(self, every: int, offset: int = 0, tail: bool = False,
                       count: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """See :meth:`pose.video.VideoSource.iter_keyframes` (``count`` is not used)."""
        return VideoSource.iter_keyframes(self, every, offset, tail)  # type: ignore[arg-type]


def _worker_main(job_id: int, args: tuple, kwargs: dict, out_q) -> None:
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
        result = _detect_range(*args, progress_cb=progress, **kwargs)
        if pending[0]:
            out_q.put(("progress", job_id, pending[0]))
        out_q.put(("done", job_id, result))
    except PosedriveError as exc:
        out_q.put(("error", job_id, (type(exc).__name__, str(exc))))
    except BaseException as exc:  # report anything else with its traceback
        out_q.put(("error", job_id, ("RuntimeError", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")))


class _WorkerLost(RuntimeError):
    """A worker process crashed or hung (not an error of the input): the caller retries in-process."""


def _raise_worker_error(kind: str, message: str) -> None:
    from . import errors

    cls = getattr(errors, kind, None)
    if isinstance(cls, type) and issubclass(cls, PosedriveError):
        raise cls(message)
    raise RuntimeError(f"pose extraction worker failed: {message}")


def _chunks(start: int, stop: int, step: int, workers: int, align: int = 1) -> list[tuple[int, int]]:
    """Split ``range(start, stop, step)`` into ``workers`` contiguous frame ranges aligned on ``step``.

    Every range but the last holds a multiple of ``align`` sequence frames, so that keyframes (every
    ``align``-th sequence frame) fall at the same places whatever the number of workers.
    """
    n = len(range(start, stop, step))
    per = -(-n // workers)
    per = -(-per // align) * align
    out = []
    for w in range(workers):
        a, b = w * per, min(n, (w + 1) * per)
        if a < b:
            out.append((start + a * step, min(stop, start + (b - 1) * step + 1)))
    return out


def _balanced_chunks(start: int, stop: int, workers: int, every: int, keyframes: np.ndarray,
                     decode_cost: float) -> list[tuple[int, int]]:
    """Split frames ``start:stop`` into at most ``workers`` ranges of about equal cost, boundaries on keyframes.

    A range ``[a, b)`` costs one unit per detection (every ``every``-th frame, and the tail of the last
    range) plus ``decode_cost`` units per frame its decoder has to decode: from the video's last key frame
    at or before ``a`` (``keyframes``, from :func:`pose.video.index_packets`; an accurate seek decodes from
    there) to ``b``. The largest range cost is minimised (binary search over the cost, greedy split).
    """
    kf = np.asarray(keyframes, np.int64)

    def cost(a: int, b: int) -> float:
        i = np.searchsorted(kf, a, side="right") - 1
        seek_from = int(kf[i]) if i >= 0 else 0
        detections = len(range(a - start, b - start, every)) + (1 if b == stop and (b - 1 - start) % every else 0)
        return detections + decode_cost * (b - seek_from)

    bounds = list(range(start + every, stop, every)) + [stop]

    def split(limit: float) -> list[tuple[int, int]] | None:
        out, a, j = [], start, 0
        while a < stop:
            if len(out) == workers or j >= len(bounds) or cost(a, bounds[j]) > limit:
                return None
            while j + 1 < len(bounds) and cost(a, bounds[j + 1]) <= limit:
                j += 1
            out.append((a, bounds[j]))
            a, j = bounds[j], j + 1
        return out

    lo, hi = 0.0, cost(start, stop)
    best = split(hi) or [(start, stop)]
    for _ in range(40):
        mid = (lo + hi) / 2
        found = split(mid)
        if found is None:
            lo = mid
        else:
            hi, best = mid, found
        if hi - lo < 0.25:
            break
    return best


def auto_workers(n_frames: int | None, every: int = 1) -> int:
    """Worker processes for ``n_frames`` frames: one per CPU core, each with enough work for its start-up.

    Args:
        n_frames: frames to extract (``None`` = unknown: one worker).
        every: keyframe stride; a worker needs at least ``MIN_DETECTIONS_PER_WORKER`` detections.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if n_frames is None:
        return 1
    return max(1, min(cores, -(-n_frames // every) // MIN_DETECTIONS_PER_WORKER))


def auto_detect_every(fps: float, n_frames: int | None = None, *, detector: str = DEFAULT_DETECTOR,
                      is_folder: bool = False) -> int:
    """Keyframe stride chosen by ``detect_every="auto"``: about 8 detections per second of video.

    ``round(fps / AUTO_DETECTIONS_PER_SECOND)`` (halves round up), at most ``MAX_DETECT_EVERY``: 16 fps -> 2,
    24 and 25 fps -> 3, 30 fps -> 4, 48 fps and more -> 5. It is 1 (every frame) below ``MIN_FPS_FOR_STRIDE``
    fps, for sequences shorter than ``MIN_SECONDS_FOR_STRIDE`` seconds or of unknown length, for folders
    of images (not necessarily consecutive video frames) and for detectors other than mediapipe.

    Measured on examples/assets/dance.mp4 (24 fps, fast dance) against detecting every frame, error on the
    in-between frames in % of body height, median / 95th percentile (``benchmarks/bench_pose_extract.py
    --accuracy``): stride 3 with the spline between keyframes -> body 0.36 / 1.18, hands 0.21-0.52 /
    2.2-2.6, face 0.20 / 0.90; the same stride with straight lines gave body 0.38 / 1.44 and face
    0.26 / 0.97, and stride 2 with straight lines body 0.29 / 1.06. The detector's own frame-to-frame
    jitter is 0.44 % (median), above all of these.

    Args:
        fps: frames per second of the (stepped) sequence.
        n_frames: number of frames, if known.
        detector: detector name.
        is_folder: the frames come from a folder of images.
    """
    if detector != "mediapipe" or is_folder or not fps >= MIN_FPS_FOR_STRIDE:
        return 1
    if n_frames is None or n_frames < MIN_SECONDS_FOR_STRIDE * fps:
        return 1
    return int(max(1, min(MAX_DETECT_EVERY, np.floor(fps / AUTO_DETECTIONS_PER_SECOND + 0.5))))


def interpolate_between_keyframes(keypoints: np.ndarray, status: np.ndarray,
                                  keyframe: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fill the frames between consecutive keyframes from the two detections around them.

    Between two keyframes that both found the person, each keypoint present in both is interpolated: ``x``,
    ``y`` along a modified Akima spline through that keypoint's detections on all keyframes
    (:func:`pose.gaps.spline_fill`; it follows curved motion, and reproduces linear motion exactly), the score
    linearly. A keypoint present in only one of the two is held from it, one in neither is left
    missing where neither has it; those frames get status ``INTERPOLATED``. Frames next to a keyframe
    without a person stay ``MISSING`` (for :func:`pose.gaps.fill_gaps` to handle).

    Args:
        keypoints: ``(T, K, 3)`` float32; rows of non-keyframes are ignored (overwritten).
        status: ``(T,)`` uint8 :class:`FrameStatus` (keyframes hold the detector's status).
        keyframe: ``(T,)`` bool, frames the detector ran on.

    Returns:
        New ``(keypoints, status)`` arrays.
    """
    kps = np.array(keypoints, dtype=np.float32, copy=True)
    st = np.array(status, dtype=np.uint8, copy=True)
    kf = np.flatnonzero(keyframe)
    inner = ~np.asarray(keyframe, bool)
    kps[inner] = np.nan
    kps[inner, :, 2] = 0.0
    st[inner] = FrameStatus.MISSING
    present = keypoint_valid(kps)
    both = np.zeros(present.shape, bool)
    for a, b in zip(kf[:-1], kf[1:]):
        if b - a < 2 or st[a] != FrameStatus.DETECTED or st[b] != FrameStatus.DETECTED:
            continue
        w = (np.arange(1, b - a, dtype=np.float32) / (b - a))[:, None, None]
        ka, kb = kps[a], kps[b]
        va, vb = present[a], present[b]
        mid = np.where((va & vb)[None, :, None], (1.0 - w) * ka + w * kb, np.nan)
        mid[:, va & ~vb] = ka[va & ~vb]
        mid[:, vb & ~va] = kb[vb & ~va]
        mid[:, ~(va | vb), 2] = 0.0
        kps[a + 1:b] = mid
        st[a + 1:b] = FrameStatus.INTERPOLATED
        both[a + 1:b] = (va & vb)[None, :]
    if both.any():
        from .gaps import spline_fill

        knots = present & (st == FrameStatus.DETECTED)[:, None] & np.asarray(keyframe, bool)[:, None]
        spline_fill(kps, knots, both, kps)
    return kps, st


def _worker_start_method(name: str, allow_fork: bool = True) -> str | None:
    """Start method for worker processes, or None when none works here (then one worker is used).

    ``fork`` (Linux) is cheapest and works for any caller, including scripts read from stdin or without an
    ``if __name__ == "__main__":`` guard. It is used for the mediapipe detector while this process has not
    created a mediapipe graph: a child forked after one crashes (heap corruption), even once it is closed.
    Otherwise ``spawn``, which re-imports the caller's main module, so that module must be a file on disk.

    Args:
        name: detector name.
        allow_fork: False when the child would need OpenCV (whose thread pool does not survive fork).
    """
    if (allow_fork and name == "mediapipe" and sys.platform.startswith("linux")
            and "fork" in mp.get_all_start_methods()):
        holistic = sys.modules.get("pose.detectors.mediapipe_holistic")
        if not _FORK_STATE["failed"] and (holistic is None or holistic.graphs_created() == 0):
            return "fork"
    main = sys.modules.get("__main__")
    main_file = getattr(main, "__file__", None)
    if getattr(main, "__spec__", None) is not None or main_file is None or Path(main_file).is_file():
        return "spawn"
    return None


def _run_parallel(path: str, name: str, options: dict, ranges: list[tuple[int, int | None]], step: int,
                  max_size: int | None, fps: float | None, every: int, bar: tqdm,
                  method: str, pin: bool, after_start: Callable[[], Any] | None = None,
                  exact_stop: int | None = None, with_looks: bool = True) -> tuple[list[_RangeResult], list[int]]:
    """Run one worker per frame range; returns their results and the sequence offset of each range.

    ``after_start`` runs in this process once every worker has started (so after any fork). ``exact_stop``:
    the true end of the frames when known exactly; the ranges' frame counts are then passed to the workers.
    ``with_looks``: see :func:`_detect_stream`.
    """
    if method == "fork":
        _preload_detector(name)  # imported once here (no-op if done), inherited by every worker
    ctx = mp.get_context(method)
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pin = pin and 1 < len(ranges) <= len(cores)
    offsets = [len(range(ranges[0][0], a, step)) for a, _ in ranges]  # sequence position of each range
    out_q = ctx.Queue()
    procs = []
    for i, (a, b) in enumerate(ranges):
        last = i == len(ranges) - 1
        count = (b if b is not None else exact_stop) - a if exact_stop is not None and step == 1 else None
        kwargs = dict(every=every, offset=offsets[i], detect_tail=last, cpu=cores[i] if pin else None,
                      in_worker=len(ranges) > 1, count=count, with_looks=with_looks)
        procs.append(ctx.Process(target=_worker_main, args=(i, (path, name, options, a, b, step, max_size, fps),
                                                             kwargs, out_q),
                                 daemon=True, name=f"pose-extract-{i}"))
    for p in procs:
        p.start()
    results: dict[int, _RangeResult] = {}
    try:
        if after_start is not None:
            after_start()
        last_message = time.monotonic()
        while len(results) < len(procs):
            try:
                kind, job, payload = out_q.get(timeout=1.0)
            except queue.Empty:
                dead = [p for i, p in enumerate(procs) if i not in results and not p.is_alive()]
                if dead and out_q.empty():
                    raise _WorkerLost(f"pose extraction worker {dead[0].name} died (exit code {dead[0].exitcode})")
                if time.monotonic() - last_message > WORKER_STALL_TIMEOUT_S:
                    raise _WorkerLost(f"pose extraction workers sent nothing for {WORKER_STALL_TIMEOUT_S:g} s")
                continue
            last_message = time.monotonic()
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
    return [results[i] for i in range(len(procs))], offsets


def _assemble(parts: list[tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate range results into ``(keypoints (T, K, 3), status (T,), keyframe (T,), looks (T, S))``."""
    total = sum(int(p[3]) for p in parts)
    kps = empty_keypoints(total)
    status = np.full(total, FrameStatus.MISSING, np.uint8)
    keyframe = np.zeros(total, bool)
    looks = np.full((total, SIGNATURE_SIZE), np.nan, np.float32)
    base = 0
    for positions, k, s, n, _, look in parts:
        idx = base + np.asarray(positions, np.int64)
        kps[idx], status[idx], keyframe[idx], looks[idx] = k, s, True, look
        base += int(n)
    return kps, status, keyframe, looks


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
    workers: int | Literal["auto"] = "auto",
    detect_every: int | Literal["auto"] = "auto",
    detector_options: dict | None = None,
    fps: float | None = None,
    max_size: int | Literal["auto"] | None = "auto",
    detect_skeleton: bool = True,
    while_detecting: Callable[[], Any] | None = None,
    max_scale_jump: float | None = DEFAULT_MAX_JUMP,
    find_small_person: bool = True,
    follow_identity: bool = True,
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
        workers: detector processes; ``"auto"`` (default) uses one per CPU core when each gets at least
            ``MIN_DETECTIONS_PER_WORKER`` (24) detections. Only video files use more than one (folders and
            ready detectors run in this process). On Linux workers are forked, so any script can call this
            (no ``if __name__ == "__main__":`` guard needed) as long as this process has not itself run a
            mediapipe graph; otherwise they are spawned, and where the caller's main module cannot be
            re-imported (a script read from stdin) one worker is used, with a warning.
        detect_every: keyframe stride ``N``: every frame is decoded but the detector runs only on every
            ``N``-th frame of the sequence (and on the last one); the frames in between are interpolated
            from the two detections around them (:func:`interpolate_between_keyframes`) and get status
            ``INTERPOLATED``. ``"auto"`` (default) picks about 8 detections per second of video
            (:func:`auto_detect_every`: 3 at 24 fps, 4 at 30 fps, 1 for short clips and folders); ``1``
            detects every frame. The result's ``meta["detect_every"]`` records it, and
            :meth:`PoseSequence.detection_rate` counts keyframes only.
        detector_options: keyword options for :func:`pose.detectors.create_detector`.
        fps: override the source frame rate (folders default to 24).
        max_size: decode frames with their long side shrunk to this many pixels; ``"auto"`` (default)
            uses the detector's working size (960 for mediapipe, full size otherwise).
        detect_skeleton: when the first frame looks like a rendered OpenPose skeleton
            (:func:`pose.skeleton_parse.is_skeleton_image`), read poses back from the drawing instead of
            running ``detector``. Default True.
        while_detecting: called once, in this process, while the worker processes detect (right after they
            start), or before detecting when no workers are used: other start-up work (e.g. preparing the
            character) then overlaps the detection. It may create mediapipe graphs; if it raises, the workers
            are stopped and the exception propagates.
        max_scale_jump: reject a detection whose body is more than this many times larger or smaller than
            the detections within a second of it (a collapsed skeleton from a person half out of the frame,
            :func:`pose.outliers.implausible_frames`); rejected frames are filled like frames without a
            person and listed in ``meta["rejected_frames"]``. ``None`` keeps every detection. Default 1.6.
        find_small_person: when the mediapipe detector finds the person in fewer than
            :data:`SEARCH_BELOW` of the frames, search a few frames tile by tile for a person too small for it
            (:mod:`pose.person_search`) and, if found, detect again with every frame cropped to a window
            around every place they were found (``detector_options["crop"]``) or, when that is not enough
            (a dancer crossing the frame), following them from keyframe to keyframe
            (``detector_options["follow"]``); a pass is kept when it finds the person in more frames.
            Default True.
        follow_identity: when detections stop looking like the person of the first ones (someone else
            crossing in front of them took the tracker), detect those frames again with the other person
            painted over and keep the followed person where they are found (:mod:`pose.identity`); frames
            where they are hidden are interpolated between two sightings up to 3 s apart, else filled like
            misses. ``meta["identity_runs"]`` lists what was found.
            Not done for skeleton videos or with a detection window (``crop``/``follow``). Default True.

    Returns:
        :class:`PoseSequence` in source-frame pixels with ``meta`` recording source, detector and options.

    Raises:
        InputError: invalid range, ``workers``, ``detect_every`` or ``max_size``. ConfigError: invalid
            ``max_interp_gap``, ``smoothing`` or ``max_scale_jump``. (Arguments are checked before any
            decoding or detection.) VideoError: the source cannot be read. NoPersonError: no frame has a
            person. DetectorError: the detector cannot be created.
    """
    if step < 1 or start < 0 or (end is not None and end <= start):
        raise InputError(f"invalid frame range start={start} end={end} step={step}; use 0 <= start < end and step >= 1")
    if detect_every != "auto" and (isinstance(detect_every, bool) or not isinstance(detect_every, (int, np.integer))
                                   or detect_every < 1):
        raise InputError(f"detect_every must be an integer >= 1 or 'auto', got {detect_every!r}")
    if workers != "auto" and (isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1):
        raise InputError(f"workers must be an integer >= 1 or 'auto', got {workers!r}")
    _check_postprocessing(max_interp_gap, smoothing, max_scale_jump, max_size)
    overlap = _Once(while_detecting)
    if isinstance(source, PoseSequence):
        overlap()
        seq = source.slice(start, end, step)
        if len(seq) == 0:
            raise InputError(f"pose sequence has no frames in range start={start} end={end}; widen the range")
        return _postprocess(seq, fill_gaps, max_interp_gap, smoothing)
    path = Path(source)
    options = dict(detector_options or {})
    name = _resolve_detector_name(detector)

    # The start-up steps overlap: mediapipe's import (for this process and the forked workers) and the packet
    # listing run in threads while this one checks for a rendered skeleton video, whose ffmpeg call also
    # reads (and caches) the header that open_video needs.
    t0 = time.perf_counter()
    preload = _Background(_preload_detector, name) if not isinstance(detector, Detector) else None
    packets = _Background(index_packets, path) if path.is_file() else None
    is_skeleton = (detect_skeleton and name != "skeleton" and not isinstance(detector, Detector)
                   and _looks_like_skeleton(path))
    with open_video(path, fps, start=start, end=end) as probe:
        src_fps, total = probe.fps, probe.frame_count
        width, height = probe.source_width, probe.source_height
        is_folder = path.is_dir()
        header_count = probe.header_frame_count
    # The packet listing gives the exact frame count (the header's duration only an estimate) and where
    # decoding can start, for splitting the work and for letting the decoders drop non-keyframes.
    index = packets.result() if packets is not None else None
    if (index is not None and header_count is not None
            and index.frame_count - header_count > 2 + 0.02 * header_count):
        # e.g. interlaced streams with a packet per field: the packets do not count frames here
        logger.info("%s: %d packets but about %d frames by the header; not using the packet index", path,
                    index.frame_count, header_count)
        index = None
    elif index is not None and header_count is not None and header_count - index.frame_count > 2:
        # the header's duration is the file's: an audio track that runs on past the picture (or starts
        # before it) makes it longer than the video, whose frames the packets count
        logger.info("%s: %d video frames; the file runs longer (about %d frames: its audio?)", path,
                    index.frame_count, header_count)
    if index is not None:
        total = max(0, (index.frame_count if end is None else min(end, index.frame_count)) - start)
    if total is not None and total <= 0 and start > 0:
        raise InputError(f"video {path} ends before frame {start}; choose a start frame inside the video")
    if is_skeleton:
        logger.info("%s looks like a rendered skeleton video; reading poses from the drawing", path)
        name, options = "skeleton", {}
    if preload is not None:
        preload.result()

    if max_size == "auto":
        max_size = None if isinstance(detector, Detector) else _detector_max_size(name, options)

    n_expected = None if total is None else len(range(0, total, step))
    every = (auto_detect_every(src_fps / step, n_expected, detector=name, is_folder=is_folder)
             if detect_every == "auto" else int(detect_every))

    def checks_identity(options: dict) -> bool:
        """Whether the detections with ``options`` are checked for a switch of person (:mod:`pose.identity`):
        not for skeleton videos, nor inside a detection window (the caller picked the person)."""
        return follow_identity and name != "skeleton" and not set(WINDOW_OPTIONS) & set(options)

    def detect_all(options: dict, single: bool = False) -> tuple[list, int]:
        """Run the detector (with ``options``; in this process alone with ``single``) over the range;
        ``(parts, workers used)``."""
        with_looks = checks_identity(options)
        bar = tqdm(total=n_expected, desc=f"poses {path.name}", unit="frame", disable=not progress)
        n_workers = 1
        try:
            if isinstance(detector, Detector):
                overlap()
                detector.reset()
                with open_video(path, fps, max_size=max_size, start=start, end=end) as src:
                    frames = _StepSource(src, step)
                    positions, k, s, n, looks = _detect_stream(detector, frames, every, 0, True, bar.update,
                                                               with_looks=with_looks)
                    parts = [(positions, k, s, n, frames.read, looks)]
            else:
                n_workers = auto_workers(n_expected, every) if workers == "auto" else int(workers)
                if single:
                    n_workers = 1
                if is_folder or total is None or name == "skeleton":
                    n_workers = 1
                stop = start + total if total is not None else None
                ranges = []
                if stop is not None and n_workers > 1:
                    if index is not None and step == 1:
                        ranges = _balanced_chunks(start, stop, n_workers, every, index.keyframes,
                                                  DECODE_COST_PER_MEGAPIXEL * width * height / 1e6)
                    else:
                        ranges = _chunks(start, stop, step, n_workers, every)
                # A forked child must not call OpenCV (its thread pool does not survive fork): folders decode with
                # OpenCV, and the detector resizes with it when frames arrive larger than its working size.
                det_size = _detector_max_size(name, options)
                resizes = det_size is not None and (max_size is None or max_size > det_size)
                method = _worker_start_method(name, allow_fork=not (is_folder or resizes))
                if len(ranges) > 1 and method is None:
                    logger.warning("cannot start pose worker processes from a main module that is not a file on disk "
                                   "(%s); using 1 worker", getattr(sys.modules.get("__main__"), "__file__", "?"))
                if len(ranges) <= 1 and method == "fork":
                    # one forked worker: this process never creates a graph, so later calls can still fork
                    ranges = [(start, stop if stop is not None else end)]  # an end past the video: its true end
                if ranges and method is not None:
                    if end is None:
                        ranges[-1] = (ranges[-1][0], None)  # to the true end, whatever the header said
                    while method is not None:
                        try:
                            parts, _ = _run_parallel(str(path), name, options, ranges, step, max_size, fps, every,
                                                     bar, method, PIN_WORKERS,
                                                     after_start=lambda: (overlap(), _import_postprocessing()),
                                                     exact_stop=stop if index is not None else None,
                                                     with_looks=with_looks)
                            n_workers = len(ranges)
                            break
                        except _WorkerLost as exc:
                            retry = None
                            if method == "fork":
                                _FORK_STATE["failed"] = True  # e.g. a mediapipe graph nobody reported: stop forking
                                retry = _worker_start_method(name)
                            logger.warning("%s; extracting %s again %s", exc, path,
                                           f"with {retry} workers" if retry else "in this process")
                            bar.reset()
                            method = retry
                if not (ranges and method is not None):
                    n_workers = 1
                    overlap()
                    parts = [_detect_range(str(path), name, options, start, end, step, max_size, fps, every,
                                           progress_cb=bar.update, count=total if index is not None else None,
                                           with_looks=with_looks)]
        finally:
            bar.close()
        return parts, n_workers

    def detect_one_person(options: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int]:
        """:func:`detect_all`, again in one process when the workers followed different people;
        ``(keypoints, status, keyframe, looks, workers, frames decoded)``."""
        parts, n_workers = detect_all(options)
        kps, status, keyframe, looks = _assemble(parts)
        decoded = sum(int(p[4]) for p in parts)
        switch = _person_switch(kps, status, np.cumsum([int(p[3]) for p in parts])[:-1], src_fps / step)
        if switch is not None:
            logger.warning("%s: the pose workers tracked different people on either side of frame %d (more than "
                           "one person in the video?); detecting again in one process, which follows one person "
                           "throughout", path, start + switch * step)
            parts, n_workers = detect_all(options, single=True)
            kps, status, keyframe, looks = _assemble(parts)
            decoded += sum(int(p[4]) for p in parts)
        return kps, status, keyframe, looks, n_workers, decoded

    kps, status, keyframe, looks, n_workers, decoded = detect_one_person(options)
    given_options = options
    if len(kps) == 0:
        raise VideoError(f"video {path} has no frames in range start={start} end={end}; check the range")
    rate = _found_share(status, keyframe)
    if (find_small_person and name == "mediapipe" and not isinstance(detector, Detector)
            and not set(WINDOW_OPTIONS) & set(options) and rate < SEARCH_BELOW):
        from .person_search import SEARCH_FRAMES, search_window

        picks = np.unique(np.linspace(0, len(kps) - 1, SEARCH_FRAMES).round().astype(int))
        search = search_window(path, name, options, [start + int(i) * step for i in picks], fps=fps,
                               max_size=max_size)
        # a fixed window around every place the person was found (cheap: tracking, parallel workers) while
        # it helps, else following them from keyframe to keyframe (a dancer crossing a wide stage)
        tries = []
        if search.small:
            tries += [{**options, "crop": [round(v, 6) for v in search.window]}] if search.window else []
            tries += [{**options, "follow": True}]
        for opts in tries:
            how = "inside a window around them" if "crop" in opts else "following them from frame to frame"
            logger.warning("%s: the detector found the person in %.0f%% of the frames; a search found them small "
                           "in %d of %d frames: detecting again %s", path, 100 * rate, search.found,
                           search.searched, how)
            k2, s2, kf2, looks2, workers_again, decoded_again = detect_one_person(opts)
            decoded += decoded_again
            rate2 = _found_share(s2, kf2)
            if len(k2) != len(kps) or rate2 <= rate:
                logger.warning("%s: that found the person in %.0f%% of the frames; not kept", path, 100 * rate2)
                continue
            kps, status, keyframe, looks, options, n_workers, rate = k2, s2, kf2, looks2, opts, workers_again, rate2
            if rate >= SEARCH_BELOW:
                break
    t_detect = time.perf_counter() - t0
    if not np.any(status == FrameStatus.DETECTED):
        raise NoPersonError(
            f"no person detected in any of the {int(keyframe.sum())} frames of {path} the detector ran on; check "
            f"that one person is fully visible, or try another detector (available: mediapipe, openpose)"
        )
    runs: list[RunResult] = []
    if checks_identity(options):
        runs = _follow_identity(path, name, options, detector, kps, status, keyframe, looks, start, step,
                                max_size, fps, src_fps / step)
    rejected = _reject_implausible(kps, status, src_fps / step, max_scale_jump, path)
    if every > 1:
        kps, status = interpolate_between_keyframes(kps, status, keyframe)
    if runs:
        bridged = identity.bridge_hidden(kps, status, runs, round(identity.BRIDGE_SECONDS * src_fps / step))
        if bridged:
            logger.info("%s: %d frames where the followed person was hidden interpolated", path, bridged)
    det_opts = detector.options() if isinstance(detector, Detector) else options
    meta = {
        "source": str(path),
        "detector": name,
        "detector_options": det_opts,
        "person_search": options is not given_options,  # the window / following came from the search
        "start": start, "end": end, "step": step,
        "source_fps": src_fps,
        "decode_max_size": max_size,
        "workers": n_workers,
        "detect_every": every,
        "detections": int(keyframe.sum()),
        "max_scale_jump": max_scale_jump,
        "rejected_frames": [int(t) for t in rejected],
        "identity_runs": identity.describe(runs, start, step) if runs else [],
        "frames_decoded": int(decoded),
        "fill_gaps": bool(fill_gaps), "max_interp_gap": int(max_interp_gap),
        "smoothing": _smoothing_meta(smoothing),
    }
    seq = PoseSequence(kps, width, height, src_fps / step, status,
                       np.where(status == FrameStatus.DETECTED, body_confidence(kps), 0.0).astype(np.float32),
                       meta)
    logger.info("%s: %d frames (detector on every %d), detection rate %.1f%%, %.1f frames/s", path, len(seq),
                every, 100 * seq.detection_rate(), len(seq) / max(t_detect, 1e-9))
    if index is not None and index.times is not None and fps is None:
        seq = _even_clock(seq, index.times[start:start + len(seq) * step:step], path)
    return _postprocess(seq, fill_gaps, max_interp_gap, smoothing)


def _found_share(status: np.ndarray, keyframe: np.ndarray) -> float:
    """Share of the keyframes (frames the detector ran on) where it found the person."""
    return float(np.mean(status[keyframe] == FrameStatus.DETECTED)) if keyframe.any() else 0.0


def _even_clock(seq: PoseSequence, times: np.ndarray, path: Path) -> PoseSequence:
    """``seq`` resampled at its video's nominal rate when its frames are shown unevenly (:mod:`pose.frame_times`)."""
    from .frame_times import is_uneven, nominal_rate, to_even_clock

    if len(times) != len(seq) or not is_uneven(times):
        return seq
    rate = round(nominal_rate(times), 3)  # 24.000000000000007 -> 24, 30000/1001 -> 29.97
    out = to_even_clock(seq, times, rate)
    logger.warning("%s shows its frames unevenly (a variable frame rate, e.g. a stalling screen recording): "
                   "%d frames over %.2f s put back on an even %.5g fps clock (%d frames), so that the motion "
                   "keeps time with the audio", path, len(seq), float(times[-1] - times[0]), rate, len(out))
    return out


#: Where two pose workers' ranges meet, their poses (last detection before, first after) whose torsos lie more
#: than this many torso lengths apart are two different people (each worker starts tracking afresh).
SWITCH_TORSOS = 0.5
_TORSO = [layout.B[n] for n in ("neck", "right_shoulder", "left_shoulder", "right_hip", "left_hip")]


def _person_switch(kps: np.ndarray, status: np.ndarray, boundaries: np.ndarray, fps: float) -> int | None:
    """The first range boundary (sequence position) across which the detections jump to another person.

    Compares the last detection before each boundary with the first one after it, when both lie within a
    second of it: the mean displacement of the torso points seen in both, in torso lengths (neck to the
    middle of the hips), above :data:`SWITCH_TORSOS`.
    """
    detected = np.flatnonzero(status == FrameStatus.DETECTED)
    for b in boundaries:
        before, after = detected[detected < b], detected[detected >= b]
        if not len(before) or not len(after) or after[0] - before[-1] > fps:
            continue
        p, q = kps[before[-1]], kps[after[0]]
        seen = keypoint_valid(p[_TORSO], 0.3) & keypoint_valid(q[_TORSO], 0.3)
        if seen.sum() < 2 or not (seen[0] and (seen[3] or seen[4])):
            continue
        a, c = p[_TORSO, :2], q[_TORSO, :2]
        hips = [i for i in (3, 4) if seen[i]]
        torso = 0.5 * sum(float(np.linalg.norm(k[0] - k[hips].mean(axis=0))) for k in (a, c))
        shift = float(np.linalg.norm(a[seen].mean(axis=0) - c[seen].mean(axis=0)))
        if torso > 0 and shift > SWITCH_TORSOS * torso:
            return int(b)
    return None


def _follow_identity(path: Path, name: str, options: dict, detector: str | Detector, kps: np.ndarray,
                     status: np.ndarray, keyframe: np.ndarray, looks: np.ndarray, start: int, step: int,
                     max_size: int | None, fps: float | None, rate: float) -> list[RunResult]:
    """Find the runs of detections that look like someone else and detect them again
    (:func:`pose.identity.recover_runs`), editing ``kps``/``status`` in place; the runs' results.
    ``fps`` overrides the source's frame rate (folders); ``rate`` is the sequence's."""
    reference = identity.reference_appearance(looks)
    if reference is None:
        return []
    distances = identity.distances_to(reference, looks)
    if np.isfinite(distances).any():
        logger.debug("%s: appearance distance to the first detections: median %.3f, max %.3f", path,
                     float(np.nanmedian(distances)), float(np.nanmax(distances)))
    runs = identity.stranger_runs(distances)
    if not runs:
        return []

    def frames(first: int, last: int) -> Iterator[tuple[int, np.ndarray, tuple[float, float]]]:
        with open_video(path, fps, max_size=max_size, start=start + first * step,
                        end=start + last * step + 1) as src:
            for i, rgb in enumerate(src if step == 1 else _StepSource(src, step)):
                yield first + i, rgb, src.scale

    def fresh_detector() -> Detector:
        if isinstance(detector, Detector):
            detector.reset()
            return _Borrowed(detector)
        return create_detector(name, **options)

    results = identity.recover_runs(runs, kps, status, keyframe, reference, frames, fresh_detector, rate, looks)
    for r in results:
        first, last = start + r.first * step, start + r.last * step
        if r.kept:
            logger.info("%s: frames %d-%d look unlike the person of the first frames, but nobody more like them "
                        "was found there; kept", path, first, last)
        elif r.other_seen:
            logger.warning("%s: frames %d-%d show someone who looks different (another person crossing in front?), "
                           "seen apart from the first person after them; the first person is taken as hidden there",
                           path, first, last)
        else:
            logger.warning("%s: from frame %d the detector followed someone who looks different (another person "
                           "crossing in front?); the first person was found again in %d of the %d frames detected "
                           "up to frame %d; in the other %d they are hidden", path, first, len(r.recovered),
                           len(r.recovered) + len(r.hidden), last, len(r.hidden))
    return results


class _Borrowed(Detector):
    """A caller's detector lent to :func:`_follow_identity`: closing it only resets its tracking."""

    def __init__(self, inner: Detector) -> None:
        self.inner = inner

    def __call__(self, rgb: np.ndarray) -> PoseFrame:
        return self.inner(rgb)

    def close(self) -> None:
        self.inner.reset()


def _reject_implausible(kps: np.ndarray, status: np.ndarray, fps: float, max_jump: float | None,
                        path: Path) -> np.ndarray:
    """Mark detections with an implausible body size (:mod:`pose.outliers`) ``MISSING``, in place."""
    if max_jump is None:
        return np.zeros(0, np.int64)
    bad = implausible_frames(kps, status == FrameStatus.DETECTED, fps, max_jump=max_jump)
    if bad.any():
        kps[bad] = np.nan
        kps[bad, :, 2] = 0.0
        status[bad] = FrameStatus.MISSING
        shown = ", ".join(str(int(t)) for t in np.flatnonzero(bad)[:10]) + (", ..." if bad.sum() > 10 else "")
        logger.warning("%s: %d detections rejected: the body is over %.2gx larger or smaller than within a second "
                       "around (frames %s); they are filled like frames without a person", path, int(bad.sum()),
                       max_jump, shown)
    return np.flatnonzero(bad)


def _looks_like_skeleton(path: Path) -> bool:
    from .skeleton_parse import is_skeleton_image

    try:
        first = first_frame(path)
    except (VideoError, InputError):  # the header probe reports what is wrong with the file
        return False
    return is_skeleton_image(first)


#: Smallest ``max_size`` of :func:`extract_poses` (pixels, the long side); mediapipe's own lower limit.
MIN_DECODE_SIZE = 64


def _check_postprocessing(max_interp_gap: Any, smoothing: Any, max_scale_jump: Any, max_size: Any) -> None:
    """Check the arguments of :func:`extract_poses` that are only used after detection, before it runs."""
    from .gaps import _check_max_gap
    from .smoothing import OneEuroConfig, _per_keypoint_params

    _check_max_gap(max_interp_gap)
    if smoothing is not None and not isinstance(smoothing, bool):
        if not isinstance(smoothing, (OneEuroConfig, Mapping)):
            raise ConfigError(f"smoothing must be True, False/None, a OneEuroConfig or a dict part -> OneEuroConfig, "
                              f"got {smoothing!r}")
        _per_keypoint_params(smoothing)
    if max_scale_jump is not None and (isinstance(max_scale_jump, bool)
                                       or not isinstance(max_scale_jump, (int, float, np.integer, np.floating))
                                       or not max_scale_jump > 1.0):
        raise ConfigError(f"max_scale_jump must be a number > 1 (or None to keep every detection), "
                          f"got {max_scale_jump!r}")
    if max_size not in ("auto", None) and (isinstance(max_size, bool) or not isinstance(max_size, (int, np.integer))
                                           or max_size < MIN_DECODE_SIZE):
        raise InputError(f"max_size must be 'auto', None (full size) or an integer >= {MIN_DECODE_SIZE} (pixels of "
                         f"the long side), got {max_size!r}")


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


#: Detection rate (of the keyframes) below which :func:`extract_poses` searches for a small person.
SEARCH_BELOW = 0.5

#: Margins (fraction of the longer side, every side, edge pixels repeated) of the retries of
#: :func:`detect_image` when the image as framed shows no person. Mediapipe's person detector misses
#: characters that fill the frame and are cut at the knees (tests/data/ref/anyone-1.png, an anime
#: half-body), and finds them once the image has room around them.
PAD_RETRIES = (0.25, 0.5)


def with_margins(rgb: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """Copies of ``rgb`` with the margins of :data:`PAD_RETRIES` (edge pixels repeated), as ``(pad, copy)``;
    ``pad`` is the margin in pixels on every side."""
    import cv2

    h, w = rgb.shape[:2]
    for fraction in PAD_RETRIES:
        pad = round(fraction * max(h, w))
        yield pad, cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)


#: A person whose visible keypoints span less than this fraction of the image's height and of its width is
#: detected again on a crop around them (:func:`zoom_window`). Mediapipe finds a character that is 25 % of
#: the image's height (a full-body figure in a wide shot) but places the ankles at the knees, and its
#: segmentation of the whole image is empty; on the crop both are right.
ZOOM_BELOW = 0.5

#: Side of that crop in multiples of the keypoints' extent: the head's top, hair, a wide skirt and the
#: feet lie outside the keypoints, and the first, coarse detection can place them too close together.
ZOOM_CONTEXT = 2.2


def zoom_window(pose: PoseFrame, threshold: float = 0.3) -> tuple[int, int, int, int] | None:
    """Crop ``(x0, y0, x1, y1)`` (pixels, clipped to the image) around a person who is small in their image.

    Returns ``None`` when the visible keypoints span at least :data:`ZOOM_BELOW` of the image's height or
    width (nothing to gain), or no keypoint is visible. The crop is a square of :data:`ZOOM_CONTEXT` times
    the keypoints' larger extent, centred on them.
    """
    box = pose.bbox(threshold)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    if y1 - y0 >= ZOOM_BELOW * pose.height or x1 - x0 >= ZOOM_BELOW * pose.width:
        return None
    return square_window(pose, ZOOM_CONTEXT, threshold)


def square_window(pose: PoseFrame, context: float, threshold: float = 0.3) -> tuple[int, int, int, int] | None:
    """Square ``(x0, y0, x1, y1)`` (pixels, clipped to the image) of ``context`` times the larger extent of
    the visible keypoints, centred on them; ``None`` without a visible keypoint or when under 2 px."""
    box = pose.bbox(threshold)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    half = 0.5 * context * max(x1 - x0, y1 - y0, 1.0)
    cx, cy = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
    window = (max(0, int(np.floor(cx - half))), max(0, int(np.floor(cy - half))),
              min(pose.width, int(np.ceil(cx + half))), min(pose.height, int(np.ceil(cy + half))))
    return window if window[2] - window[0] >= 2 and window[3] - window[1] >= 2 else None


def zoom_in(detector: Detector, rgb: np.ndarray, frame: PoseFrame, label: str) -> PoseFrame:
    """Detect again, with ``detector``, on the :func:`zoom_window` around the small person of ``frame`` (a
    pose on ``rgb``; ``label`` names the image in the log); ``frame`` itself when the person is not small or
    the crop shows nobody."""
    window = zoom_window(frame)
    if window is None:
        return frame
    found = detect_in_window(detector, rgb, window)
    if not found.has_person:
        return frame
    logger.info("the person in %s is small; detected again on the %dx%d crop around them", label,
                window[2] - window[0], window[3] - window[1])
    return found


def _detect_padded(detector: Detector, rgb: np.ndarray, label: str) -> PoseFrame:
    """Detect on copies of ``rgb`` with margins (:func:`with_margins`); the pose comes back in ``rgb``'s pixels."""
    h, w = rgb.shape[:2]
    for pad, padded in with_margins(rgb):
        found = detector(padded)
        if found.has_person:
            logger.info("no person in %s as framed; found one with a %d%% margin around it", label,
                        round(100 * pad / max(h, w)))
            return found.transformed(np.array([[1.0, 0.0, -pad], [0.0, 1.0, -pad]]), w, h)
    return PoseFrame.empty(w, h)


_SHOULDERS_HIPS = _TORSO[1:]  # the torso points without the neck
#: Score the shoulders and hips of a person found only on a tile must reach: on a tile, mediapipe also
#: "finds" people in an arm or a cloud (tests/data/no_person.png: a hand, hips scored 0.3 above the shoulders).
TILE_TORSO_SCORE = 0.5


def upright_torso(frame: PoseFrame) -> bool:
    """Shoulders and hips confidently found, the shoulders above the hips."""
    torso = frame.keypoints[_SHOULDERS_HIPS]
    if not (np.nan_to_num(torso[:, 2]) >= TILE_TORSO_SCORE).all():
        return False
    return bool(torso[:2, 1].mean() < torso[2:, 1].mean())


def _detect_anywhere(detector: Detector, rgb: np.ndarray, label: str) -> PoseFrame:
    """The person in ``rgb``: as framed, else with margins around the image (:func:`_detect_padded`: a
    character filling the frame), else on tiles (:func:`pose.person_search.find_in_tiles`: a character too
    small for the detector's view of the whole image); a small one is then detected again on a crop around
    them (:func:`zoom_in`). Empty when nobody is found."""
    from .person_search import find_in_tiles

    frame = detector(rgb)
    if not frame.has_person:
        frame = _detect_padded(detector, rgb, label)
    if frame.has_person:
        return zoom_in(detector, rgb, frame, label)
    frame = find_in_tiles(rgb, detector)
    if not frame.has_person:
        return frame
    frame = zoom_in(detector, rgb, frame, label)
    if not upright_torso(frame):
        logger.info("no person in %s; a part of it gave only a doubtful pose (%s), left out", label,
                    "torso scores " + ", ".join(f"{v:.2f}" for v in np.nan_to_num(frame.keypoints[_SHOULDERS_HIPS, 2])))
        return PoseFrame.empty(frame.width, frame.height)
    logger.info("no person in %s as a whole; found one on a part of it", label)
    return frame


def detect_image(image, detector: str | Detector = DEFAULT_DETECTOR, *,
                 detector_options: dict | None = None, detect_skeleton: bool = True) -> PoseFrame:
    """Detect the person in one image (e.g. the reference character).

    A person not found as framed is looked for with margins around the image (:data:`PAD_RETRIES`), then on
    tiles of the image (a character too small for the detector's view of the whole image); a person found
    small in the image is detected again on a crop around them (:func:`zoom_window`).

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
        frame = _detect_anywhere(detector, rgb, label)
    else:
        name, options = str(detector), dict(detector_options or {})
        if detect_skeleton and name != "skeleton":
            from .skeleton_parse import is_skeleton_image

            if is_skeleton_image(rgb):
                name, options = "skeleton", {}
        if name == "mediapipe":
            options.setdefault("static_image_mode", True)
        with create_detector(name, **options) as det:
            frame = det(rgb) if name == "skeleton" else _detect_anywhere(det, rgb, label)
    if not frame.has_person:
        raise NoPersonError(
            f"no person detected in {label}; use an image with one clearly visible full body (crop it closer "
            "around a small one), or give the pose with --reference-pose FILE"
        )
    return frame
