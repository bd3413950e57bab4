"""End-to-end ``animate`` benchmark: output frames per second at 512x768 and peak memory, 1x vs 10x input.

    python benchmarks/bench_animate.py                  # the bundled dance, then the same dance 10x longer
    python benchmarks/bench_animate.py --repeat 1       # only the 1x run

Each run is a fresh subprocess doing exactly what ``posedrive animate REF DANCE -o out.mp4 --size 512x768``
does: decode the driving video, detect and smooth its poses, detect the character, retarget, render with
the puppet renderer, encode and mux the audio. Reported: output frames / wall seconds (interpreter start-up
excluded, model set-up included) and the peak resident memory (``ru_maxrss``) of the run. The 10x input is
the dance concatenated ``--repeat`` times with ffmpeg (stream copy), so decoding really streams a 10x longer
file. Results are printed as JSON and written to ``--json`` if given.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

log = logging.getLogger("bench_animate")


def _child(args: argparse.Namespace) -> None:
    """One measured run in this process; prints one JSON line."""
    from animate.api import Animator

    t0 = time.perf_counter()
    with Animator(renderer=args.renderer) as animator:
        animator.animate(args.reference, args.driving, args.output, size=tuple(args.size), overwrite=True,
                         progress=False)
        stats = animator.last_stats
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"frames": stats.frames, "wall_s": round(wall, 2), "fps": round(stats.frames / wall, 2),
                      "render_fps": stats.render_fps, "peak_rss_mb": round(rss, 1)}))


def _run(args: argparse.Namespace, driving: Path, output: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", "--reference", args.reference, "--driving", str(driving),
           "--output", str(output), "--renderer", args.renderer, "--size", *map(str, args.size)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"benchmark run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _concat(video: Path, times: int, out: Path) -> None:
    from pose.video import ffmpeg_exe

    listing = out.with_suffix(".txt")
    listing.write_text("".join(f"file '{video.resolve()}'\n" for _ in range(times)))
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing),
                    "-c", "copy", str(out)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", default=str(ROOT / "examples/assets/musepose_ref.png"))
    parser.add_argument("--driving", default=str(ROOT / "examples/assets/dance.mp4"))
    parser.add_argument("--renderer", default="puppet")
    parser.add_argument("--size", type=int, nargs=2, default=(512, 768), metavar=("W", "H"))
    parser.add_argument("--repeat", type=int, default=10, help="length factor of the long run (1 = skip it)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    results: dict = {"renderer": args.renderer, "size": list(args.size), "driving": Path(args.driving).name,
                     "machine": {"python": platform.python_version(), "cpu": platform.machine(),
                                 "cores": len(__import__("os").sched_getaffinity(0))},
                     "date": time.strftime("%Y-%m-%d %H:%M")}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        results["run_1x"] = _run(args, Path(args.driving), tmp_dir / "out1.mp4")
        log.info("1x: %s", results["run_1x"])
        if args.repeat > 1:
            long_video = tmp_dir / f"driving_x{args.repeat}.mp4"
            _concat(Path(args.driving), args.repeat, long_video)
            results[f"run_{args.repeat}x"] = run = _run(args, long_video, tmp_dir / "out10.mp4")
            log.info("%dx: %s", args.repeat, run)
            results["peak_rss_growth"] = round(run["peak_rss_mb"] / results["run_1x"]["peak_rss_mb"], 3)
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
