"""Benchmark of pose.smoothing: jitter reduction, lag and speed of the One-Euro filter.

Usage::

    python benchmarks/bench_smoothing.py                 # synthetic dance-like tracks
    python benchmarks/bench_smoothing.py --pose dance.json  # also a saved PoseSequence (pose.io)

Jitter is the mean absolute second difference of a track (px / frame^2); lag is the time shift (frames)
that best aligns the smoothed track with a zero-phase (centred) smoothing of the raw one.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np

from pose import layout
from pose.sequence import PoseSequence, empty_keypoints
from pose.smoothing import person_scale, smooth_sequence

logger = logging.getLogger(__name__)


def _jitter(z: np.ndarray) -> float:
    return float(np.nanmean(np.abs(np.diff(z, n=2, axis=0))))


def _centred(z: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    radius = int(3 * sigma)
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    k /= k.sum()
    pad = np.pad(z, [(radius, radius)] + [(0, 0)] * (z.ndim - 1), mode="edge")
    return np.apply_along_axis(lambda v: np.convolve(v, k, mode="valid"), 0, pad)


def _lag(smoothed: np.ndarray, raw: np.ndarray, max_shift: int = 5) -> int:
    ref = _centred(raw)
    errs = [np.nanmean(np.abs(smoothed[s:] - ref[: len(ref) - s])) for s in range(max_shift)]
    return int(np.argmin(errs))


def synthetic(width: int, height: int, fps: float = 24.0, seconds: float = 8.0, seed: int = 0) -> PoseSequence:
    """A body of 70 % of the frame height, still for half the time then dancing, with 0.3 % noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fps)
    t = np.arange(n) / fps
    person = 0.7 * height
    body = np.zeros((n, layout.NUM_BODY, 2))
    body[..., 0] = width / 2 + np.linspace(-0.1, 0.1, layout.NUM_BODY) * person
    body[..., 1] = 0.15 * height + np.linspace(0, person, layout.NUM_BODY)
    moving = t >= seconds / 2
    tm = t[moving][:, None]
    body[moving, :, 0] += 0.08 * person * np.sin(2 * np.pi * 0.7 * tm)
    body[moving, :, 1] += 0.05 * person * np.sin(2 * np.pi * 1.1 * tm)
    body += rng.normal(0, 0.003 * person, body.shape)
    kps = empty_keypoints(n)
    kps[:, layout.BODY, :2] = body
    kps[:, layout.BODY, 2] = 0.9
    return PoseSequence(kps, width, height, fps)


def report(name: str, seq: PoseSequence) -> dict:
    """Smooth ``seq`` and return the figures (also logged)."""
    start = time.perf_counter()
    out = smooth_sequence(seq)
    elapsed = time.perf_counter() - start
    raw = seq.keypoints[:, layout.BODY, :2].astype(np.float64)
    sm = out.keypoints[:, layout.BODY, :2].astype(np.float64)
    res = {
        "name": name,
        "frames": len(seq),
        "scale_px": round(person_scale(seq), 1),
        "jitter_raw": round(_jitter(raw), 3),
        "jitter_smoothed": round(_jitter(sm), 3),
        "reduction": round(_jitter(raw) / max(_jitter(sm), 1e-9), 2),
        "lag_frames": _lag(sm, raw),
        "ms_per_frame": round(1000 * elapsed / max(len(seq), 1), 3),
    }
    logger.info("%s", res)
    return res


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pose", help="a saved pose sequence (JSON or NPZ, see pose.io)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for w, h in ((540, 960), (1080, 1920), (2160, 3840)):
        report(f"synthetic {w}x{h}", synthetic(w, h))
    if args.pose:
        from pose.io import load_sequence

        report(args.pose, load_sequence(args.pose))


if __name__ == "__main__":
    main()
