"""Benchmark pose extraction: decode, detect and post-processing (gap fill + smoothing) frames per second.

Usage::

    python benchmarks/bench_pose_extract.py                       # examples/assets/dance.mp4, defaults
    python benchmarks/bench_pose_extract.py VIDEO --workers 1 --max-size 640 --accuracy

Prints the end-to-end figure of :func:`pose.extract.extract_poses` and a split measured separately:
decode only (ffmpeg at the detector's working size), detection (end to end minus post-processing) and
post-processing alone. ``--accuracy`` also compares body keypoints against a full-resolution run (slow).
Writes nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import numpy as np

from pose.extract import _postprocess, extract_poses
from pose.video import open_video

DEFAULT_VIDEO = Path(__file__).resolve().parents[1] / "examples" / "assets" / "dance.mp4"


def _decode_fps(path: Path, max_size: int | None, end: int | None) -> tuple[float, int]:
    t = time.perf_counter()
    n = 0
    with open_video(path, max_size=max_size, end=end) as src:
        for _ in src:
            n += 1
    return n / (time.perf_counter() - t), n


def _body_error(a, b) -> float:
    """Median body-keypoint distance between two sequences, in % of the median body height."""
    ka, kb = a.keypoints[:, :18], b.keypoints[:, :18]
    ok = (ka[..., 2] > 0.5) & (kb[..., 2] > 0.5)
    d = np.linalg.norm(ka[..., :2] - kb[..., :2], axis=-1)[ok]
    ys = kb[..., 1].copy()
    ys[kb[..., 2] <= 0.5] = np.nan
    height = np.nanmedian(np.nanmax(ys, axis=1) - np.nanmin(ys, axis=1))
    return float(np.median(d) / height * 100)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("video", nargs="?", default=str(DEFAULT_VIDEO), help="video file (default: the dance example)")
    p.add_argument("--detector", default="mediapipe")
    p.add_argument("--workers", default="auto", help="worker processes or 'auto' (default)")
    p.add_argument("--max-size", type=int, default=None, help="detector working size (long side, px); default 960")
    p.add_argument("--end", type=int, default=None, help="only the first N frames")
    p.add_argument("--accuracy", action="store_true", help="also compare with a full-resolution single-worker run")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    workers = args.workers if args.workers == "auto" else int(args.workers)
    opts = {"max_size": args.max_size} if args.max_size else {}
    path = Path(args.video)

    dec_fps, n = _decode_fps(path, args.max_size or 960, args.end)

    t0 = time.perf_counter()
    raw = extract_poses(path, args.detector, fill_gaps=False, smoothing=None, workers=workers,
                        detector_options=opts, end=args.end, progress=False)
    t_detect = time.perf_counter() - t0
    t1 = time.perf_counter()
    _postprocess(raw, True, 8, True)
    t_post = time.perf_counter() - t1
    total = t_detect + t_post
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"video {path.name}: {len(raw)} frames {raw.width}x{raw.height}, {cores} CPU cores, "
          f"workers={raw.meta['workers']}, detector={raw.meta['detector']}, working size {raw.meta['decode_max_size']}")
    print(f"end to end (decode + detect + gap fill + smooth): {len(raw) / total:6.1f} frames/s ({total:.2f} s)")
    print(f"  decode only            : {dec_fps:8.1f} frames/s")
    print(f"  decode + detect        : {len(raw) / t_detect:8.1f} frames/s ({t_detect:.2f} s, incl. worker start-up)")
    print(f"  gap fill + smoothing   : {len(raw) / max(t_post, 1e-9):8.1f} frames/s ({t_post * 1000:.0f} ms)")
    print(f"  detection rate         : {raw.detection_rate():.3f}")
    if args.accuracy:
        full = extract_poses(path, args.detector, fill_gaps=False, smoothing=None, workers=1,
                             detector_options={"max_size": None}, max_size=None, end=args.end, progress=False)
        print(f"  body error vs full-res single-worker run: median {_body_error(raw, full):.2f}% of body height")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
