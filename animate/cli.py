"""The ``posedrive`` command line.

Subcommands live in small modules (``cli_pose``, ``cli_animate``, ``cli_eval``, ``cli_weights``), each
exposing ``add_parser(subparsers)``; every subcommand sets ``func(args) -> int``. Heavy imports happen
inside the handlers so ``posedrive --help`` stays fast.

Any :class:`~pose.errors.PosedriveError` is printed as one line (``posedrive: error: ...``) and the
process exits with status 2; Ctrl-C exits with 130 after the handlers have removed partial outputs, and
SIGTERM (``kill``, ``docker stop``) the same way with 143.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from pose.errors import PosedriveError

from . import cli_animate, cli_eval, cli_pose, cli_weights

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
#: status after SIGTERM (``kill``, ``docker stop``, a job scheduler's time limit): 128 + 15, as the shell reports it
EXIT_TERMINATED = 143


def _version() -> str:
    try:
        return version("posedrive")
    except PackageNotFoundError:  # running from a source tree
        return "unknown"


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit status 2 (argparse's own convention)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every subcommand."""
    parser = _Parser(
        prog="posedrive",
        description="Animate a still character image with the motion of a driving video.",
    )
    parser.add_argument("--version", action="version", version=f"posedrive {_version()}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors, no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    cli_animate.add_parser(sub)
    cli_pose.add_parser(sub)
    cli_eval.add_parser(sub)
    cli_weights.add_parser(sub)
    return parser


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if verbose < 2:
        # Third-party libraries are noisy at INFO.
        for name in ("absl", "PIL", "matplotlib", "urllib3", "httpx", "diffusers", "transformers", "imageio_ffmpeg"):
            logging.getLogger(name).setLevel(logging.WARNING)


def run_reporting_errors(fn: Callable[[], int | None], prog: str = "posedrive",
                         interrupted: str = "interrupted; no partial output was kept") -> int:
    """Run ``fn()`` and return the process exit status, reporting user errors the way ``posedrive`` does.

    A :class:`~pose.errors.PosedriveError` is printed as one line, ``<prog>: error: <message>``, on stderr
    (status 2); Ctrl-C prints ``<prog>: <interrupted>`` (status 130). Any other exception propagates with
    its traceback (a bug). ``fn``'s own return value (``None`` = 0) is the status otherwise. Used by
    :func:`main` and by the scripts in ``examples/``.
    """
    terminated: list[int] = []
    with _sigterm_as_interrupt(terminated):
        try:
            return int(fn() or 0)
        except PosedriveError as exc:
            sys.stderr.write(f"{prog}: error: {exc}\n")
            return EXIT_USER_ERROR
        except KeyboardInterrupt:
            if terminated:
                sys.stderr.write(f"{prog}: {interrupted.replace('interrupted', 'terminated', 1)}\n")
                return EXIT_TERMINATED
            sys.stderr.write(f"{prog}: {interrupted}\n")
            return EXIT_INTERRUPTED


@contextlib.contextmanager
def _sigterm_as_interrupt(terminated: list[int]) -> Iterator[None]:
    """Within the block, SIGTERM to this process unwinds it like Ctrl-C (``KeyboardInterrupt``), so the same
    handlers remove partial outputs and stop the workers; ``terminated`` gets the signal number. Worker
    processes forked meanwhile inherit the handler: there it falls back to the default (they just end)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    owner = os.getpid()

    def handler(signum: int, frame: object) -> None:
        if os.getpid() != owner:  # a forked worker: die as before
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        terminated.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``posedrive`` console script. Returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose, args.quiet)
    args.progress = not args.quiet
    from .writers import new_folders_removed_on_error

    out_dir = getattr(args, "out_dir", None)
    outputs = (getattr(args, "output", None), getattr(args, "render", None),
               None if out_dir is None else Path(out_dir) / "report.json")

    def run() -> int:
        with new_folders_removed_on_error(*(o for o in outputs if isinstance(o, (str, os.PathLike)))):
            return int(args.func(args) or 0)

    return run_reporting_errors(run)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
