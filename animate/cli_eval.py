"""``posedrive eval VIDEO``: self-reenactment scores (SSIM, PSNR, L1, PCK@0.05, warp error) of a renderer."""

from __future__ import annotations

import argparse
import logging

from .cli_args import positive_int, region_arg

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``eval`` subcommand."""
    p = subparsers.add_parser(
        "eval",
        help="self-reenactment: animate a clip's first frame with its own motion and score it",
        description="Reference = the first frame of VIDEO, driving = VIDEO's own poses; the generated frames are "
                    "compared with the real ones (SSIM, PSNR, L1 at 512 px, PCK@0.05, flow-warp error) next to "
                    "the 'first frame repeated' baseline. Writes report.json and contact_sheet.png.",
    )
    p.add_argument("video", metavar="VIDEO", help="a real clip with one person")
    p.add_argument("--frames", type=positive_int, help="use only the first N frames")
    p.add_argument("--out-dir", default="eval", help="folder for report.json and contact_sheet.png (default: eval)")
    p.add_argument("--renderer", default="puppet", help="renderer to evaluate: puppet (default) or diffusion")
    p.add_argument("--config", metavar="YAML", help="Animator config (see configs/default.yaml)")
    p.add_argument("--height", type=positive_int, default=512,
                   help="comparison height in pixels (default 512; at least 128 for the puppet renderer's default mesh)")
    p.add_argument("--ignore", type=region_arg, action="append", default=[], metavar="X0,Y0,X1,Y1",
                   help="leave this part of the frame (fractions) out of SSIM, PSNR, L1 and the warp error (LPIPS "
                        "and FVD see the real pixels there in both videos), e.g. 0,0.875,1,1 for burnt-in subtitles "
                        "along the bottom; repeat for several regions")
    p.add_argument("--no-pck", action="store_true", help="skip re-detecting poses on the output (faster)")
    p.add_argument("--weights", metavar="DIR", help="weights folder of the diffusion renderer")
    p.add_argument("--lpips-weights", metavar="PATH", help="LPIPS weights (TorchScript or lpips linear layers); else skipped")
    p.add_argument("--fvd-weights", metavar="PATH", help="I3D TorchScript weights (i3d_torchscript.pt); else skipped")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing report.json and contact_sheet.png in --out-dir")
    p.set_defaults(func=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    """Handler of ``posedrive eval``; errors propagate as :class:`~pose.errors.PosedriveError`."""
    from .evaluation import evaluate_self_reenactment

    report = evaluate_self_reenactment(
        args.video, renderer=args.renderer, frames=args.frames, height=args.height, out_dir=args.out_dir,
        config=args.config, pck_eval=not args.no_pck, lpips_weights=args.lpips_weights,
        fvd_weights=args.fvd_weights, progress=getattr(args, "progress", True), weights=args.weights,
        ignore=args.ignore, overwrite=args.overwrite,
    )
    g, b = report["generated"], report.get("baseline_first_frame", {})
    rows = [("metric", args.renderer, "first-frame baseline")]
    for key in ("ssim", "psnr", "l1", "pck", "warp_error_ratio"):
        if key in g:
            rows.append((key, _fmt(g.get(key)), _fmt(b.get(key))))
    table = "\n".join(f"{a:<18}{b_:>14}{c:>22}" for a, b_, c in rows)
    scored = report["settings"]["scored_fraction"]
    regions = " ".join(",".join(f"{v:g}" for v in box) for box in args.ignore)
    where = "" if scored == 1.0 else f" ({scored:.1%} of each frame scored; ignored: {regions})"
    print(f"{report['frames']} frames of {args.video} at {report['size'][0]}x{report['size'][1]}{where}\n{table}")
    print(f"report: {report['report']}")
    return 0


def _fmt(value: object) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)
