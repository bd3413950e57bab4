"""``posedrive weights check DIR``: report which diffusion weights are present, missing or wrong."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pose.errors import ConfigError

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


def release_config_arg(value: str) -> str:
    """``--config``'s value; an existing file or folder without a suffix is refused in one line.

    A value without a suffix is read as a release name (``configs/diffusion/<name>.yaml``), so a YAML file saved
    without its ``.yaml`` suffix would otherwise be reported as "not found" although it exists.

    Raises:
        ConfigError: ``value`` names such a file or folder (and no release of that name exists).
    """
    from animate.diffusion.settings import CONFIG_DIR, release_names

    path = Path(value)
    if path.suffix or (CONFIG_DIR / f"{value}.yaml").is_file() or not path.exists():
        return value
    names = release_names()
    if path.is_dir():
        raise ConfigError(f"--config {value} is a folder; give a release config's .yaml file (copied from "
                          f"configs/diffusion/) or a release name ({names})")
    raise ConfigError(f"--config {value}: a release config must be a .yaml file; rename it to {path.name}.yaml, "
                      f"or give a release name ({names})")


def run_check(args: argparse.Namespace) -> int:
    """Print the report of ``args.directory``; 0 when complete, 1 otherwise."""
    from animate.diffusion.weights import check_weights_dir

    report = check_weights_dir(args.directory, release_config_arg(args.config))
    sys.stdout.write(report.format() + "\n")
    return 0 if report.complete else EXIT_INCOMPLETE
