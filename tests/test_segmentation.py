"""Character segmentation on real reference images (reference/segmentation.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pose.errors import ConfigError, InputError
from reference.segmentation import SegmentationConfig, prepare_mask, segment_person


def _load(data_dir, name: str, height: int = 384) -> np.ndarray:
    bgr = cv2.imread(str(data_dir / "ref" / name))
    w = int(round(bgr.shape[1] * height / bgr.shape[0]))
    return cv2.cvtColor(cv2.resize(bgr, (w, height), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize("name", ["musepose_ref.png", "anyone-3.png"])
def test_mask_is_plausible_on_real_references(data_dir, name):
    extract = pytest.importorskip("pose.extract")
    rgb = _load(data_dir, name)
    pose = extract.detect_image(rgb)
    alpha = segment_person(rgb, pose)
    assert alpha.shape == rgb.shape[:2] and alpha.dtype == np.float32
    assert 0.0 <= alpha.min() and alpha.max() <= 1.0
    mask = alpha >= 0.5
    assert 0.05 < mask.mean() < 0.6
    h, w = mask.shape
    corner = max(4, h // 20)
    for patch in (mask[:corner, :corner], mask[:corner, -corner:]):
        assert not patch.any()  # background corners excluded
    vis = pose.visible(0.5)[:18]
    xy = np.round(pose.xy[:18][vis]).astype(int)
    inside = mask[np.clip(xy[:, 1], 0, h - 1), np.clip(xy[:, 0], 0, w - 1)]
    assert inside.mean() >= 0.9  # the body keypoints lie on the character


def test_selfie_model_and_no_refinement_also_work(data_dir):
    rgb = _load(data_dir, "musepose_ref.png", height=256)
    alpha = segment_person(rgb, config=SegmentationConfig(model="selfie", refine=False))
    assert 0.05 < (alpha >= 0.5).mean() < 0.6


def test_prepare_mask_formats_and_errors():
    m = np.zeros((20, 30), np.uint8)
    m[5:15, 10:20] = 255
    a = prepare_mask(m, (20, 30))
    assert a.dtype == np.float32 and a.max() == 1.0 and a.sum() == 100
    np.testing.assert_array_equal(prepare_mask(m > 0, (20, 30)), a)
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., 3] = m
    np.testing.assert_array_equal(prepare_mask(rgba, (20, 30)), a)
    with pytest.raises(InputError, match="reference size"):
        prepare_mask(m, (10, 30))
    with pytest.raises(InputError, match="empty"):
        prepare_mask(np.zeros((20, 30)), (20, 30))
    with pytest.raises(ConfigError, match="model"):
        SegmentationConfig(model="sam")


def test_grabcut_growth_is_bounded_by_max_grow(data_dir):
    """GrabCut may trim the coarse mask but not glue nearby background to it (text, the gap between legs)."""
    from reference.segmentation import coarse_mask

    extract = pytest.importorskip("pose.extract")
    bgr = cv2.imread(str(data_dir / "dance_000.jpg"))
    rgb = cv2.cvtColor(cv2.resize(bgr, (216, 384), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    pose = extract.detect_image(rgb)
    coarse = coarse_mask(rgb) >= 0.5
    bounded = segment_person(rgb, pose, SegmentationConfig(max_grow=0.0, feather=0.0)) >= 0.5
    free = segment_person(rgb, pose, SegmentationConfig(max_grow=None, feather=0.0)) >= 0.5
    reach = cv2.dilate(coarse.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert (bounded & ~reach).sum() <= 0.002 * bounded.sum()
    assert bounded.sum() < free.sum()  # unbounded GrabCut adds background on this clip (subtitle, leg gap)
    with pytest.raises(ConfigError, match="max_grow"):
        SegmentationConfig(max_grow=-1.0)


def test_guided_filter_moves_a_soft_edge_onto_the_image_edge():
    from reference.segmentation import guided_filter

    guide = np.zeros((40, 60, 3), np.uint8)
    guide[:, 30:] = (230, 200, 180)                        # the character's edge is at x = 30
    # a soft mask that overshoots the edge: 0.5 at x = 22, 0.85 at x = 24.8
    src = np.clip((np.arange(60, dtype=np.float32) - 22.0) / 8.0 + 0.5, 0, 1)[None].repeat(40, 0)
    out = guided_filter(guide, src, radius=6, eps=1e-3)
    assert out.shape == src.shape and out.dtype == np.float32
    assert (src[20] >= 0.85).argmax() == 25
    assert (out[20] >= 0.85).argmax() in (29, 30)  # thresholded, the edge is (within a pixel) the image's
    assert out[20, :29].max() < 0.85 and out[20, 30:].min() > 0.95
    flat = guided_filter(np.full_like(guide, 128), src, radius=6, eps=1e-3)  # no edge to follow: a blur
    box = lambda x: cv2.blur(x, (13, 13), borderType=cv2.BORDER_REFLECT)
    np.testing.assert_allclose(flat, box(box(src)), atol=1e-4)


def test_snapping_trims_the_background_halo_of_thin_limbs(data_dir):
    """anyone-5.png (an anime woman on white): the mediapipe mask overshoots her arms and dress by a few
    pixels of white; snapped to the image's edges it keeps far fewer of them and all of her."""
    extract = pytest.importorskip("pose.extract")
    rgb = _load(data_dir, "anyone-5.png", height=640)
    pose = extract.detect_image(rgb)
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    white = (hsv[..., 2] > 215) & (hsv[..., 1] < 25)
    plain = segment_person(rgb, pose, SegmentationConfig(refine=False, threshold=0.85)) >= 0.5
    snapped = segment_person(rgb, pose, SegmentationConfig(refine=False, threshold=0.85, snap=0.012)) >= 0.5
    assert (snapped & white).sum() < 0.7 * (plain & white).sum()
    assert (snapped & ~white).sum() > 0.97 * (plain & ~white).sum()
    with pytest.raises(ConfigError, match="snap"):
        SegmentationConfig(snap=0.5)


def test_refine_feet_takes_in_a_shoe_and_no_floor():
    """A dark shoe on a light floor, the mask ending at the ankle: the local GrabCut adds the shoe only."""
    from pose import layout
    from pose.sequence import PoseFrame, empty_keypoints
    from reference.segmentation import refine_feet

    rng = np.random.default_rng(0)
    image = np.clip(rng.normal(200, 6, (120, 100, 3)), 0, 255).astype(np.uint8)  # floor
    image[20:70, 44:56] = (230, 190, 160)                                           # the shin
    image[70:92, 40:72] = (25, 20, 30)                                              # the shoe
    mask = np.zeros((120, 100), bool)
    mask[20:72, 44:56] = True
    kps = empty_keypoints()
    kps[layout.B["left_ankle"]] = (50, 70, 0.9)
    kps[layout.FEET.start + layout.FEET_NAMES.index("left_big_toe")] = (66, 86, 0.8)
    kps[layout.FEET.start + layout.FEET_NAMES.index("left_heel")] = (45, 84, 0.7)
    add = refine_feet(image, mask, PoseFrame(kps, 100, 120))
    shoe = np.zeros_like(mask)
    shoe[70:92, 40:72] = True
    assert add[shoe].mean() > 0.85  # all but the corners beyond FOOT_REACH of the toe-heel-ankle outline
    assert not add[~shoe & ~mask].any()
    assert not (add & mask).any()


def test_a_second_figure_in_the_reference_is_said(data_dir, caplog):
    """Two people side by side: the one with the pose is segmented and animated, the other stayed in the
    background without a word. Now a warning says so and how to choose; one character gives none."""
    extract = pytest.importorskip("pose.extract")
    rgb = _load(data_dir, "anyone-3.png")
    pose = extract.detect_image(rgb)
    segment_person(rgb, pose)
    assert "another figure" not in caplog.text
    pair = np.concatenate([rgb, rgb[:, ::-1]], axis=1)
    from pose.sequence import PoseFrame

    alpha = segment_person(pair, PoseFrame(pose.keypoints, pair.shape[1], pair.shape[0]))  # the left one
    assert "another figure apart from the character animated" in caplog.text and "--mask" in caplog.text
    half = rgb.shape[1]
    assert (alpha[:, :half] >= 0.5).mean() > 10 * (alpha[:, half:] >= 0.5).mean()  # the other is not taken
