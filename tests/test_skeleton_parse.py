"""pose.skeleton_parse on Moore-AnimateAnyone's real DWPose skeleton renders (tests/data/skeleton)."""

from __future__ import annotations

import numpy as np
import pytest

from pose import layout
from pose.skeleton_parse import JOINT_TOL, PALETTE, SkeletonDetector, is_skeleton_image, parse_skeleton
from pose.video import read_image

B = layout.B
SKELETONS = ["anyone-video-1_000.png", "anyone-video-1_030.png", "anyone-video-2_000.png", "anyone-video-2_030.png"]
PHOTOS = ["dance_000.jpg", "ref/anyone-1.png", "ref/anyone-2.png", "ref/anyone-3.png", "ref/anyone-5.png",
          "ref/musepose_ref.png"]
# Joints drawn away from the face (the face dots cover nose, eyes and ears in DWPose renders).
LIMB_JOINTS = list(range(1, 14))


@pytest.fixture(scope="module", params=SKELETONS)
def parsed(request, data_dir):
    img = read_image(data_dir / "skeleton" / request.param)
    return img, parse_skeleton(img)


def test_is_skeleton_image(data_dir):
    for name in SKELETONS:
        assert is_skeleton_image(read_image(data_dir / "skeleton" / name)), name
    for name in PHOTOS:
        assert not is_skeleton_image(read_image(data_dir / name)), name
    assert not is_skeleton_image(np.zeros((64, 64, 3), np.uint8))


def test_all_limb_joints_found(parsed):
    _, f = parsed
    assert f.has_person
    assert (f.body[LIMB_JOINTS, 2] > 0).all(), f.body[:, 2]
    assert f.body[B["nose"], 2] > 0  # placed at the end of the neck-nose limb when hidden


def test_plausible_anatomy(parsed):
    _, f = parsed
    b = f.body
    # neck midway between the shoulders
    mid = b[[B["right_shoulder"], B["left_shoulder"]], :2].mean(axis=0)
    shoulder_w = np.linalg.norm(b[B["right_shoulder"], :2] - b[B["left_shoulder"], :2])
    assert np.linalg.norm(b[B["neck"], :2] - mid) < 0.25 * shoulder_w
    # these dancers face the camera: the person's right is on the image's left
    assert b[B["right_shoulder"], 0] < b[B["left_shoulder"], 0]
    assert b[B["right_hip"], 0] < b[B["left_hip"], 0]
    # head above neck above hips above knees above ankles
    hip_y = b[[B["right_hip"], B["left_hip"]], 1].mean()
    assert b[B["nose"], 1] < b[B["neck"], 1] < hip_y
    for side in ("right", "left"):
        assert b[B[f"{side}_hip"], 1] < b[B[f"{side}_knee"], 1] < b[B[f"{side}_ankle"], 1]


def test_joints_lie_on_their_palette_colour(parsed):
    img, f = parsed
    imgi = img.astype(int)
    for j in range(18):
        x, y, s = f.body[j]
        if s < 1.0:  # only joints found as discs
            continue
        xi, yi = int(round(x)), int(round(y))
        patch = imgi[yi - 1: yi + 2, xi - 1: xi + 2].reshape(-1, 3)
        assert (np.abs(patch - PALETTE[j]).max(axis=1) <= JOINT_TOL).any(), (j, x, y)


def test_hands_start_at_their_wrists(parsed):
    _, f = parsed
    for side in ("left", "right"):
        hand = f.part(f"{side}_hand")
        if hand[0, 2] > 0:
            d = np.linalg.norm(hand[0, :2] - f.body[B[f"{side}_wrist"], :2])
            assert d < 25, (side, d)
    total = sum(int((f.part(p)[:, 2] > 0).sum()) for p in ("left_hand", "right_hand"))
    assert total >= 3  # at least part of a hand is read back on every test frame
    assert (f.part("face")[:, 2] == 0).all()  # face is not parsed (documented)


def test_detector_interface_and_blank():
    det = SkeletonDetector()
    f = det(np.zeros((100, 80, 3), np.uint8))
    assert not f.has_person and f.status.name == "MISSING"


def test_shifted_skeleton_shifts_keypoints(data_dir):
    img = read_image(data_dir / "skeleton" / "anyone-video-2_000.png")
    a = parse_skeleton(img)
    shifted = np.zeros_like(img)
    shifted[20:, 30:] = img[:-20, :-30]
    b = parse_skeleton(shifted)
    ok = (a.body[:, 2] >= 1.0) & (b.body[:, 2] >= 1.0)
    assert ok.sum() >= 10
    assert np.allclose(b.body[ok, :2] - a.body[ok, :2], [30, 20], atol=0.5)
