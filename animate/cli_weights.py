"""``posedrive weights check DIR``: report which diffusion weights are present, missing or wrong."""

from __future__ import annotations

import argparse
import logging
import sys

logger = logging.getLogger(__name__)

EXIT_INCOMPLETE = 1


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``weights`` command (with its ``check`` subcommand) to the main CLI's ``subparsers``.

    The created parsers set ``func`` (``args -> exit status``) as their default.
    """
    parser = subparsers.add_parser("weights", help="inspect diffusion model weights",
                                   description="Inspect the weights directory of the diffusion renderer.")
    sub = parser.add_subparsers(dest="weights_command", metavar="{check}")
    sub.required = True
    check = sub.add_parser("check", help="list present, missing and wrong weight files",
                           description="Check a weights directory (layout: docs/WEIGHTS.md); exits 1 if incomplete.")
    check.add_argument("directory", help="weights directory")
    check.add_argument("--config", default="moore", help="release config name or YAML path (default: moore)")
    check.set_defaults(func=run_check)
    return parser


def run_check(args: argparse.Namespace) -> int:
    """Print the report of ``args.directory``; 0 when complete, 1 otherwise."""
    from animate.diffusion.weights import check_weights_dir

    report = check_weights_dir(args.directory, args.config)
    sys.stdout.write(report.format() + "\n")
    return 0 if report.complete else EXIT_INCOMPLETE
