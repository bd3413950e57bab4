"""Helpers shared by the tests."""

from __future__ import annotations

import numpy as np

from animate.renderer import Renderer, register_renderer

NECK = 1


class StampRenderer(Renderer):
    """Reference image with a white 5x5 square at the neck of each pose; optional interrupt after N frames."""

    name = "stamp"
    instances: list[StampRenderer] = []

    def __init__(self, interrupt_after: int | None = None) -> None:
        self.interrupt_after = interrupt_after
        self.rendered = 0
        self.prepared: tuple | None = None
        StampRenderer.instances.append(self)

    def prepare(self, reference, reference_pose, mask=None):
        self.prepared = (reference.copy(), reference_pose, mask)

    def render(self, poses):
        ref = self.prepared[0]
        for i, pose in enumerate(poses):
            if self.interrupt_after is not None and i == self.interrupt_after:
                raise KeyboardInterrupt
            img = ref.copy()
            x, y = pose.keypoints[NECK, :2]
            if np.isfinite(x) and np.isfinite(y):
                xi, yi = int(round(x)), int(round(y))
                img[max(0, yi - 2):yi + 3, max(0, xi - 2):xi + 3] = 255
            self.rendered += 1
            yield img


register_renderer("stamp", StampRenderer)
