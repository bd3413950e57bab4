"""What the puppet is drawn over: the reference's own background with the character removed (the plate,
default), a plain colour (a green screen for compositing), another picture, or nothing (transparent RGBA
frames).

The layers' silhouettes are feathered with the character's own colours pushed outward
(:func:`animate.puppet.renderer.layer_texture`), never the reference's background, so a new backdrop gets
clean edges without a halo of the old one.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from pose.errors import ConfigError

PLATE = "plate"
#: No backdrop: the frames are RGBA, transparent around the character (for .webm / .mov output).
TRANSPARENT = "transparent"
#: Named backdrop colours (RGB): the chroma-key green and blue of broadcast keying, and neutrals.
COLOURS: dict[str, tuple[int, int, int]] = {
    "green": (0, 177, 64), "blue": (0, 71, 187), "black": (0, 0, 0), "white": (255, 255, 255),
    "grey": (128, 128, 128), "gray": (128, 128, 128),
}
_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")


def parse_backdrop(value: object) -> str | tuple[int, int, int] | Path:
    """Validate a ``background`` option: ``"plate"``, ``"transparent"``, a colour (a name of :data:`COLOURS`,
    ``"#rrggbb"`` or ``[r, g, b]``) or the path of an image file.

    Raises:
        ConfigError: anything else, naming the value and what is accepted.
    """
    if value is None or value == PLATE:
        return PLATE
    if isinstance(value, str) and value.lower() in (TRANSPARENT, "none"):
        return TRANSPARENT
    if isinstance(value, (list, tuple)) and len(value) == 3 and all(
            isinstance(c, (int, np.integer)) and not isinstance(c, bool) and 0 <= c <= 255 for c in value):
        return (int(value[0]), int(value[1]), int(value[2]))
    if isinstance(value, str):
        if value.lower() in COLOURS:
            return COLOURS[value.lower()]
        match = _HEX.match(value)
        if match:
            code = match.group(1)
            return (int(code[0:2], 16), int(code[2:4], 16), int(code[4:6], 16))
        path = Path(value).expanduser()
        if path.is_file():
            return path
        raise ConfigError(f"puppet option background={value!r} is neither 'plate', 'transparent', a colour "
                          f"({', '.join(sorted(COLOURS))}, #rrggbb) nor an existing image file; check the path")
    raise ConfigError(f"puppet option background={value!r} is invalid; use 'plate', 'transparent', a colour name, "
                      "'#rrggbb', [r, g, b] or an image path")


def backdrop_image(spec: str | tuple[int, int, int] | Path, size: tuple[int, int]) -> np.ndarray | None:
    """The ``(H, W, 3)`` uint8 backdrop for a canvas of ``size`` = ``(W, H)``, or ``None`` for the plate
    (black for ``transparent``: the renderer then starts from an empty RGBA canvas).

    A picture is scaled to cover the canvas (aspect kept) and cropped to its centre.
    """
    w, h = size
    if spec == PLATE:
        return None
    if spec == TRANSPARENT:
        return np.zeros((h, w, 3), np.uint8)
    if isinstance(spec, tuple):
        return np.full((h, w, 3), spec, np.uint8)
    from pose.video import read_image

    picture = read_image(spec, what="background picture")
    ph, pw = picture.shape[:2]
    scale = max(w / pw, h / ph)
    sw, sh = max(w, round(pw * scale)), max(h, round(ph * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    scaled = cv2.resize(picture, (sw, sh), interpolation=interp)
    x0, y0 = (sw - w) // 2, (sh - h) // 2
    return np.ascontiguousarray(scaled[y0:y0 + h, x0:x0 + w])
