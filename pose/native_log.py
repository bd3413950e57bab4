"""Keeps mediapipe's native start-up chatter off the terminal.

mediapipe 0.10.21 logs from C++ (absl and TFLite) straight to file descriptor 2, bypassing Python's
``logging``: every graph prints "Created TensorFlow Lite XNNPACK delegate for CPU", absl's "All log messages
before absl::InitializeLog() ..." banner and one "Feedback manager requires a model with a single signature"
warning per model, so a plain ``posedrive animate`` printed about 40 such lines. No environment variable or
exported function of the wheel sets absl's threshold, so :func:`native_stderr_filtered` points descriptor 2
at a temporary file while mediapipe works, then writes back every line that is not one of the known
harmless messages in :data:`HARMLESS` (those go to this module's logger at DEBUG level). Nothing else is
dropped: a native error, or a line written by another thread meanwhile, reaches stderr when the window
closes, in its order.

Set ``POSEDRIVE_NATIVE_LOGS=1`` to see mediapipe's own output unfiltered (the setting is inherited by the
pose worker processes).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator

logger = logging.getLogger(__name__)

ENV_SHOW = "POSEDRIVE_NATIVE_LOGS"

# mediapipe 0.10.21's messages that say nothing to a posedrive user (CPU-only, no feedback tensors used,
# landmark projection on square crops, as mediapipe's own solutions do). One pattern per message.
HARMLESS = tuple(re.compile(p) for p in (
    rb"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$",
    rb"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$",
    (rb"^[IW]\d{4} [\d:.]+ +\d+ inference_feedback_manager\.cc:\d+\] Feedback manager requires a model with a "
     rb"single signature inference\. Disabling support for feedback tensors\.$"),
    (rb"^[IW]\d{4} [\d:.]+ +\d+ landmark_projection_calculator\.cc:\d+\] Using NORM_RECT without "
     rb"IMAGE_DIMENSIONS is only supported for the square ROI\. Provide IMAGE_DIMENSIONS or use "
     rb"PROJECTION_MATRIX\.$"),
))

_lock = threading.Lock()
_depth = 0
_saved_fd: int | None = None
_capture: tempfile._TemporaryFileWrapper | None = None  # type: ignore[type-arg]


def filtering_enabled() -> bool:
    """False when ``POSEDRIVE_NATIVE_LOGS`` is set to a true value (1, yes, true, show)."""
    return os.environ.get(ENV_SHOW, "").strip().lower() not in {"1", "yes", "true", "show", "on"}


def is_harmless(line: bytes) -> bool:
    """Whether ``line`` (without its newline) is one of the known harmless mediapipe messages."""
    line = line.rstrip(b"\r")
    return any(p.match(line) for p in HARMLESS)


def filter_lines(data: bytes) -> bytes:
    """``data`` without its harmless lines (logged at DEBUG level instead); other bytes are kept as they are."""
    kept: list[bytes] = []
    for line in data.splitlines(keepends=True):
        if is_harmless(line.rstrip(b"\n")):
            logger.debug("mediapipe: %s", line.rstrip().decode("utf-8", "replace"))
        else:
            kept.append(line)
    return b"".join(kept)


@contextlib.contextmanager
def native_stderr_filtered() -> Iterator[None]:
    """Within this block, mediapipe's harmless native messages are held back from stderr (see module doc).

    Re-entrant and safe to use from several threads: descriptor 2 is redirected by the first block to
    enter and restored, with the captured lines written back, by the last to leave. Does nothing when
    ``POSEDRIVE_NATIVE_LOGS`` is set or when descriptor 2 is not open.
    """
    if not filtering_enabled() or not _enter():
        yield
        return
    try:
        yield
    finally:
        _leave()


def _enter() -> bool:
    global _depth, _saved_fd, _capture
    with _lock:
        if _depth == 0:
            try:
                capture = tempfile.TemporaryFile(prefix="posedrive-native-log-")  # noqa: SIM115 (closed in _leave)
            except OSError:  # no writable temp folder: leave stderr alone
                return False
            try:
                saved = os.dup(2)
            except OSError:  # descriptor 2 closed
                capture.close()
                return False
            _flush_python_stderr()
            os.dup2(capture.fileno(), 2)
            _saved_fd, _capture = saved, capture
        _depth += 1
        return True


def _leave() -> None:
    global _depth, _saved_fd, _capture
    with _lock:
        _depth -= 1
        if _depth > 0 or _saved_fd is None or _capture is None:
            return
        _flush_python_stderr()
        saved, capture = _saved_fd, _capture
        _saved_fd, _capture = None, None
        os.dup2(saved, 2)
        os.close(saved)
        capture.seek(0)
        data = filter_lines(capture.read())
        capture.close()
    if data:
        _write_all(2, data)


def _flush_python_stderr() -> None:
    with contextlib.suppress(Exception):
        sys.stderr.flush()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except OSError:
            return
        view = view[written:]
