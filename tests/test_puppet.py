"""End-to-end CPU puppet renderer on a real reference (animate/puppet)."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
from skimage.metrics import structural_similarity

from animate.renderer import create_renderer
from pose import layout
from pose.errors import ConfigError, InputError
from pose.sequence import PoseFrame, PoseSequence

B = layout.B
H, W = 384, 224


@pytest.fixture(scope="module")
def reference(data_dir):
    extract = pytest.importorskip("pose.extract")
    bgr = cv2.imread(str(data_dir / "ref" / "musepose_ref.png"))
    rgb = cv2.cvtColor(cv2.resize(bgr, (W, H), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    return rgb, extract.detect_image(rgb)


@pytest.fixture(scope="module")
def puppet(reference):
    rgb, pose = reference
    r = create_renderer("puppet")
    r.prepare(rgb, pose)
    return r


def _seq(*frames: PoseFrame) -> PoseSequence:
    return PoseSequence.from_frames(list(frames), fps=24.0)


def _raise_arm(pose: PoseFrame, side: str = "right") -> PoseFrame:
    """Swing the forearm up about the elbow by 100 degrees (hand towards the head)."""
    new = pose.copy()
    e, wr = B[f"{side}_elbow"], B[f"{side}_wrist"]
    th = np.deg2rad(100.0 if side == "right" else -100.0)
    r = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    new.keypoints[wr, :2] = r @ (new.xy[wr] - new.xy[e]) + new.xy[e]
    hand = layout.RIGHT_HAND if side == "right" else layout.LEFT_HAND
    new.keypoints[hand] = np.nan
    new.keypoints[hand, 2] = 0.0
    return new


def test_identity_pose_reproduces_the_reference(reference, puppet):
    rgb, pose = reference
    out = next(iter(puppet.render(_seq(pose))))
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert structural_similarity(out, rgb, channel_axis=2, data_range=255) > 0.9
    assert np.abs(out.astype(float) - rgb).mean() < 4.0


def test_moved_arm_changes_the_arm_not_the_legs(reference, puppet):
    rgb, pose = reference
    base = next(iter(puppet.render(_seq(pose)))).astype(float)
    moved = next(iter(puppet.render(_seq(_raise_arm(pose))))).astype(float)
    diff = np.abs(moved - base).mean(axis=2)
    e, wr = pose.xy[B["right_elbow"]], pose.xy[B["right_wrist"]]
    yy, xx = np.mgrid[0:H, 0:W]
    r = 0.6 * np.linalg.norm(wr - e)
    near_forearm = (np.hypot(xx - (e[0] + wr[0]) / 2, yy - (e[1] + wr[1]) / 2) < r)
    knees = pose.xy[[B["right_knee"], B["left_knee"], B["right_ankle"], B["left_ankle"]]]
    legs = (yy > knees[:, 1].min() - 5) & (xx > knees[:, 0].min() - 15) & (xx < knees[:, 0].max() + 15)
    assert diff[near_forearm].mean() > 15.0
    assert diff[legs].mean() < 0.5


def test_missing_joints_never_crash_or_nan(reference, puppet):
    rgb, pose = reference
    partial = _raise_arm(pose).copy()
    for j in (B["right_wrist"], B["left_knee"], B["nose"], B["left_hip"]):
        partial.keypoints[j] = (np.nan, np.nan, 0.0)
    empty = PoseFrame.empty(W, H)
    frames = list(puppet.render(_seq(pose, partial, empty, partial)))
    assert len(frames) == 4
    for f in frames:
        assert f.shape == (H, W, 3) and f.dtype == np.uint8
    # the empty frame holds the last known joints: same picture as the partial frame before it
    assert np.abs(frames[2].astype(int) - frames[1].astype(int)).max() <= 1


def test_arap_deformation_and_fixed_layering(reference):
    rgb, pose = reference
    r = create_renderer("puppet", deformation="arap", layering=False, mesh_density=48)
    r.prepare(rgb, pose)
    same, moved = list(r.render(_seq(pose, _raise_arm(pose, "left"))))
    assert structural_similarity(same, rgb, channel_axis=2, data_range=255) > 0.9
    assert np.abs(moved.astype(float) - same).mean() > 0.5


def test_user_mask_overrides_segmentation(reference):
    rgb, pose = reference
    mask = np.zeros((H, W), np.uint8)
    x0, y0, x1, y1 = pose.bbox()
    mask[int(y0) - 20:int(y1) + 10, int(x0) - 10:int(x1) + 10] = 255  # a box: everything in it is "character"
    r = create_renderer("puppet")
    r.prepare(rgb, pose, mask=mask)
    assert r.alpha is not None and ((r.alpha >= 0.5) ^ (mask > 0)).mean() < 0.01


def test_options_and_inputs_are_validated(reference, puppet):
    rgb, pose = reference
    with pytest.raises(ConfigError, match="deformation"):
        create_renderer("puppet", deformation="magic")
    with pytest.raises(ConfigError, match="mesh_density"):
        create_renderer("puppet", mesh_density=1)
    with pytest.raises(ConfigError, match="colour"):
        create_renderer("puppet", colour="red")
    with pytest.raises(InputError, match="not prepared"):
        next(iter(create_renderer("puppet").render(_seq(pose))))
    with pytest.raises(InputError, match="canvas"):
        next(iter(puppet.render(_seq(pose.resized(W * 2, H * 2)))))


def test_cpu_path_never_imports_torch():
    code = ("import sys, numpy as np\n"
            "import animate.puppet, animate.puppet.arap, reference.segmentation, reference.mesh, reference.rig\n"
            "from animate.renderer import create_renderer\n"
            "create_renderer('puppet')\n"
            "print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
