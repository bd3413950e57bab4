"""argparse value types shared by the ``posedrive`` subcommands."""

from __future__ import annotations

import argparse

from pose.errors import ConfigError

from .config import parse_size


def size_arg(text: str) -> tuple[int, int]:
    """argparse type for ``WIDTHxHEIGHT`` (e.g. ``512x768``): positive, even sides (video codecs need them)."""
    try:
        w, h = parse_size(text)
    except ConfigError:
        raise argparse.ArgumentTypeError(f"size must look like 512x768, got {text!r}") from None
    if w % 2 or h % 2:
        raise argparse.ArgumentTypeError(f"size must be even numbers (video codecs need them), got {text!r}")
    return w, h


def positive_float(text: str) -> float:
    """argparse type for a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value
