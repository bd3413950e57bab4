"""Tests of pose.retarget: reference limb lengths and driving joint angles kept, robust to occlusions."""

from __future__ import annotations

import numpy as np
import pytest

from pose import layout
from pose.errors import ConfigError, NoPersonError
from pose.retarget import LIMBS, retarget
from pose.sequence import PoseFrame, PoseSequence, empty_keypoints

B = layout.B
REF_W, REF_H = 704, 1216   # MusePose's reference image size
DRV_W, DRV_H = 540, 960    # the dance video at half size

# Reference character (musepose_ref.png-like proportions): long legs, broad shoulders, on its canvas.
REF_BODY = np.array([
    [352, 180], [352, 260], [282, 262], [262, 390], [255, 510], [422, 262], [442, 390], [449, 510],
    [310, 560], [305, 780], [300, 1000], [394, 560], [399, 780], [404, 1000],
    [338, 165], [366, 165], [322, 175], [382, 175],
], dtype=np.float64)

# Driving person: smaller, stockier, other proportions.
DRV_BODY = np.array([
    [270, 150], [270, 200], [230, 202], [220, 280], [215, 350], [310, 202], [320, 280], [325, 350],
    [245, 390], [243, 500], [241, 610], [295, 390], [297, 500], [299, 610],
    [262, 140], [278, 140], [254, 146], [286, 146],
], dtype=np.float64)


def _hand(wrist: np.ndarray, size: float) -> np.ndarray:
    """21 hand points spread below a wrist."""
    pts = np.zeros((layout.NUM_HAND, 2))
    for f in range(5):
        for j in range(4):
            pts[1 + 4 * f + j] = [(f - 2) * 0.25 * size, (j + 1) * 0.3 * size]
    return wrist + pts


def _face(nose: np.ndarray, size: float) -> np.ndarray:
    ang = np.linspace(0, 2 * np.pi, layout.NUM_FACE, endpoint=False)
    return nose + size * np.stack([np.cos(ang), 0.4 + 1.2 * np.sin(ang)], axis=1) * 0.5


def _frame_kps(body: np.ndarray, hand_size: float, face_size: float) -> np.ndarray:
    kps = empty_keypoints()
    kps[layout.BODY, :2] = body
    kps[layout.BODY, 2] = 0.95
    kps[layout.LEFT_HAND, :2] = _hand(body[B["left_wrist"]], hand_size)
    kps[layout.RIGHT_HAND, :2] = _hand(body[B["right_wrist"]], hand_size)
    kps[layout.FACE, :2] = _face(body[B["nose"]], face_size)
    feet = layout.FEET.start
    for side, ankle in ((0, B["left_ankle"]), (3, B["right_ankle"])):
        kps[feet + side: feet + side + 3, :2] = body[ankle] + np.array([[12, 15], [20, 12], [-6, 6]]) * face_size / 40
    for sl in (layout.LEFT_HAND, layout.RIGHT_HAND, layout.FACE, layout.FEET):
        kps[sl, 2] = 0.9
    return kps


def _rotate_child(body: np.ndarray, parent: int, child: int, angle_deg: float, subtree: list[int]) -> None:
    """Rotate ``child`` and its ``subtree`` about ``parent`` in place."""
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    for j in [child] + subtree:
        body[j] = body[parent] + rot @ (body[j] - body[parent])


def _driving(n: int = 12) -> PoseSequence:
    """The driving person waving the arms and walking to the right; constant limb lengths."""
    frames = []
    for i in range(n):
        body = DRV_BODY.copy()
        body[:, 0] += 4.0 * i
        _rotate_child(body, B["right_shoulder"], B["right_elbow"], 10.0 * i, [B["right_wrist"]])
        _rotate_child(body, B["right_elbow"], B["right_wrist"], -8.0 * i, [])
        _rotate_child(body, B["left_shoulder"], B["left_elbow"], -6.0 * i, [B["left_wrist"]])
        _rotate_child(body, B["left_knee"], B["left_ankle"], 3.0 * i, [])
        frames.append(_frame_kps(body, hand_size=30.0, face_size=40.0))
    return PoseSequence(np.stack(frames), DRV_W, DRV_H, 24.0)


def _reference() -> PoseFrame:
    return PoseFrame(_frame_kps(REF_BODY, hand_size=50.0, face_size=60.0), REF_W, REF_H)


def _lengths(body: np.ndarray) -> np.ndarray:
    return np.array([np.linalg.norm(body[c] - body[p]) for _, p, c, _ in LIMBS])


def _angles(body: np.ndarray) -> np.ndarray:
    return np.array([np.degrees(np.arctan2(*(body[c] - body[p])[::-1])) for _, p, c, _ in LIMBS])


def test_keeps_reference_lengths_and_driving_angles():
    drv, ref = _driving(), _reference()
    out = retarget(drv, ref)
    assert (out.width, out.height) == (REF_W, REF_H)
    assert len(out) == len(drv) and out.fps == drv.fps
    ref_len = _lengths(REF_BODY)
    for i in range(len(out)):
        body = out.keypoints[i, layout.BODY, :2].astype(np.float64)
        np.testing.assert_allclose(_lengths(body), ref_len, rtol=0.01)
        d_ang = _angles(body) - _angles(drv.keypoints[i, layout.BODY, :2].astype(np.float64))
        d_ang = (d_ang + 180) % 360 - 180
        assert np.abs(d_ang).max() < 1.0
    # calibration frame 0's neck lands on the reference neck; later frames walk right (scaled)
    np.testing.assert_allclose(out.keypoints[0, B["neck"], :2], REF_BODY[B["neck"]], atol=1e-3)
    assert out.keypoints[-1, B["neck"], 0] > out.keypoints[0, B["neck"], 0] + 30
    assert out.meta["retarget"]["calibration_frame"] == 0
    np.testing.assert_array_equal(out.keypoints[..., 2], drv.keypoints[..., 2])


def test_feet_anchor_puts_ankles_on_reference_ankles():
    out = retarget(_driving(), _reference(), anchor="feet")
    lowest = out.keypoints[0, [B["left_ankle"], B["right_ankle"]], 1].max()
    assert lowest == pytest.approx(REF_BODY[[10, 13], 1].max(), abs=0.5)


def test_face_and_hands_move_with_their_parents():
    drv, ref = _driving(), _reference()
    out = retarget(drv, ref)
    hand_ratio = out.meta["retarget"]["part_ratios"]["right_hand"]
    face_ratio = out.meta["retarget"]["part_ratios"]["face"]
    assert hand_ratio == pytest.approx(50.0 / 30.0, rel=0.01)
    assert face_ratio == pytest.approx(60.0 / 40.0, rel=0.01)
    for i in (0, 5, 11):
        k, d = out.keypoints[i].astype(np.float64), drv.keypoints[i].astype(np.float64)
        rel_out = k[layout.RIGHT_HAND, :2] - k[B["right_wrist"], :2]
        rel_drv = d[layout.RIGHT_HAND, :2] - d[B["right_wrist"], :2]
        np.testing.assert_allclose(rel_out, hand_ratio * rel_drv, atol=1e-2)
        rel_out = k[layout.FACE, :2] - k[B["nose"], :2]
        rel_drv = d[layout.FACE, :2] - d[B["nose"], :2]
        np.testing.assert_allclose(rel_out, face_ratio * rel_drv, atol=1e-2)


def test_occluded_reference_limb_uses_symmetric_limb():
    ref_kps = _reference().keypoints.copy()
    ref_kps[B["left_wrist"]] = [np.nan, np.nan, 0.0]   # reference's left forearm not visible
    ref = PoseFrame(ref_kps, REF_W, REF_H)
    out = retarget(_driving(), ref)
    body = out.keypoints[:, layout.BODY, :2].astype(np.float64)
    left = np.linalg.norm(body[:, B["left_wrist"]] - body[:, B["left_elbow"]], axis=1)
    right_ref = np.linalg.norm(REF_BODY[B["right_wrist"]] - REF_BODY[B["right_elbow"]])
    assert np.isfinite(body).all()
    np.testing.assert_allclose(left, right_ref, rtol=0.01)


def test_missing_driving_limb_in_calibration_does_not_explode():
    drv = _driving()
    kps = drv.keypoints.copy()
    kps[0, B["left_elbow"]] = [np.nan, np.nan, 0.0]     # occluded in the calibration frame
    kps[:, B["right_knee"]] = [np.nan, np.nan, 0.0]     # never seen at all
    out = retarget(drv.copy(kps), _reference(), calibration=0)
    k = out.keypoints
    present = k[..., 2] > 0
    assert np.isfinite(k[present, :2]).all()
    assert np.isnan(k[0, B["left_elbow"], :2]).all() and k[0, B["left_elbow"], 2] == 0   # stays missing
    assert (k[:, B["right_knee"], 2] == 0).all()
    ref_len = _lengths(REF_BODY)
    upper = [i for i, (n, *_) in enumerate(LIMBS) if n == "left_upper_arm"][0]
    lens = np.linalg.norm(k[1:, B["left_elbow"], :2] - k[1:, B["left_shoulder"], :2], axis=1)
    assert lens.max() <= 1.15 * ref_len[upper] + 1e-3
    # the right ankle hangs from the hip across the missing knee, at a sane distance
    hip_ankle = np.linalg.norm(k[:, B["right_ankle"], :2] - k[:, B["right_hip"], :2], axis=1)
    assert (hip_ankle < 1.3 * (ref_len[9] + ref_len[11])).all()


def test_foreshortened_calibration_limb_gives_no_gorilla_arms():
    drv = _driving()
    kps = drv.keypoints.copy()
    # calibration frame: the right forearm points at the camera (a tenth of its length)
    e, w = B["right_elbow"], B["right_wrist"]
    kps[0, w, :2] = kps[0, e, :2] + 0.1 * (kps[0, w, :2] - kps[0, e, :2])
    out = retarget(drv.copy(kps), _reference(), calibration=0)
    body = out.keypoints[:, layout.BODY, :2].astype(np.float64)
    fore = np.linalg.norm(body[:, w] - body[:, e], axis=1)
    ref_fore = np.linalg.norm(REF_BODY[w] - REF_BODY[e])
    assert fore.max() <= 1.15 * ref_fore + 1e-3
    ratios = out.meta["retarget"]["limb_ratios"]
    assert ratios["right_forearm"] <= 2.5 * out.meta["retarget"]["global_ratio"] * (1 + 1e-4)
    # the left forearm tells the true length: once the arm is extended again it has the reference length
    assert ratios["right_forearm"] == pytest.approx(ratios["left_forearm"], rel=1e-3)
    np.testing.assert_allclose(fore[1:], ref_fore, rtol=0.01)
    # without the symmetric limb the cap still prevents gorilla arms
    kps[0, B["left_wrist"]] = [np.nan, np.nan, 0.0]
    kps[0, B["left_elbow"]] = [np.nan, np.nan, 0.0]
    out = retarget(drv.copy(kps), _reference(), calibration=0)
    body = out.keypoints[:, layout.BODY, :2].astype(np.float64)
    fore = np.linalg.norm(body[:, w] - body[:, e], axis=1)
    assert fore.max() <= 1.15 * ref_fore + 1e-3


def test_zero_length_limbs_and_median_calibration():
    drv = _driving()
    kps = drv.keypoints.copy()
    kps[:, B["left_elbow"], :2] = kps[:, B["left_shoulder"], :2]  # degenerate limb everywhere
    ref_kps = _reference().keypoints.copy()
    ref_kps[B["right_knee"], :2] = ref_kps[B["right_hip"], :2]
    out = retarget(drv.copy(kps), PoseFrame(ref_kps, REF_W, REF_H), calibration="median")
    present = out.keypoints[..., 2] > 0
    assert np.isfinite(out.keypoints[present, :2]).all()
    assert out.meta["retarget"]["calibration_frame"] is None
    assert all(np.isfinite(v) for v in out.meta["retarget"]["limb_ratios"].values())


def test_errors():
    drv, ref = _driving(), _reference()
    with pytest.raises(NoPersonError, match="reference"):
        retarget(drv, PoseFrame.empty(REF_W, REF_H))
    with pytest.raises(ConfigError, match="calibration"):
        retarget(drv, ref, calibration=99)
    with pytest.raises(ConfigError, match="calibration"):
        retarget(drv, ref, calibration="best")
    with pytest.raises(ConfigError, match="anchor"):
        retarget(drv, ref, anchor="hips")


def _crossing(n: int = 25) -> PoseSequence:
    """The driving person (DRV_BODY, 460 px tall) shrunk 3x and walking across a 3000 x 1500 stage."""
    frames = []
    for t in range(n):
        body = DRV_BODY / 3.0 + np.array([100.0 + 2700.0 * t / (n - 1), 600.0])
        frames.append(_frame_kps(body, 20.0 / 3, 30.0 / 3))
    return PoseSequence(np.stack(frames).astype(np.float32), 3000, 1500, 24.0)


@pytest.mark.parametrize("mode", ["body", "frame", "auto", "none"])
def test_root_motion(mode):
    """How far the character travels when the dancer crosses their frame: the dancer is ~3x smaller than
    the character and crosses a stage ~4x wider than the canvas."""
    drv = _crossing()
    ref = PoseFrame(_frame_kps(REF_BODY, 40.0, 60.0), REF_W, REF_H)
    out = retarget(drv, ref, root_motion=mode)
    neck = out.keypoints[:, B["neck"], 0]
    travel = drv.keypoints[-1, B["neck"], 0] - drv.keypoints[0, B["neck"], 0]
    g = out.meta["retarget"]["global_ratio"]
    dx = drv.keypoints[:, B["neck"], 0] - drv.keypoints[0, B["neck"], 0]
    room = 0.9 * REF_W - REF_BODY[B["neck"], 0]  # to 10 % from the right side, for 99 % of the travel
    assert out.meta["retarget"]["motion_ratio"] == pytest.approx(
        {"body": g, "frame": REF_W / 3000, "auto": room / np.percentile(dx, 99), "none": 0.0}[mode], rel=1e-3)
    assert neck[0] == pytest.approx(REF_BODY[B["neck"], 0], abs=0.01)  # anchored on the reference's neck
    if mode == "body":  # the steps are the character's steps: 8 canvases away
        assert neck[-1] - neck[0] == pytest.approx(g * travel, rel=1e-3) and neck[-1] > 8 * REF_W
    if mode == "auto":  # stays on the canvas, about 10 % from its side
        assert 0.89 * REF_W < neck.max() < 0.91 * REF_W
    if mode == "none":
        assert np.ptp(neck) < 1e-3
    # the body keeps its size and shape around the neck whatever the travel
    span = out.keypoints[:, B["left_ankle"], 1] - out.keypoints[:, B["neck"], 1]
    assert np.ptp(span) < 1e-3 and span[0] == pytest.approx(REF_BODY[B["left_ankle"], 1] - REF_BODY[B["neck"], 1], rel=0.16)
    with pytest.raises(ConfigError, match="root_motion"):
        retarget(drv, ref, root_motion="walk")


def test_root_motion_from_the_command_line(tmp_path):
    from animate.cli import main as cli_main
    from pose.io import load_sequence, save_pose_frame, save_sequence

    save_sequence(_crossing(), tmp_path / "drv.json")
    save_pose_frame(PoseFrame(_frame_kps(REF_BODY, 40.0, 60.0), REF_W, REF_H), tmp_path / "ref.json")
    assert cli_main(["pose", "retarget", str(tmp_path / "drv.json"), "--reference", "unused.png", "--reference-pose",
                     str(tmp_path / "ref.json"), "--root-motion", "none", "-o", str(tmp_path / "out.json")]) == 0
    out = load_sequence(tmp_path / "out.json")
    assert out.meta["retarget"]["motion_ratio"] == 0.0 and np.ptp(out.keypoints[:, B["neck"], 0]) < 1e-3


def test_travel_without_a_neck_follows_the_body_centroid():
    """A frame whose neck was not seen travels with the centroid of the body joints that were."""
    drv = _crossing()
    kps = drv.keypoints.copy()
    kps[12, B["neck"]] = (np.nan, np.nan, 0.0)
    ref = PoseFrame(_frame_kps(REF_BODY, 40.0, 60.0), REF_W, REF_H)
    out = retarget(drv.copy(kps), ref, root_motion="none")
    hips = out.keypoints[:, [B["right_hip"], B["left_hip"]], :2].mean(axis=1)
    assert np.ptp(hips[:, 0]) < 2.0  # in place, the frame without a neck too


def test_parts_seen_without_any_body_joint_use_the_global_map():
    drv = _crossing()
    kps = drv.keypoints.copy()
    kps[12, layout.BODY] = (np.nan, np.nan, 0.0)  # only the hands, face and feet were seen
    ref = PoseFrame(_frame_kps(REF_BODY, 40.0, 60.0), REF_W, REF_H)
    out = retarget(drv.copy(kps), ref, root_motion="none")
    g = out.meta["retarget"]["global_ratio"]
    hand = kps[12, layout.LEFT_HAND, :2].astype(np.float64)
    expected = REF_BODY[B["neck"]] + g * (hand - kps[0, B["neck"], :2])
    np.testing.assert_allclose(out.keypoints[12, layout.LEFT_HAND, :2], expected, atol=0.01)


def test_wrong_argument_types_say_what_to_pass(tmp_path):
    drv, ref = _driving(), _reference()
    with pytest.raises(TypeError, match=r"PoseSequence\.from_frames"):
        retarget(drv[0], ref)
    with pytest.raises(TypeError, match="reference must be one PoseFrame.*detect_image"):
        retarget(drv, drv)
    for path in ("char.png", tmp_path / "char.png"):
        with pytest.raises(TypeError, match=r"detect_image\(path\)"):
            retarget(drv, path)
    with pytest.raises(TypeError, match="PoseSequence"):
        retarget(drv.keypoints, ref)


@pytest.mark.parametrize("options, match", [
    ({"threshold": 2}, "threshold"), ({"threshold": float("nan")}, "threshold"), ({"threshold": "0.3"}, "threshold"),
    ({"max_stretch": "big"}, "max_stretch"), ({"max_ratio_spread": float("nan")}, "max_ratio_spread"),
    ({"root_motion": "fly"}, "root_motion"), ({"calibration": 2.0}, "calibration"),
])
def test_bad_options_are_config_errors(options, match):
    with pytest.raises(ConfigError, match=match):
        retarget(_driving(), _reference(), **options)
    # checked before the inputs are measured: an empty reference does not hide the bad option
    with pytest.raises(ConfigError, match=match):
        retarget(_driving(), PoseFrame.empty(REF_W, REF_H), **options)
