"""Temporal smoothing of keypoint tracks with the One-Euro filter.

The One-Euro filter (Casiez, Roussel & Vogel, "1 Euro Filter: A Simple Speed-based Low-pass Filter for
Noisy Input in Interactive Systems", CHI 2012) is a first-order low-pass filter whose cutoff frequency
rises with the signal's speed::

    dx_t    = (x_t - xhat_{t-1}) * rate                    # raw speed
    dxhat_t = lowpass(dx_t, d_cutoff)                       # smoothed speed
    fc_t    = min_cutoff + beta * |dxhat_t|                 # adaptive cutoff (Hz)
    xhat_t  = lowpass(x_t, fc_t)
    lowpass(x, fc): alpha = 1 / (1 + tau * rate), tau = 1 / (2 pi fc);  y = alpha x + (1 - alpha) y_prev

Slow keypoints are smoothed hard (low cutoff removes jitter), fast ones hardly at all (no lag).

Scale awareness: ``beta`` multiplies a speed, so its meaning depends on the unit of the coordinates.
posedrive filters coordinates divided by the person's size (the median height of the body keypoints'
bounding box over the sequence; the image height when no body is visible). Speeds are then in
"body heights per second" and the same defaults work at any resolution and camera distance.
The speed of a keypoint is the norm of its 2-D velocity, so x and y share one cutoff (isotropic).

Missing keypoints (score 0 / NaN) pass through unchanged and reset that keypoint's filter, which restarts
from the next detection. Frames with status ``HELD`` are passed through unchanged and reset every filter,
so a held pose is never blended into the detections around it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

import numpy as np

from . import layout
from .errors import ConfigError
from .sequence import FrameStatus, PoseSequence, keypoint_valid

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OneEuroConfig:
    """Parameters of the One-Euro filter, in size-normalised units (see module docstring).

    Attributes:
        min_cutoff: cutoff frequency in Hz at zero speed; lower = smoother when still (default 1.0).
        beta: cutoff increase in Hz per (body height / s) of speed; higher = less lag in fast motion
            (default 32.0: a limb moving at half a body height per second is filtered at ~17 Hz).
        d_cutoff: cutoff in Hz of the speed estimate (default 1.0, the paper's value).
    """

    min_cutoff: float = 1.0
    beta: float = 32.0
    d_cutoff: float = 1.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"OneEuroConfig.{f.name} must be a finite number, got {value!r}")
        if self.min_cutoff <= 0:
            raise ConfigError(f"OneEuroConfig.min_cutoff must be > 0 Hz, got {self.min_cutoff}")
        if self.d_cutoff <= 0:
            raise ConfigError(f"OneEuroConfig.d_cutoff must be > 0 Hz, got {self.d_cutoff}")
        if self.beta < 0:
            raise ConfigError(f"OneEuroConfig.beta must be >= 0, got {self.beta}")


# Per-part defaults, tuned at 24 fps on MusePose's dance video (mediapipe keypoints) and on synthetic
# tracks with 0.3 %-of-height noise: a still keypoint's jitter drops ~4.5x, a moving one lags < 1 frame.
# Hands and face are small and their detections jitter more relative to their motion,
# so they get a lower minimum cutoff; their fast motion is still followed thanks to beta.
DEFAULT_PART_CONFIGS: dict[str, OneEuroConfig] = {
    "body": OneEuroConfig(min_cutoff=1.0, beta=32.0),
    "feet": OneEuroConfig(min_cutoff=1.0, beta=32.0),
    "face": OneEuroConfig(min_cutoff=0.6, beta=32.0),
    "left_hand": OneEuroConfig(min_cutoff=0.6, beta=32.0),
    "right_hand": OneEuroConfig(min_cutoff=0.6, beta=32.0),
}

ConfigLike = OneEuroConfig | Mapping[str, OneEuroConfig] | None


def _alpha(cutoff: np.ndarray | float, rate: float) -> np.ndarray:
    """Smoothing factor of a first-order low-pass at ``cutoff`` Hz sampled at ``rate`` Hz."""
    tau = 1.0 / (2.0 * np.pi * np.asarray(cutoff, dtype=np.float64))
    return 1.0 / (1.0 + tau * rate)


def _per_keypoint_params(config: ConfigLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(K,)`` arrays of ``min_cutoff``, ``beta``, ``d_cutoff`` for every keypoint."""
    if config is None:
        parts: Mapping[str, OneEuroConfig] = DEFAULT_PART_CONFIGS
    elif isinstance(config, OneEuroConfig):
        parts = {name: config for name in layout.PARTS}
    elif isinstance(config, Mapping):
        unknown = sorted(set(config) - set(layout.PARTS))
        if unknown:
            raise ConfigError(f"smoothing config has unknown part(s) {unknown}; use {sorted(layout.PARTS)}")
        for name, cfg in config.items():
            if not isinstance(cfg, OneEuroConfig):
                raise ConfigError(f"smoothing config for part '{name}' must be a OneEuroConfig, got {type(cfg).__name__}")
        parts = {**DEFAULT_PART_CONFIGS, **config}
    else:
        raise ConfigError(f"smoothing config must be a OneEuroConfig or a dict of them, got {type(config).__name__}")
    k = layout.NUM_KEYPOINTS
    mc, beta, dc = np.empty(k), np.empty(k), np.empty(k)
    for name, sl in layout.PARTS.items():
        cfg = parts[name]
        mc[sl], beta[sl], dc[sl] = cfg.min_cutoff, cfg.beta, cfg.d_cutoff
    return mc, beta, dc


def person_scale(seq: PoseSequence, threshold: float = 0.3) -> float:
    """Size of the person in pixels: median height of the visible body keypoints' bbox over the frames.

    Args:
        seq: the sequence.
        threshold: minimum score of a keypoint counted as visible (default 0.3).

    Returns:
        Height in pixels; ``seq.height`` when no frame has two visible body keypoints.
    """
    body = seq.keypoints[:, layout.BODY].astype(np.float64)
    vis = (np.nan_to_num(body[..., 2]) >= threshold) & np.isfinite(body[..., :2]).all(axis=-1)
    ok = vis.sum(axis=1) >= 2
    if not ok.any():
        return float(seq.height)
    y = np.where(vis, body[..., 1], np.nan)[ok]
    heights = np.nanmax(y, axis=1) - np.nanmin(y, axis=1)
    h = float(np.median(heights))
    return h if h > 1.0 else float(seq.height)


def one_euro(
    values: np.ndarray,
    rate: float,
    config: OneEuroConfig | None = None,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """One-Euro filter of ``N`` independent 2-D tracks (vectorised over tracks).

    Args:
        values: ``(T, N, 2)`` coordinates (any unit; ``beta`` is per unit/s of speed).
        rate: sampling rate in Hz (frames per second).
        config: filter parameters (default :class:`OneEuroConfig`).
        valid: ``(T, N)`` bool; False entries pass through unchanged and reset that track.

    Returns:
        ``(T, N, 2)`` float64 filtered coordinates.
    """
    cfg = config or OneEuroConfig()
    n = values.shape[1]
    mc = np.full(n, cfg.min_cutoff)
    beta = np.full(n, cfg.beta)
    dc = np.full(n, cfg.d_cutoff)
    return _filter(np.asarray(values, dtype=np.float64), float(rate), mc, beta, dc, valid)


def _filter(
    x: np.ndarray,
    rate: float,
    min_cutoff: np.ndarray,
    beta: np.ndarray,
    d_cutoff: np.ndarray,
    valid: np.ndarray | None,
    inplace: bool = False,
) -> np.ndarray:
    """Core loop over time; ``x`` is ``(T, N, 2)``, parameters ``(N,)``, ``valid`` ``(T, N)``.

    With ``inplace`` the result overwrites ``x`` (each row is read before it is written).
    """
    n_t, n = x.shape[:2]
    if valid is None:
        valid = np.isfinite(x).all(axis=-1)
    out = x if inplace else x.copy()
    x_prev = np.zeros((n, 2))
    dx_prev = np.zeros((n, 2))
    started = np.zeros(n, dtype=bool)
    a_d = _alpha(d_cutoff, rate)[:, None]
    for t in range(n_t):
        v = valid[t]
        xt = np.where(v[:, None], x[t], 0.0)
        cont = v & started
        dx = (xt - x_prev) * rate
        dx_hat = a_d * dx + (1.0 - a_d) * dx_prev
        cutoff = min_cutoff + beta * np.linalg.norm(dx_hat, axis=1)
        a = _alpha(cutoff, rate)[:, None]
        x_hat = a * xt + (1.0 - a) * x_prev
        # Tracks that (re)start take the raw value with zero speed; invalid ones reset.
        x_hat = np.where(cont[:, None], x_hat, xt)
        dx_hat = np.where(cont[:, None], dx_hat, 0.0)
        out[t] = np.where(v[:, None], x_hat, x[t])
        x_prev, dx_prev, started = x_hat, dx_hat, v.copy()
    return out


def smooth_sequence(seq: PoseSequence, config: ConfigLike = None, *, scale: float | None = None) -> PoseSequence:
    """Smooth every keypoint track of ``seq`` with the One-Euro filter.

    Args:
        seq: input sequence (not modified).
        config: one :class:`OneEuroConfig` for every keypoint, a dict ``part name -> OneEuroConfig``
            (parts of :data:`pose.layout.PARTS`; missing parts use :data:`DEFAULT_PART_CONFIGS`), or
            ``None`` for the per-part defaults.
        scale: pixel size used to normalise coordinates; default :func:`person_scale` of ``seq``.

    Returns:
        A new sequence with filtered ``x``, ``y`` (scores, status, confidence unchanged) and
        ``meta["smoothing"]`` recording the settings.
    """
    mc, beta, dc = _per_keypoint_params(config)
    if len(seq) < 2:
        return seq.copy()
    if scale is None:
        scale = person_scale(seq)
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise ConfigError(f"smoothing scale must be a positive number of pixels, got {scale!r}")

    # One float64 (T, K, 2) working array, filtered in place: memory stays a small multiple of the sequence.
    xy = seq.keypoints[..., :2].astype(np.float64)
    xy /= scale
    held = seq.status == FrameStatus.HELD
    valid = keypoint_valid(seq.keypoints) & ~held[:, None]
    filtered = _filter(xy, seq.fps, mc, beta, dc, valid, inplace=True)
    filtered *= scale
    new = seq.keypoints.copy()
    new[..., :2][valid] = filtered[valid]
    out = seq.copy(new)
    if config is None:
        settings = {name: asdict(c) for name, c in DEFAULT_PART_CONFIGS.items()}
    elif isinstance(config, OneEuroConfig):
        settings = {"all": asdict(config)}
    else:
        settings = {name: asdict(c) for name, c in {**DEFAULT_PART_CONFIGS, **config}.items()}
    out.meta["smoothing"] = {"filter": "one_euro", "scale_px": round(float(scale), 3), "parts": settings}
    return out
