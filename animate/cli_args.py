"""argparse value types shared by the ``posedrive`` subcommands."""

from __future__ import annotations

import argparse

from pose.errors import ConfigError

from .config import MAX_OUTPUT_SIDE, parse_size


def size_arg(text: str) -> tuple[int, int]:
    """argparse type for ``WIDTHxHEIGHT`` (e.g. ``512x768``): positive, even sides (video codecs need them)."""
    try:
        w, h = parse_size(text)
    except ConfigError:
        raise argparse.ArgumentTypeError(f"size must look like 512x768, got {text!r}") from None
    if w % 2 or h % 2:
        raise argparse.ArgumentTypeError(f"size must be even numbers (video codecs need them), got {text!r}")
    if max(w, h) > MAX_OUTPUT_SIDE:
        raise argparse.ArgumentTypeError(f"size must be at most {MAX_OUTPUT_SIDE} px on each side, got {text!r}")
    return w, h


def _integer(text: str, minimum: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {what} >= {minimum}, got {text!r}")
    return value


def frame_index(text: str) -> int:
    """argparse type for a frame index (an integer >= 0)."""
    return _integer(text, 0, "a frame index")


def positive_int(text: str) -> int:
    """argparse type for a whole number >= 1."""
    return _integer(text, 1, "a whole number")


def positive_float(text: str) -> float:
    """argparse type for a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def window_arg(text: str) -> list[float]:
    """argparse type for a detection window ``X0,Y0,X1,Y1``: fractions of the frame, ``0 <= X0 < X1 <= 1``
    and ``0 <= Y0 < Y1 <= 1`` (e.g. ``0.5,0,1,1`` for the right half)."""
    from pose.detectors.base import check_crop
    from pose.errors import DetectorError

    try:
        return list(check_crop(text.split(",")))
    except DetectorError:
        raise argparse.ArgumentTypeError(f"window must be X0,Y0,X1,Y1 fractions of the frame with X0 < X1 and Y0 < Y1, "
                                         f"such as 0.5,0,1,1; got {text!r}") from None


def region_arg(text: str) -> list[float]:
    """argparse type for a region ``X0,Y0,X1,Y1`` in fractions of the frame (``0 <= X0 < X1 <= 1``,
    ``0 <= Y0 < Y1 <= 1``), e.g. ``0,0.875,1,1`` for the bottom eighth."""
    from .evaluation import check_regions

    try:
        return check_regions([text.split(",")])[0]
    except ConfigError:
        raise argparse.ArgumentTypeError(f"region must be X0,Y0,X1,Y1 fractions of the frame with X0 < X1 and Y0 < Y1, "
                                         f"such as 0,0.875,1,1 for the bottom eighth; got {text!r}") from None
