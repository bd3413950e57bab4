"""Context windows over the frame axis, for videos of any length with bounded memory.

The motion modules see at most ``window`` frames at a time (their sinusoidal positional encoding has
``max_seq_length`` entries). A video of ``T`` frames is covered by windows of ``window`` frames starting every
``window - overlap`` frames (the last one is aligned to the end, so no window is short and none wraps around);
each denoising step predicts every window and blends the overlapping predictions per frame with ``uniform``
(average, as Moore-AnimateAnyone / MusePose) or ``triangular`` weights (as MimicMotion), so window seams fade.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WEIGHTINGS = ("uniform", "triangular")


@dataclass(frozen=True)
class ContextConfig:
    """Window layout.

    Attributes:
        window: frames per window (Moore 24, MusePose 48); ``None`` = all frames in one pass.
        overlap: frames shared by consecutive windows (default 4), ``0 <= overlap < window``.
        stride: temporal subsampling inside a window (1 = consecutive frames; 2 = every 2nd frame, the
            interleaved windows then cover the skipped frames).
        weighting: ``"uniform"`` or ``"triangular"`` blending of overlapping predictions.
    """

    window: int | None = 24
    overlap: int = 4
    stride: int = 1
    weighting: str = "uniform"

    def validate(self) -> None:
        """Raise ``ValueError`` naming the bad field."""
        if self.window is not None and self.window < 1:
            raise ValueError(f"context window must be >= 1 frame, got {self.window}")
        if self.window is not None and not 0 <= self.overlap < self.window:
            raise ValueError(f"context overlap must be in [0, window={self.window}), got {self.overlap}")
        if self.stride < 1:
            raise ValueError(f"context stride must be >= 1, got {self.stride}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"context weighting '{self.weighting}' is unknown; use one of {', '.join(WEIGHTINGS)}")


def context_windows(num_frames: int, config: ContextConfig) -> list[list[int]]:
    """Frame indices of each window.

    Args:
        num_frames: ``T`` >= 1.
        config: the layout.

    Returns:
        list of windows, each a list of frame indices (length ``min(window, frames in the strided track)``);
        every frame is in at least one window.
    """
    config.validate()
    if num_frames < 1:
        raise ValueError(f"need at least one frame, got {num_frames}")
    out: list[list[int]] = []
    for phase in range(min(config.stride, num_frames)):
        track = list(range(phase, num_frames, config.stride))
        n = len(track)
        win = n if config.window is None else min(config.window, n)
        hop = max(1, win - config.overlap)
        starts = list(range(0, max(n - win, 0) + 1, hop))
        if starts[-1] + win < n:
            starts.append(n - win)
        out.extend([track[s:s + win] for s in starts])
    return out


def window_weights(length: int, weighting: str = "uniform") -> np.ndarray:
    """``(length,)`` float32 blending weights of the frames of one window (all > 0)."""
    if weighting == "uniform":
        return np.ones(length, dtype=np.float32)
    if weighting == "triangular":
        pos = np.arange(length, dtype=np.float32)
        centre = (length - 1) / 2.0
        return (1.0 - np.abs(pos - centre) / (centre + 1.0)).astype(np.float32)
    raise ValueError(f"context weighting '{weighting}' is unknown; use one of {', '.join(WEIGHTINGS)}")
