"""CPU puppet renderer: segmented, triangulated, rigged reference character deformed per frame (no torch)."""

from .renderer import PuppetOptions, PuppetRenderer

__all__ = ["PuppetOptions", "PuppetRenderer"]
