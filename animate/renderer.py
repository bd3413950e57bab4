"""The one interface both renderers implement, and the registry that picks one by name.

A renderer turns a prepared reference (an RGB image plus its pose, both on the output canvas) and a
driving :class:`~pose.sequence.PoseSequence` already retargeted onto that canvas into RGB frames of the
canvas size. Frames are yielded one at a time so that writers can stream them and memory does not grow
with video length.
"""

from __future__ import annotations

import abc
import importlib
import inspect
from collections.abc import Callable, Iterator
from typing import ClassVar

import numpy as np

from pose.errors import ConfigError
from pose.sequence import PoseFrame, PoseSequence


class Renderer(abc.ABC):
    """Base class of animation renderers.

    Usage::

        renderer.prepare(reference_rgb, reference_pose)   # once per character
        for frame in renderer.render(driving_poses):      # (H, W, 3) uint8 RGB, canvas size
            writer.write(frame)
    """

    name: ClassVar[str] = ""
    #: Channels of the rendered frames: 3 (RGB), or 4 (RGBA, straight alpha) for a transparent background.
    channels: int = 3
    #: Smallest canvas height (px) the renderer can draw on; 0 = no limit of its own.
    min_height: int = 0

    @abc.abstractmethod
    def prepare(self, reference: np.ndarray, reference_pose: PoseFrame, mask: np.ndarray | None = None) -> None:
        """Encode the character once.

        Args:
            reference: ``(H, W, 3)`` uint8 RGB reference image, already at the output canvas size.
            reference_pose: the character's pose on that canvas.
            mask: optional ``(H, W)`` bool/uint8 user-supplied character mask (nonzero = character).
        """

    @abc.abstractmethod
    def render(self, poses: PoseSequence) -> Iterator[np.ndarray]:
        """Yield one ``(H, W, 3)`` uint8 RGB frame per pose of ``poses`` (same canvas as the reference);
        ``(H, W, 4)`` RGBA when :attr:`channels` is 4."""

    def close(self) -> None:
        """Release resources (models, pools). Safe to call twice."""


# name -> "module:Class", imported lazily so that the CPU path never imports torch.
_REGISTRY: dict[str, str] = {
    "puppet": "animate.puppet.renderer:PuppetRenderer",
    "diffusion": "animate.diffusion.renderer:DiffusionRenderer",
}


def available_renderers() -> list[str]:
    """Names accepted by :func:`create_renderer`."""
    return sorted(_REGISTRY)


def register_renderer(name: str, target: str | Callable[..., Renderer]) -> None:
    """Register a renderer class (or ``"module:Class"`` path) under ``name``."""
    _REGISTRY[name] = target  # type: ignore[assignment]


def create_renderer(name: str, **options) -> Renderer:
    """Instantiate the renderer called ``name`` with keyword ``options``.

    Raises:
        ConfigError: unknown name, or an option its constructor does not take.
    """
    target = _REGISTRY.get(name)
    if target is None:
        raise ConfigError(f"unknown renderer '{name}'; choose one of: {', '.join(available_renderers())}")
    if isinstance(target, str):
        module_name, cls_name = target.split(":")
        target = getattr(importlib.import_module(module_name), cls_name)
    try:  # an option the renderer does not take is a config error naming it, not a TypeError
        inspect.signature(target).bind(**options)
    except TypeError as exc:
        raise ConfigError(f"invalid option for renderer '{name}' ({exc}); see help({target.__module__}."
                          f"{target.__qualname__})") from None
    return target(**options)
