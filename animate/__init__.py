"""posedrive animate stage: renders the animation (puppet on CPU, diffusion on GPU), the CLI and the Python API.

::

    from animate import Animator

    with Animator(size=(512, 768)) as animator:
        animator.animate("character.png", "dance.mp4", "out/character.mp4")

The names below are imported on first use (``import animate`` stays cheap: the CLI's start-up and the pose
workers do not pay for the renderers).
"""

from __future__ import annotations

from pose.lazy_exports import lazy_getattr

_LAZY = {
    "Animator": "animate.api",
    "AnimateStats": "animate.api",
    "AnimateConfig": "animate.config",
    "load_config": "animate.config",
    "Renderer": "animate.renderer",
    "available_renderers": "animate.renderer",
    "create_renderer": "animate.renderer",
    "write_video": "animate.writers",
    "evaluate_self_reenactment": "animate.evaluation",
}

__all__ = list(_LAZY)


__getattr__ = lazy_getattr("animate", _LAZY, globals())


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
