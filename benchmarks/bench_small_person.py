"""Pose extraction of a dancer who is small in the frame, with and without the small-person search.

A clip (default ``tests/data/dance_short.mp4``) is shrunk to each ``--scales`` fraction and pasted into a
1280x720 frame (edge pixels repeated around it); its poses, extracted from the clip itself on every frame,
mapped into that frame are the reference. For each scale it reports the dancer's height as a fraction of
the frame, the frames where a person was found without the search (``find_small_person=False``) and with
it, the body-keypoint error of the latter (median, % of the dancer's height, all joints and ankles) and
the extraction time; ``--slide`` scales are run again with the dancer moving from the frame's left edge to
its right edge over the clip. Writes its videos to a temporary folder only.

    python benchmarks/bench_small_person.py
    python benchmarks/bench_small_person.py --scales 0.5 0.4 0.3 0.2
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from pose.errors import NoPersonError
from pose.extract import extract_poses
from pose.video import VideoWriter, open_video

FRAME = (1280, 720)


def shrink_into_frame(src: Path, dst: Path, scale: float, slide: bool) -> tuple[np.ndarray, int, int]:
    """Write ``src`` shrunk by ``scale`` into a :data:`FRAME`: in its middle, or with ``slide`` moving from
    its left edge to its right edge over the clip. Returns ``(left of every frame, top, height)``."""
    with open_video(src) as video:
        n = video.frame_count or 1
        w, h = round(video.width * scale), round(video.height * scale)
        top = (FRAME[1] - h) // 2
        lefts = (np.linspace(0, FRAME[0] - w, n) if slide else np.full(n, (FRAME[0] - w) / 2)).astype(int)
        with VideoWriter(dst, video.fps, FRAME, overwrite=True) as out:
            for i, frame in enumerate(video):
                left = lefts[min(i, n - 1)]
                small = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
                out.write(cv2.copyMakeBorder(small, top, FRAME[1] - top - h, left, FRAME[0] - left - w,
                                             cv2.BORDER_REPLICATE))
    return lefts, top, h


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video", nargs="?", default=str(Path(__file__).parents[1] / "tests" / "data" / "dance_short.mp4"))
    ap.add_argument("--scales", type=float, nargs="+", default=[0.5, 0.4, 0.3, 0.2])
    ap.add_argument("--slide", type=float, nargs="*", default=[0.3, 0.2],
                    help="scales also run with the dancer moving across the frame")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    common = {"detect_every": 1, "workers": 1, "fill_gaps": False, "smoothing": None, "progress": False}
    truth = extract_poses(args.video, **common)
    body = slice(0, 14)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for scale, slide in [(s, False) for s in args.scales] + [(s, True) for s in args.slide]:
            path = Path(tmp) / f"stage_{scale}_{slide}.mp4"
            lefts, top, height = shrink_into_frame(Path(args.video), path, scale, slide)
            try:
                before = int(np.sum(extract_poses(path, find_small_person=False, **common).status == 0))
            except NoPersonError:
                before = 0
            t0 = time.perf_counter()
            seq = extract_poses(path, **common)
            seconds = time.perf_counter() - t0
            mapped = truth.transformed(np.array([[scale, 0, 0], [0, scale, top]]), *FRAME).keypoints.copy()
            mapped[:, :, 0] += lefts[:len(mapped), None]
            err = np.linalg.norm(seq.keypoints[:, body, :2] - mapped[:, body, :2], axis=-1) / height
            rows.append({
                "height_fraction": round(height / FRAME[1], 3), "moving": slide, "frames": len(seq),
                "found_without_search": before, "found": int(np.sum(seq.status == 0)),
                "error_pct": round(100 * float(np.nanmedian(err)), 2),
                "ankle_error_pct": round(100 * float(np.nanmedian(err[:, [10, 13]])), 2),
                "window": seq.meta["detector_options"].get("crop"),
                "following": bool(seq.meta["detector_options"].get("follow")), "seconds": round(seconds, 2),
            })
            print(json.dumps(rows[-1]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
