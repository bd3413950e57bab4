"""CPU time of the puppet renderer's ``prepare`` (segmentation, labels, meshes, textures, plate) per character.

Each reference is fitted onto a 512x768 canvas (or ``--size``) and its pose detected once; then ``prepare``
runs and its CPU time (``time.process_time``: all threads of this process) is reported, with a digest of
what it built (plate, labels, each layer's texture, mesh and weights). Equal digests before and after a
change mean the change left the puppet bit for bit as it was: the check used for speed-ups of ``prepare``.

    python benchmarks/bench_prepare.py                          # the examples' and tests' six characters
    python benchmarks/bench_prepare.py --references a.png b.png --size 448 768
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np

from animate.api import Animator

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REFERENCES = [ROOT / "examples" / "assets" / "musepose_ref.png", ROOT / "examples" / "assets" / "tryon_model.png"] + [
    ROOT / "tests" / "data" / "ref" / f"anyone-{i}.png" for i in (1, 2, 5)]
logger = logging.getLogger("bench_prepare")


def digest(renderer) -> str:
    """Short SHA-1 of the puppet's prepared state."""
    h = hashlib.sha1()
    h.update(renderer.background.tobytes())
    h.update(renderer.labels.tobytes())
    for layer in renderer.layers:
        h.update(layer.name.encode())
        for arr in (layer.texture, layer.mesh.vertices, layer.mesh.triangles, layer.weights):
            if arr is not None:
                h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--references", nargs="+", type=Path, default=DEFAULT_REFERENCES)
    parser.add_argument("--size", nargs=2, type=int, default=(512, 768), metavar=("W", "H"))
    parser.add_argument("--repeat", type=int, default=1, help="prepare each character this many times (min kept)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results, total = [], 0.0
    with Animator(renderer="puppet") as animator:
        for ref in args.references:
            prepared = animator.prepare_reference(ref, size=tuple(args.size))
            renderer = animator.renderer
            best = float("inf")
            for _ in range(max(1, args.repeat)):
                t = time.process_time()
                renderer.prepare(prepared.image, prepared.pose, prepared.mask)
                best = min(best, time.process_time() - t)
            total += best
            results.append({"reference": ref.name, "cpu_s": round(best, 2), "digest": digest(renderer)})
            print(f"{ref.name:24s} {best:6.2f} s CPU  {results[-1]['digest']}", flush=True)
    print(json.dumps({"size": list(args.size), "total_cpu_s": round(total, 2), "results": results}))


if __name__ == "__main__":
    main()
