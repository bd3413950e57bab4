"""Benchmark pose extraction: decode, detect and post-processing (gap fill + smoothing) frames per second.

Usage::

    python benchmarks/bench_pose_extract.py                       # examples/assets/dance.mp4, defaults
    python benchmarks/bench_pose_extract.py VIDEO --workers 1 --detect-every 1 --accuracy

Prints the end-to-end figure of :func:`pose.extract.extract_poses` with the CPU time it used (this
process and its workers and decoders; on a shared machine ``frames / (cpu_s / cores)`` is the rate the
cores would allow if idle), and a split measured separately: decode only (ffmpeg at the detector's working
size), detection (end to end minus post-processing) and post-processing alone.

``--accuracy`` also extracts the video detecting every frame in one process (the reference) and reports
the error of the benchmarked mode against it, as median and 95th percentile of the keypoint distance in %
of body height, for the body and each hand, on keyframes and interpolated frames separately, raw and
after gap filling + smoothing. ``--fullres`` compares body keypoints with a full-resolution run. Writes
nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import numpy as np

from pose import layout
from pose.extract import _postprocess, extract_poses
from pose.sequence import FrameStatus, PoseSequence
from pose.video import open_video

DEFAULT_VIDEO = Path(__file__).resolve().parents[1] / "examples" / "assets" / "dance.mp4"
# Keypoints below this score are left out of the error statistics.
SCORE_THRESHOLD = 0.5
PARTS = ("body", "left_hand", "right_hand", "face")


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _decode_fps(path: Path, max_size: int | None, end: int | None) -> tuple[float, int]:
    t = time.perf_counter()
    n = 0
    with open_video(path, max_size=max_size, end=end) as src:
        for _ in src:
            n += 1
    return n / (time.perf_counter() - t), n


def _body_height(ref: PoseSequence) -> float:
    """Median over frames of the vertical extent of the visible body keypoints (pixels)."""
    kb = ref.keypoints[:, layout.BODY]
    ys = kb[..., 1].copy()
    ys[~(kb[..., 2] > SCORE_THRESHOLD)] = np.nan
    with np.errstate(all="ignore"):
        return float(np.nanmedian(np.nanmax(ys, axis=1) - np.nanmin(ys, axis=1)))


def _errors(a: PoseSequence, ref: PoseSequence, part: str, frames: np.ndarray) -> np.ndarray:
    """Distances (% of body height) of ``part`` keypoints of ``a`` vs ``ref`` on the ``frames`` mask."""
    sl = layout.PARTS[part]
    ka, kr = a.keypoints[frames][:, sl], ref.keypoints[frames][:, sl]
    ok = (ka[..., 2] > SCORE_THRESHOLD * 0.5) & (kr[..., 2] > SCORE_THRESHOLD)
    return np.linalg.norm(ka[..., :2] - kr[..., :2], axis=-1)[ok] / _body_height(ref) * 100


def _accuracy_table(test: PoseSequence, ref: PoseSequence, label: str) -> None:
    n = min(len(test), len(ref))
    test, ref = test.slice(0, n), ref.slice(0, n)
    every = int(test.meta.get("detect_every", 1))
    key = (np.arange(n) % every == 0) | (test.status == FrameStatus.DETECTED)
    groups = {"all": np.ones(n, bool), "keyframes": key, "interpolated": ~key}
    print(f"  error vs detecting every frame ({label}), % of body height ({_body_height(ref):.0f} px), median / 95th pct:")
    for part in PARTS:
        cells = []
        for g, mask in groups.items():
            e = _errors(test, ref, part, mask) if mask.any() else np.zeros(0)
            cells.append(f"{g} {np.median(e):5.2f} / {np.percentile(e, 95):5.2f}" if e.size else f"{g}    -")
        print(f"    {part:<11}: " + "   ".join(cells))


def _fullres_error(a: PoseSequence, b: PoseSequence) -> float:
    """Median body-keypoint distance between two sequences, in % of the median body height of ``b``."""
    n = min(len(a), len(b))
    return float(np.median(_errors(a.slice(0, n), b.slice(0, n), "body", np.ones(n, bool))))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("video", nargs="?", default=str(DEFAULT_VIDEO), help="video file (default: the dance example)")
    p.add_argument("--detector", default="mediapipe")
    p.add_argument("--workers", default="auto", help="worker processes or 'auto' (default)")
    p.add_argument("--detect-every", default="auto", help="keyframe stride or 'auto' (default)")
    p.add_argument("--max-size", type=int, default=None, help="detector working size (long side, px); default 960")
    p.add_argument("--end", type=int, default=None, help="only the first N frames")
    p.add_argument("--accuracy", action="store_true", help="also compare with detecting every frame in one process")
    p.add_argument("--fullres", action="store_true", help="also compare with a full-resolution single-worker run")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    workers = args.workers if args.workers == "auto" else int(args.workers)
    every = args.detect_every if args.detect_every == "auto" else int(args.detect_every)
    opts = {"max_size": args.max_size} if args.max_size else {}
    path = Path(args.video)

    dec_fps, n = _decode_fps(path, args.max_size or 960, args.end)

    c0 = _cpu_seconds()
    t0 = time.perf_counter()
    raw = extract_poses(path, args.detector, fill_gaps=False, smoothing=None, workers=workers, detect_every=every,
                        detector_options=opts, end=args.end, progress=False)
    t_detect = time.perf_counter() - t0
    t1 = time.perf_counter()
    post = _postprocess(raw, True, 8, True)
    t_post = time.perf_counter() - t1
    cpu = _cpu_seconds() - c0
    total = t_detect + t_post
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    m = raw.meta
    print(f"video {path.name}: {len(raw)} frames {raw.width}x{raw.height} at {raw.fps:g} fps, {cores} CPU cores "
          f"(load average {load:.1f}), workers={m['workers']}, detector={m['detector']}, detect_every="
          f"{m['detect_every']} ({m['detections']} detections), working size {m['decode_max_size']}")
    print(f"end to end (decode + detect + gap fill + smooth): {len(raw) / total:6.1f} frames/s ({total:.2f} s)")
    print(f"  CPU time (all processes)    : {cpu:.2f} s -> {len(raw) / (cpu / cores):.1f} frames/s if the "
          f"{cores} cores were idle")
    print(f"  decode only            : {dec_fps:8.1f} frames/s")
    print(f"  decode + detect        : {len(raw) / t_detect:8.1f} frames/s ({t_detect:.2f} s, incl. worker start-up)")
    print(f"  gap fill + smoothing   : {len(raw) / max(t_post, 1e-9):8.1f} frames/s ({t_post * 1000:.0f} ms)")
    print(f"  detection rate         : {raw.detection_rate():.3f}")
    if args.accuracy:
        ref = extract_poses(path, args.detector, fill_gaps=False, smoothing=None, workers=1, detect_every=1,
                            detector_options=opts, end=args.end, progress=False)
        _accuracy_table(raw, ref, "raw keypoints")
        _accuracy_table(post, _postprocess(ref, True, 8, True), "after gap fill + smoothing")
    if args.fullres:
        full = extract_poses(path, args.detector, fill_gaps=False, smoothing=None, workers=1, detect_every=every,
                             detector_options={"max_size": None}, max_size=None, end=args.end, progress=False)
        print(f"  body error vs full-res single-worker run: median {_fullres_error(raw, full):.2f}% of body height")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
