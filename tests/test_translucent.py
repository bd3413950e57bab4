"""Translucent and glowing parts beside the cut-out move with the character (animate/puppet/translucent)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from animate.puppet.translucent import (
    attach_translucent,
    nearest_labels,
    translucent_fringe,
)
from animate.renderer import create_renderer

GLOW = (235, 225, 205)


def _night(h: int = 200, w: int = 200, seed: int = 0) -> np.ndarray:
    """A noisy dark blue-purple sky: no pale colour anywhere."""
    rng = np.random.default_rng(seed)
    sky = np.zeros((h, w, 3), np.float32)
    sky[..., 0] = np.linspace(30, 80, w)[None, :]
    sky[..., 1] = 25
    sky[..., 2] = np.linspace(90, 150, h)[:, None]
    return np.clip(sky + rng.normal(0, 6, sky.shape), 0, 255).astype(np.uint8)


def _character(image: np.ndarray) -> np.ndarray:
    """Paint a dark red character (rows 40:160, cols 80:120) and return its alpha."""
    image[40:160, 80:120] = (150, 30, 40)
    alpha = np.zeros(image.shape[:2], np.float32)
    alpha[40:160, 80:120] = 1.0
    return alpha


def test_fringe_is_what_the_background_around_lacks_and_touches_the_character():
    image = _night()
    alpha = _character(image)
    image[50:90, 120:128] = GLOW       # a glowing sleeve the segmentation left out
    image[120:150, 120:128] = GLOW     # a glow beside the legs (a lit floor, a shadow's rim)
    image[166:172, 62:70] = GLOW       # a lamp near the character, not touching it
    fringe = translucent_fringe(image, alpha)
    assert fringe[52:88, 121:127].all()
    assert fringe[122:148, 121:127].all()
    assert not fringe[160:, :].any(), "a lamp that does not touch the character is background"
    assert not fringe[alpha > 0].any(), "the fringe never lies inside the cut-out"
    assert not fringe[:, :80].any(), "the sky beside the character has the background's colours"
    assert fringe.sum() < 1.3 * (36 * 6 + 26 * 6) + 80

    legs = np.zeros_like(alpha, bool)
    legs[100:160, 80:120] = True
    fenced = translucent_fringe(image, alpha, exclude=legs)
    assert fenced[52:88, 121:127].all() and not fenced[110:160].any()

    empty = translucent_fringe(image, np.zeros_like(alpha))
    assert empty.shape == alpha.shape and not empty.any()


def test_attached_fringe_gives_the_reference_back_over_the_plate():
    plate = _night(seed=1)
    image = plate.copy()
    alpha_true = np.zeros(plate.shape[:2], np.float32)
    alpha_true[50:90, 120:135] = np.linspace(0.9, 0.3, 15)[None, :]  # a glow fading away from the body
    image[:] = np.clip(alpha_true[..., None] * np.array(GLOW, np.float32)
                       + (1 - alpha_true[..., None]) * plate + 0.5, 0, 255).astype(np.uint8)
    fringe = alpha_true > 0
    before = image.copy()
    alpha, colours = attach_translucent(image, plate, fringe)
    assert np.array_equal(image, before), "the reference is not modified"
    assert not alpha[~fringe].any() and np.array_equal(colours[~fringe], image[~fringe])
    inside = alpha > 0
    assert inside.sum() > 0.9 * fringe.sum() and alpha.max() <= 1.0
    assert alpha[70, 121] > alpha[70, 133], "alpha follows how far the colour stands out of the plate"
    over = alpha[..., None] * colours.astype(np.float32) + (1 - alpha[..., None]) * plate
    assert np.abs(over[inside] - image[inside].astype(np.float32)).max() <= 1.5


def test_nearest_labels_label_new_pixels_from_their_neighbours():
    labels = np.full((5, 6), -1)
    labels[:, :2] = 0
    labels[:, 4:] = 1
    owners = labels * 10
    todo = np.zeros((5, 6), bool)
    todo[:, 2:4] = True
    todo[0, 0] = True  # already labelled: kept
    new, new_owners = nearest_labels(labels, owners, todo)
    assert (new[:, 2] == 0).all() and (new[:, 3] == 1).all()
    assert (new_owners == new * 10).all()
    assert (labels[:, 2:4] == -1).all(), "inputs are not modified"


@pytest.fixture(scope="module")
def glowing(data_dir):
    """musepose_ref.png at 224x384: sheer sleeves and a skirt with a glowing rim the segmentation leaves out."""
    extract = pytest.importorskip("pose.extract")
    bgr = cv2.imread(str(data_dir / "ref" / "musepose_ref.png"))
    rgb = cv2.cvtColor(cv2.resize(bgr, (224, 384), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    return rgb, extract.detect_image(rgb)


def test_glowing_skirt_rim_leaves_the_plate_and_moves_with_her(glowing):
    """The pale glow of her skirt and sleeves stayed in the background plate as a white cloud once she
    moved (5236 bright plate pixels in the skirt's rows without the option, 113 with it, when written)."""
    rgb, pose = glowing
    h = rgb.shape[0]
    rows = slice(int(0.3 * h), int(0.75 * h))
    bright, cut = {}, {}
    for on in (False, True):
        r = create_renderer("puppet", translucent=on)
        r.prepare(rgb, pose)
        bright[on] = int((r.background[rows].min(axis=2) > 170).sum())
        cut[on] = int((r.alpha > 0.02).sum())
        if on:
            still = next(iter(r.render(_one(pose))))
    assert bright[False] > 2000 and bright[True] < 0.1 * bright[False], bright
    assert cut[True] > cut[False] + 2000, cut  # the rim is part of the character now
    assert np.abs(still.astype(float) - rgb).mean() < 4.5  # at rest the render is still the reference


def test_a_backdrop_still_gets_the_glow_with_the_character(glowing):
    rgb, pose = glowing
    r = create_renderer("puppet", background="#00ff00")
    r.prepare(rgb, pose)
    out = next(iter(r.render(_one(pose))))
    assert (r.background == (0, 255, 0)).all()
    rim = (r.alpha > 0.1) & (r.alpha < 0.9)
    assert rim.sum() > 500  # the glow is drawn half-transparent over the green
    assert (out[rim, 1].astype(int) < 250).mean() > 0.9


def _one(pose):
    from pose.sequence import PoseSequence

    return PoseSequence.from_frames([pose], fps=24.0)
