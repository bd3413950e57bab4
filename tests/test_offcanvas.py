"""A character cut by the image border continues past it (animate/puppet/offcanvas.py), and the body layer
continues under arms lying over it (renderer.covered_by_limbs)."""

from __future__ import annotations

import numpy as np

from animate.puppet.offcanvas import (
    border_padding,
    cut_sides,
    extend_past_border,
    hold_mask_at_border,
    inset_lines,
    repair_edge_lines,
)
from animate.puppet.renderer import covered_by_limbs


def test_only_the_sides_that_cut_the_character_are_extended():
    region = np.zeros((100, 80), bool)
    region[40:, 20:60] = True  # a half-body figure standing on the bottom edge
    region[10:12, 77:] = True  # a strand of hair grazing the right edge: 2 px of it, under 3 % of the height
    assert cut_sides(region, 3.0) == (False, True, False, False)
    assert border_padding(region, 25.0) == (0, 25, 0, 0)
    assert border_padding(region, 0.0) == (0, 0, 0, 0)
    assert border_padding(np.zeros((100, 80), bool), 25.0) == (0, 0, 0, 0)


def test_continuation_repeats_the_border_line_without_the_edge_line():
    h = 100
    image = np.zeros((h, 80, 3), np.uint8)
    image[50:, 20:60] = (20, 30, 50)  # a dark skirt down to the bottom edge ...
    image[-1, 20:60] = 240  # ... and the light last line many images end with
    image[50:, 60:70] = (200, 10, 10)  # a red stripe ...
    image[-3:, 60:70:2] = (10, 200, 10)  # ... with real detail in its last lines (varying along the line)
    region = np.zeros((h, 80), bool)
    region[50:, 20:70] = True
    padding = (0, 30, 0, 0)
    fixed = repair_edge_lines(image, region, padding, inset_lines(h))
    assert (fixed[-1, 20:60] == (20, 30, 50)).all()  # the edge line takes the colours of the line inside it
    assert (fixed[:-1] == image[:-1]).all()  # nothing else changes: the detail is not an edge line
    assert (fixed[-1, 60:70] == image[-1, 60:70]).all() or (fixed[-1, 60:70] == image[-2, 60:70]).all()
    out = extend_past_border(fixed, padding)
    assert out.shape == (h + 30, 80, 3) and out.dtype == np.uint8
    assert (out[h:, 20:60] == (20, 30, 50)).all() and (out[h:, :20] == 0).all() and (out[:h] == fixed).all()
    soft = extend_past_border(fixed, padding, soften=0.5)
    assert soft[h:, 60:70].std(axis=1).mean() < out[h:, 60:70].astype(float).std(axis=1).mean()  # no stripes
    mask = np.zeros((h, 80), bool)
    mask[50:, 20:60] = True
    grown = extend_past_border(mask, (10, 30, 5, 0))
    assert grown.dtype == bool and grown.shape == (h + 40, 85)
    assert grown[-1, 25:65].all() and not grown[-1, :25].any() and not grown[:10].any()
    assert extend_past_border(mask, (0, 0, 0, 0)) is mask


def test_the_mask_does_not_fade_at_a_cut_border():
    alpha = np.zeros((50, 40), np.float32)
    alpha[20:, 10:30] = 1.0
    alpha[-3, 10:30], alpha[-2, 10:30], alpha[-1, 10:30] = 0.87, 0.72, 0.6  # fading over the last lines
    held = hold_mask_at_border(alpha, (0, 10, 0, 0), inset=4)
    assert (held[-4:, 10:30] == 1.0).all() and (held[:, :10] == 0).all()
    assert (hold_mask_at_border(alpha, (0, 0, 0, 0), inset=4) == alpha).all()


def test_body_continues_under_arms_lying_over_it_not_beside_it():
    body, leg, arm = 0, 2, 1
    labels = np.full((60, 60), -1)
    labels[10:50, 15:45] = body
    labels[28:33, 20:40] = arm  # a forearm across the waist, inside the body's outline
    labels[12:40, 45:50] = arm  # an arm hanging beside the body: background on its far side
    labels[5:10, 15:45] = arm  # a long bar on top of the body: body on one side only
    covered = covered_by_limbs(labels, [body, leg], [arm], max_run=25)
    assert (covered[28:33, 20:40] == body).all()
    assert (covered[12:40, 45:50] == -1).all() and (covered[5:10] == -1).all()
    assert (covered >= 0).sum() == 5 * 20
    # a run longer than max_run is not bridged: the forearm is 20 px long, 5 px wide
    assert (covered_by_limbs(labels, [body, leg], [arm], max_run=10)[28:33, 20:40] == body).all()  # down: 5 px
    assert (covered_by_limbs(labels, [body, leg], [arm], max_run=4) == -1).all()


def test_a_hand_over_a_leg_is_continued_by_the_leg():
    body, leg, arm = 0, 2, 1
    labels = np.full((60, 60), -1)
    labels[10:30, 15:45] = body
    labels[30:58, 15:28] = leg
    labels[30:58, 28:45] = body  # the skirt beside the leg
    labels[40:46, 17:26] = arm  # a hand resting on the thigh
    labels[50:54, 25:31] = arm  # a hand across the thigh and the skirt
    covered = covered_by_limbs(labels, [body, leg], [arm], max_run=25)
    assert (covered[40:46, 17:26] == leg).all()
    assert (covered[50:54, 25:31] == body).all()  # the ends disagree: the body continues under it


def test_thin_slivers_along_an_arm_are_dropped():
    body, arm = 0, 1
    labels = np.full((60, 60), -1)
    labels[10:50, 15:45] = body
    labels[20:40, 44:50] = arm  # an arm hanging beside the body ...
    labels[20:40, 44] = arm
    labels[15:45, 43] = arm  # ... whose inner edge column finds the body above and below it
    labels[28:36, 20:30] = arm  # a hand over the belly
    covered = covered_by_limbs(labels, [body], [arm], max_run=40)
    assert (covered[15:45, 43] == body).all()  # the sliver, without an opening
    opened = covered_by_limbs(labels, [body], [arm], max_run=40, min_width=4)
    assert (opened[:, 43] == -1).all() and (opened[28:36, 20:30] == body).mean() >= 0.85  # corners rounded
