"""Benchmark pose extraction: decode, detect and post-processing (gap fill + smoothing) frames per second.

Usage::

    python benchmarks/bench_pose_extract.py                       # examples/assets/dance.mp4, defaults
    python benchmarks/bench_pose_extract.py VIDEO --workers 1 --detect-every 1 --accuracy

Prints the end-to-end figure of :func:`pose.extract.extract_poses`: the median of ``--repeat`` runs (5),
each in a fresh process so that mediapipe's import, the header probe and the workers' start-up are counted
as a user meets them (this shared 2-core machine varies by +-10 % from run to run), with the CPU time it
used (the process, its workers and decoders; ``frames / (cpu_s / cores)`` is the rate idle cores would
allow), and a split: decode only (ffmpeg at the detector's working size), detection (end to end minus
post-processing) and post-processing alone. ``--no-fast-decode`` keeps the codec's deblocking filter.

``--accuracy`` also extracts the video detecting every frame in one process (the reference) and reports
the error of the benchmarked mode against it, as median and 95th percentile of the keypoint distance in %
of body height, for the body and each hand, on keyframes and interpolated frames separately, raw and
after gap filling + smoothing. ``--fullres`` compares body keypoints with a full-resolution run. Writes
nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from pose import extract, layout, video
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


def _run_once(path: Path, args, workers, every, opts: dict) -> tuple[dict, PoseSequence, PoseSequence]:
    """One end-to-end extraction in this process: figures, raw sequence, post-processed sequence."""
    video._PROBES.clear()  # the figure includes reading the header, as in a fresh process
    c0 = _cpu_seconds()
    t0 = time.perf_counter()
    raw = extract_poses(path, args.detector, fill_gaps=False, smoothing=None, workers=workers, detect_every=every,
                        detector_options=opts, end=args.end, progress=False)
    t_detect = time.perf_counter() - t0
    t1 = time.perf_counter()
    post = _postprocess(raw, True, 8, True)
    t_post = time.perf_counter() - t1
    cpu = _cpu_seconds() - c0
    m = raw.meta
    fig = {"frames": len(raw), "total_s": t_detect + t_post, "detect_s": t_detect, "post_s": t_post, "cpu_s": cpu,
           "workers": m["workers"], "detect_every": m["detect_every"], "detections": m["detections"],
           "decode_max_size": m["decode_max_size"], "detection_rate": raw.detection_rate()}
    return fig, raw, post


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("video", nargs="?", default=str(DEFAULT_VIDEO), help="video file (default: the dance example)")
    p.add_argument("--detector", default="mediapipe")
    p.add_argument("--workers", default="auto", help="worker processes or 'auto' (default)")
    p.add_argument("--detect-every", default="auto", help="keyframe stride or 'auto' (default)")
    p.add_argument("--max-size", type=int, default=None, help="detector working size (long side, px); default 960")
    p.add_argument("--end", type=int, default=None, help="only the first N frames")
    p.add_argument("--repeat", type=int, default=5,
                   help="end-to-end runs, each in a fresh process (default 5); the median is the figure")
    p.add_argument("--no-fast-decode", action="store_true", help="decode with the codec's deblocking filter")
    p.add_argument("--accuracy", action="store_true", help="also compare with detecting every frame in one process")
    p.add_argument("--fullres", action="store_true", help="also compare with a full-resolution single-worker run")
    p.add_argument("--once", action="store_true", help=argparse.SUPPRESS)  # one run, JSON on stdout
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    workers = args.workers if args.workers == "auto" else int(args.workers)
    every = args.detect_every if args.detect_every == "auto" else int(args.detect_every)
    opts = {"max_size": args.max_size} if args.max_size else {}
    path = Path(args.video)
    if args.no_fast_decode:
        extract.FAST_DECODE = False
    if args.once:
        fig, _, _ = _run_once(path, args, workers, every, opts)
        print(json.dumps(fig))
        return 0

    dec_fps, n = _decode_fps(path, args.max_size or 960, args.end)
    # Each timed run is a fresh process: mediapipe's import, the header probe and the workers' start-up count.
    child = [sys.executable, str(Path(__file__).resolve()), *(argv if argv is not None else sys.argv[1:]), "--once"]
    runs = []
    for _ in range(max(1, args.repeat)):
        out = subprocess.run(child, capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    fps = sorted(r["frames"] / r["total_s"] for r in runs)
    med = runs[int(np.argsort([r["total_s"] for r in runs])[len(runs) // 2])]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"video {path.name}: {med['frames']} frames at working size {med['decode_max_size']}, {cores} CPU cores "
          f"(load average {load:.1f}), workers={med['workers']}, detector={args.detector}, detect_every="
          f"{med['detect_every']} ({med['detections']} detections), fast decode "
          f"{'off' if args.no_fast_decode else 'on'}")
    print(f"end to end (decode + detect + gap fill + smooth), median of {len(runs)} fresh processes: "
          f"{med['frames'] / med['total_s']:6.1f} frames/s ({med['total_s']:.2f} s); "
          f"runs: {', '.join(f'{f:.1f}' for f in fps)}")
    print(f"  CPU time (all processes)    : {med['cpu_s']:.2f} s -> {med['frames'] / (med['cpu_s'] / cores):.1f} "
          f"frames/s if the {cores} cores were idle")
    print(f"  decode only            : {dec_fps:8.1f} frames/s")
    print(f"  decode + detect        : {med['frames'] / med['detect_s']:8.1f} frames/s ({med['detect_s']:.2f} s, "
          f"incl. worker start-up)")
    print(f"  gap fill + smoothing   : {med['frames'] / max(med['post_s'], 1e-9):8.1f} frames/s "
          f"({med['post_s'] * 1000:.0f} ms)")
    print(f"  detection rate         : {med['detection_rate']:.3f}")
    if args.accuracy or args.fullres:
        _, raw, post = _run_once(path, args, workers, every, opts)
        fast = extract.FAST_DECODE
        extract.FAST_DECODE = False  # the references decode normally
        if args.accuracy:
            ref = extract_poses(path, args.detector, fill_gaps=False, smoothing=None, workers=1, detect_every=1,
                                detector_options=opts, end=args.end, progress=False)
            _accuracy_table(raw, ref, "raw keypoints")
            _accuracy_table(post, _postprocess(ref, True, 8, True), "after gap fill + smoothing")
        if args.fullres:
            full = extract_poses(path, args.detector, fill_gaps=False, smoothing=None, workers=1,
                                 detect_every=raw.meta["detect_every"], detector_options={"max_size": None},
                                 max_size=None, end=args.end, progress=False)
            print(f"  body error vs full-res single-worker run: median {_fullres_error(raw, full):.2f}% of body height")
        extract.FAST_DECODE = fast
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
