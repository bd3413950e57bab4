"""Deformation on tiny hand-solvable meshes: ARAP (animate/puppet/arap.py) and the rig's skinning."""

from __future__ import annotations

import numpy as np
import pytest

from animate.puppet.arap import ARAPDeformer, barycentric_binding
from pose.errors import ConfigError, InputError
from reference.mesh import Mesh, triangulate_mask

SQUARE = Mesh([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], [[0, 1, 2], [0, 2, 3]])


def _rot(theta: float) -> np.ndarray:
    return np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])


def _bar(length: int = 80, width: int = 10) -> Mesh:
    mask = np.zeros((width + 10, length + 10), bool)
    mask[5:5 + width, 5:5 + length] = True
    return triangulate_mask(mask, spacing=3.0)


@pytest.mark.parametrize("handles", [SQUARE.vertices, np.array([[0.0, 0.0], [1.0, 1.0]]),
                                     np.array([[0.25, 0.25], [0.9, 0.5]])])
def test_square_rigid_motions_are_exact(handles):
    arap = ARAPDeformer(SQUARE, handles)
    for theta, shift in ((0.0, np.array([3.0, -2.0])), (0.7, np.array([1.0, 5.0])), (np.pi, np.zeros(2))):
        r = _rot(theta)
        out = arap.deform(handles @ r.T + shift)
        np.testing.assert_allclose(out, SQUARE.vertices @ r.T + shift, atol=1e-6)


def test_similarity_step_reproduces_a_uniform_scale():
    handles = np.array([[0.0, 0.0], [1.0, 1.0]])
    arap = ARAPDeformer(SQUARE, handles)
    out = arap.deform(2.0 * handles, scale_adjust=False)
    np.testing.assert_allclose(out, 2.0 * SQUARE.vertices, atol=1e-6)
    # the scale-adjusted result keeps edge lengths instead (handles are then only approximately met)
    rigid = arap.deform(2.0 * handles)
    assert np.linalg.norm(rigid[1] - rigid[0]) < 1.6


def test_bar_bent_at_a_joint_keeps_its_segments_rigid():
    mesh = _bar()
    ends = np.array([[5.0, 10.0], [25.0, 10.0], [45.0, 10.0], [65.0, 10.0], [84.0, 10.0]])  # joint = handle 2
    arap = ARAPDeformer(mesh, ends)
    # right half turned 90 degrees about the joint (downwards, +y)
    targets = ends.copy()
    targets[3:] = (ends[3:] - ends[2]) @ _rot(np.pi / 2).T + ends[2]
    out = arap.deform(targets)
    v = mesh.vertices
    left = v[:, 0] < 25
    right = v[:, 0] > 70
    assert np.abs(out[left] - v[left]).max() < 2.0  # the fixed half barely moves
    expected = (v[right] - ends[2]) @ _rot(np.pi / 2).T + ends[2]
    assert np.abs(out[right] - expected).max() < 3.5  # the far half follows the rotation
    # edges keep their lengths away from the joint (as rigid as possible)
    e = mesh.edges()
    far = (np.abs(v[e[:, 0], 0] - 45) > 15) & (np.abs(v[e[:, 1], 0] - 45) > 15)
    rest = np.linalg.norm(v[e[far, 0]] - v[e[far, 1]], axis=1)
    new = np.linalg.norm(out[e[far, 0]] - out[e[far, 1]], axis=1)
    assert np.abs(new / rest - 1).max() < 0.15


def test_barycentric_binding_inside_and_outside():
    tris, bary = barycentric_binding(SQUARE, np.array([[0.75, 0.25], [2.0, 0.5]]))
    np.testing.assert_allclose(bary.sum(axis=1), 1.0)
    p = (SQUARE.vertices[tris] * bary[:, :, None]).sum(axis=1)
    np.testing.assert_allclose(p, [[0.75, 0.25], [2.0, 0.5]], atol=1e-9)  # extrapolates outside
    assert (bary[0] >= -1e-12).all()


def test_arap_validates_its_inputs():
    with pytest.raises(ConfigError):
        ARAPDeformer(SQUARE, np.array([[0.0, 0.0]]))
    arap = ARAPDeformer(SQUARE, SQUARE.vertices)
    with pytest.raises(InputError):
        arap.deform(np.full((4, 2), np.nan))
    with pytest.raises(InputError):
        arap.deform(np.zeros((3, 2)))


def test_skinning_bends_a_limb_at_its_joint():
    """The rig's limb transforms + smooth weights: rigid far from the elbow, continuous at it."""
    from pose.sequence import PoseFrame, empty_keypoints
    from reference.rig import Rig

    kps = empty_keypoints()
    joints = {1: (100, 50), 2: (80, 50), 5: (120, 50), 8: (90, 120), 11: (110, 120),
              3: (40, 50), 4: (0, 50)}  # right arm straight out to the left
    for j, (x, y) in joints.items():
        kps[j] = (x, y, 1.0)
    ref = PoseFrame(kps, 200, 200)
    rig = Rig(ref)
    new = kps.copy()
    new[4, :2] = (40, 90)  # forearm turned 90 degrees down about the elbow
    cur = rig.complete_joints(PoseFrame(new, 200, 200))
    m = rig.bone_transforms(cur)
    pts = np.array([[10.0, 50.0], [60.0, 50.0], [40.0, 50.0]])  # forearm, upper arm, elbow
    w = rig.skinning_weights(pts, "right_arm")
    out = np.einsum("pb,pbi->pi", w, np.einsum("bij,pj->pbi", m[:, :, :2], pts) + m[None, :, :, 2])
    np.testing.assert_allclose(out[0], [40.0, 80.0], atol=1.5)
    np.testing.assert_allclose(out[1], [60.0, 50.0], atol=1.5)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(w.sum(axis=1), 1.0)


def _standing_rig(**opts):
    """A hand-made standing figure on a 200x300 canvas (neck at the top, legs apart at the bottom)."""
    from pose.sequence import PoseFrame, empty_keypoints
    from reference.rig import Rig

    kps = empty_keypoints()
    joints = {0: (100, 30), 1: (100, 60), 2: (80, 60), 5: (120, 60), 3: (70, 100), 4: (65, 140),
              6: (130, 100), 7: (135, 140), 8: (90, 150), 11: (110, 150), 9: (88, 210), 12: (112, 210),
              10: (86, 270), 13: (114, 270), 14: (95, 25), 15: (105, 25)}
    for j, (x, y) in joints.items():
        kps[j] = (x, y, 1.0)
    return Rig(PoseFrame(kps, 200, 300), **opts), kps


def test_labels_scored_near_the_mask_only_match_scoring_the_whole_grid():
    """layer_maps scores only the grid points next to the mask: the labels are those of scoring every point."""
    import cv2

    rig, _ = _standing_rig()
    mask = np.zeros((300, 200), bool)
    cv2.ellipse(mask.view(np.uint8), (100, 150), (45, 140), 0, 0, 360, 1, -1)
    mask[5:12, 150:153] = True  # an odd speck away from the figure, on and off the step-2 grid
    mask[299, 0] = True
    for step in (2, 3):
        labels, owners = rig.layer_maps(mask, step)
        ys, xs = np.mgrid[0:300:step, 0:200:step]
        pts = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
        layer_of_bone = np.array([rig.layers.index(b.layer) for b in rig.bones], np.int8)
        every = layer_of_bone[np.argmin(rig.bone_scores(pts), axis=1)].reshape(ys.shape)
        full = cv2.resize(every, (200, 300), interpolation=cv2.INTER_NEAREST)
        np.testing.assert_array_equal(owners[mask], full[mask])
        assert (owners[~mask] == -1).all() and (labels[~mask] == -1).all()


def test_legs_get_their_own_layers_below_the_hips():
    rig, _ = _standing_rig(thigh_body_fraction=0.5)
    assert rig.layers == ["right_leg", "left_leg", "body", "right_arm", "left_arm"]
    mask = np.ones((300, 200), bool)
    mask[170:, 99:102] = False  # the gap between the legs below the crotch
    labels = rig.label_layers(mask, step=1)
    name = lambda x, y: rig.layers[labels[y, x]]
    assert name(88, 160) == "body"        # top of the right thigh (hip / skirt region)
    assert name(88, 200) == "right_leg"   # lower thigh
    assert name(113, 250) == "left_leg"   # left shin
    assert name(100, 100) == "body"       # chest
    one, _ = _standing_rig(leg_layers=False)
    assert one.layers == ["body", "right_arm", "left_arm"]


def test_body_skinning_blends_the_thighs_and_legs_part_cleanly():
    """Spreading the legs: a hip-region vertex of the body follows the thighs partly, each shin its own."""
    from pose.sequence import PoseFrame

    rig, kps = _standing_rig()
    new = kps.copy()
    new[[9, 10], 0] -= (20, 40)   # right knee and ankle swing outwards
    new[[12, 13], 0] += (20, 40)  # left ones too
    cur = rig.complete_joints(PoseFrame(new, 200, 300))
    m = rig.bone_transforms(cur)

    def move(pts, layer):
        w = rig.skinning_weights(pts, layer, 5.0)
        return np.einsum("pb,pbi->pi", w, np.einsum("bij,pj->pbi", m[:, :, :2], pts) + m[None, :, :, 2])

    shins = np.array([[86.0, 250.0], [114.0, 250.0]])
    out_r, out_l = move(shins[:1], "right_leg"), move(shins[1:], "left_leg")
    assert out_r[0, 0] < 60.0 and out_l[0, 0] > 140.0  # the shins went apart with their own legs
    hip = move(np.array([[90.0, 165.0]]), "body")
    assert 70.0 < hip[0, 0] < 90.0  # follows the right thigh partly, the torso partly
    np.testing.assert_allclose(move(np.array([[100.0, 100.0]]), "body"), [[100.0, 100.0]], atol=0.5)


def test_torso_affine_blend_and_rig_validation():
    from pose.errors import ConfigError
    from pose.sequence import PoseFrame

    stiff, kps = _standing_rig(torso_affine=0.0)
    loose, _ = _standing_rig(torso_affine=1.0)
    new = kps.copy()
    new[[2, 8], 0] += 10.0  # right shoulder and hip come in: the torso narrows (a turn)
    cur = stiff.complete_joints(PoseFrame(new, 200, 300))
    k = stiff.bone_names.index("torso")
    lin_stiff, lin_loose = stiff.bone_transforms(cur)[k][:, :2], loose.bone_transforms(cur)[k][:, :2]
    assert abs(lin_stiff[0, 0] - lin_stiff[1, 1]) < 1e-9  # similarity: uniform scale
    assert lin_loose[0, 0] < 0.8 and abs(lin_loose[1, 1] - 1.0) < 0.05  # affine: narrower, same height
    with pytest.raises(ConfigError, match="thigh_body_fraction"):
        _standing_rig(thigh_body_fraction=1.5)
    with pytest.raises(ConfigError, match="torso_affine"):
        _standing_rig(torso_affine=-0.1)


def test_steady_torso_keeps_the_reference_torso_length_along_the_driving_lean():
    from pose.errors import ConfigError
    from pose.sequence import PoseFrame

    stiff, kps = _standing_rig()  # neck (100, 60), hips (90, 150) and (110, 150): torso 90 px
    new = kps.copy()
    new[[8, 11], 1] -= 12.0  # the detected hips rise 12 px (under a skirt), the shoulders stay
    cur = stiff.complete_joints(PoseFrame(new, 200, 300))
    out = stiff.steady_torso(cur)
    np.testing.assert_allclose(out[[8, 11]], [[90.0, 150.0], [110.0, 150.0]], atol=1e-9)  # back to 90 px
    np.testing.assert_array_equal(np.delete(out, [8, 11], axis=0), np.delete(cur, [8, 11], axis=0))
    assert cur[8, 1] == 138.0  # the input is not modified

    lean = kps.copy()
    lean[[8, 11], 0] += 30.0  # the hips swing 30 px to the side (a lean): direction kept, length restored
    lean[[8, 11], 1] -= 20.0
    out = stiff.steady_torso(stiff.complete_joints(PoseFrame(lean, 200, 300)))
    mid = 0.5 * (out[8] + out[11])
    assert abs(np.linalg.norm(mid - out[1]) - 90.0) < 1e-9
    np.testing.assert_allclose((mid - out[1]) / 90.0, np.array([30.0, 70.0]) / np.hypot(30.0, 70.0))
    np.testing.assert_allclose(out[11] - out[8], [20.0, 0.0])  # hip width and tilt kept

    half, _ = _standing_rig(torso_stiffness=0.5)
    free, _ = _standing_rig(torso_stiffness=0.0)
    np.testing.assert_allclose(half.steady_torso(cur)[[8, 11], 1], [144.0, 144.0])
    np.testing.assert_array_equal(free.steady_torso(cur), cur)
    with pytest.raises(ConfigError, match="torso_stiffness"):
        _standing_rig(torso_stiffness=1.5)


def test_skirt_over_a_squashed_thigh_keeps_half_its_length():
    from pose.errors import ConfigError
    from pose.sequence import PoseFrame

    rig, kps = _standing_rig()  # right thigh (90, 150) -> (88, 210)
    squat = kps.copy()
    squat[[8, 11], 1] += 12.0  # hips drop 12 px, knees stay: the thighs are 20 % shorter on screen
    squat[[1, 2, 5, 0, 14, 15], 1] += 12.0
    joints = rig.steady_torso(rig.complete_joints(PoseFrame(squat, 200, 300)))
    full = rig.bone_transforms(joints)
    body = rig.body_transforms(joints, full)
    k = rig.bone_names.index("right_thigh")
    knee = np.array([88.0, 210.0, 1.0])
    np.testing.assert_allclose(full[k] @ knee, joints[9], atol=1e-9)  # the leg layer reaches the knee
    hip = joints[8]
    reach = np.linalg.norm(body[k] @ knee - hip) / np.linalg.norm(knee[:2] - [90.0, 150.0])
    full_reach = np.linalg.norm(joints[9] - hip) / np.linalg.norm(knee[:2] - [90.0, 150.0])
    assert abs(reach - (1.0 + 0.5 * (full_reach - 1.0))) < 1e-9  # half the squash
    np.testing.assert_allclose((body[k] @ knee - hip) / np.linalg.norm(body[k] @ knee - hip),
                               (joints[9] - hip) / np.linalg.norm(joints[9] - hip), atol=1e-9)  # same turn
    others = [i for i in range(len(rig.bones)) if rig.bones[i].name not in ("right_thigh", "left_thigh")]
    np.testing.assert_array_equal(body[others], full[others])
    stiff, _ = _standing_rig(skirt_stretch=1.0)
    assert stiff.body_transforms(joints, full) is full
    with pytest.raises(ConfigError, match="skirt_stretch"):
        _standing_rig(skirt_stretch=2.0)


def test_head_follows_the_ears_when_the_face_turns():
    from pose.sequence import PoseFrame
    from reference.rig import Rig

    _, kps = _standing_rig()
    kps[16], kps[17] = (88, 30, 1.0), (112, 30, 1.0)  # ears beside the eyes (95, 25), (105, 25)
    skull, ears = Rig(PoseFrame(kps, 200, 300)), Rig(PoseFrame(kps, 200, 300), head_from_ears=False)
    k = skull.bone_names.index("head")
    turned = kps.copy()
    turned[[0, 14, 15], 0] += 6.0  # the head turns: nose and eyes slide sideways, the skull stays
    joints = skull.complete_joints(PoseFrame(turned, 200, 300))
    np.testing.assert_allclose(skull.bone_transforms(joints)[k], [[1, 0, 0], [0, 1, 0]], atol=1e-9)
    slid = ears.bone_transforms(joints)[k]
    assert slid[0, 2] > 2.0  # the features drag the whole head (hair outline) sideways
    moved = turned.copy()
    moved[[0, 14, 15, 16, 17], 0] += 10.0  # the whole head moves: both rigs follow it
    joints = skull.complete_joints(PoseFrame(moved, 200, 300))
    assert skull.bone_transforms(joints)[k][0, 2] > 5.0
    lost = turned.copy()
    lost[17, 2] = 0.0  # one ear not detected (filled in): the features drive the head again
    joints = skull.complete_joints(PoseFrame(lost, 200, 300), last=joints)
    seen = PoseFrame(lost, 200, 300).visible(skull.threshold)[:18]
    np.testing.assert_allclose(skull.bone_transforms(joints, skull_weight=skull.skull_target(seen))[k],
                               ears.bone_transforms(joints)[k])


def test_head_fades_between_the_skull_and_the_face_when_the_ears_come_and_go():
    from itertools import pairwise

    import cv2

    from animate.puppet import PuppetRenderer
    from pose.sequence import PoseFrame
    from reference.rig import SKULL_FADE

    _, kps = _standing_rig()
    kps[16], kps[17] = (88, 30, 1.0), (112, 30, 1.0)
    turned = kps.copy()
    turned[[0, 14, 15], 0] += 6.0
    lost = turned.copy()
    lost[17, 2] = 0.0  # a skeleton video drops the far ear in some frames
    ref = np.full((300, 200, 3), 255, np.uint8)
    cv2.rectangle(ref, (80, 15), (120, 290), (200, 80, 60), -1)
    r = PuppetRenderer(threads=1)
    r.prepare(ref, PoseFrame(kps, 200, 300), mask=(ref[..., 0] < 250).astype(np.float32))
    rig, k = r.rig, r.rig.bone_names.index("head")
    joints = rig.complete_joints(PoseFrame(turned, 200, 300))
    skull, face = rig.bone_transforms(joints, skull_weight=1.0)[k], rig.bone_transforms(joints, skull_weight=0.0)[k]
    np.testing.assert_allclose(rig.bone_transforms(joints, skull_weight=0.25)[k], 0.25 * skull + 0.75 * face)
    assert abs(skull[0, 2] - face[0, 2]) > 2.0
    weights, shifts = [], []
    for frame in [turned, turned, lost, turned, lost, lost, lost, lost, lost]:
        _, transforms, _ = r._plan(PoseFrame(frame, 200, 300))
        weights.append(r._skull_weight)
        shifts.append(transforms["*"][k][0, 2])
    assert weights[:2] == [1.0, 1.0] and weights[-1] == 0.0
    assert max(abs(a - b) for a, b in pairwise(weights)) <= SKULL_FADE + 1e-12
    assert max(abs(a - b) for a, b in pairwise(shifts)) < 0.5 * abs(skull[0, 2] - face[0, 2])


def test_head_keeps_its_size_when_the_shoulders_rise():
    from pose.sequence import PoseFrame
    from reference.rig import Rig

    _, kps = _standing_rig()
    kps[16], kps[17] = (88, 30, 1.0), (112, 30, 1.0)
    rig = Rig(PoseFrame(kps, 200, 300), torso_stiffness=0.0)
    k, t = rig.bone_names.index("head"), rig.bone_names.index("torso")
    shrug = kps.copy()
    shrug[[1, 2, 5], 1] -= 12.0  # neck and shoulders rise 12 px towards the ears (the neck-ear distance halves)
    m = rig.bone_transforms(rig.complete_joints(PoseFrame(shrug, 200, 300)))
    head_scale = np.sqrt(abs(np.linalg.det(m[k][:, :2])))
    assert abs(head_scale - np.sqrt(abs(np.linalg.det(m[t][:, :2])))) < 1e-9  # the torso's size, not the fit's
    assert head_scale > 0.85  # the neck/ear similarity alone would shrink the head to about 0.6
    np.testing.assert_allclose(m[k] @ [100.0, 30.0, 1.0], [100.0, 30.0], atol=1.5)  # the skull stays by the ears
    grown = kps.copy()
    grown[:18, :2] = (kps[:18, :2] - [100.0, 150.0]) * 1.2 + [100.0, 150.0]  # the dancer comes closer
    m = rig.bone_transforms(rig.complete_joints(PoseFrame(grown, 200, 300)))
    assert abs(np.sqrt(abs(np.linalg.det(m[k][:, :2]))) - 1.2) < 1e-6


def _with_hand(kps: np.ndarray, side: str, angle_deg: float) -> np.ndarray:
    """Add a hand (wrist + 4 knuckles, 20 px long) at the body wrist, pointing ``angle_deg`` off the forearm."""
    from pose import layout

    out = kps.copy()
    b = layout.B
    e, w = out[b[f"{side}_elbow"], :2].astype(float), out[b[f"{side}_wrist"], :2].astype(float)
    th = np.deg2rad(angle_deg)
    u = (w - e) / np.linalg.norm(w - e)
    d = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]]) @ u
    hand = layout.LEFT_HAND if side == "left" else layout.RIGHT_HAND
    out[hand.start] = (*w, 1.0)
    normal = np.array([-d[1], d[0]])
    for finger in range(5):  # keypoints 1-4 thumb, 5-8 index, ..., 17-20 little finger: knuckle first
        for j in range(4):
            out[hand.start + 1 + 4 * finger + j] = (*(w + (20 + 4 * j) * d + normal * (finger - 2) * 4), 1.0)
    return out


def test_hands_turn_to_the_detected_hand_and_ease_back_when_lost():
    from pose import layout
    from pose.sequence import PoseFrame
    from reference.rig import HAND_BEND_DECAY, MAX_HAND_BEND

    straight, kps = _standing_rig()
    rig, _ = _standing_rig()
    rig = type(rig)(PoseFrame(_with_hand(kps, "right", 0.0), 200, 300))  # reference hand continues the forearm
    frame = PoseFrame(_with_hand(kps, "right", 40.0), 200, 300)  # the wrist bent by 40 degrees
    joints = rig.complete_joints(frame)
    bends = rig.hand_bends(joints, frame)
    assert bends["right"] == pytest.approx(np.deg2rad(40.0), abs=1e-3) and bends["left"] == 0.0
    m = rig.bone_transforms(joints, None, bends)
    k = [b.name for b in rig.bones].index("right_hand")
    wrist = rig.ref_joints[4]
    tip = _with_hand(kps, "right", 0.0)[layout.RIGHT_HAND][[5, 9, 13, 17], :2].mean(axis=0)  # reference knuckles
    moved = m[k, :, :2] @ tip + m[k, :, 2]
    np.testing.assert_allclose(m[k, :, :2] @ wrist + m[k, :, 2], wrist, atol=1e-6)  # pinned at the wrist
    expected = frame.keypoints[layout.RIGHT_HAND][[5, 9, 13, 17], :2].mean(axis=0)
    np.testing.assert_allclose(moved, expected, atol=0.5)  # the hand points where the detected one does
    # without bends (or with the option off) the hand continues the forearm, as before
    np.testing.assert_allclose(rig.bone_transforms(joints)[k], straight.bone_transforms(joints)[k], atol=1e-9)
    # the hand lost: the bend fades instead of snapping back
    lost = PoseFrame(kps, 200, 300)
    faded = rig.hand_bends(joints, lost, bends)
    assert faded["right"] == pytest.approx(HAND_BEND_DECAY * bends["right"])
    # an implausible bend (e.g. the hands swapped) is capped
    wild = PoseFrame(_with_hand(kps, "right", 170.0), 200, 300)
    assert abs(rig.hand_bends(joints, wild)["right"]) == pytest.approx(MAX_HAND_BEND)


def test_hand_bone_claims_only_the_detected_hand():
    from pose import layout
    from pose.sequence import PoseFrame

    plain, kps = _standing_rig()
    rig = type(plain)(PoseFrame(_with_hand(kps, "right", 90.0), 200, 300))  # hand bent sideways off the forearm
    k = [b.name for b in rig.bones].index("right_hand")
    wrist = rig.ref_joints[4]
    knuckles = _with_hand(kps, "right", 90.0)[layout.RIGHT_HAND][[5, 9, 13, 17], :2].mean(axis=0)
    along_forearm = wrist + 16 * (wrist - rig.ref_joints[3]) / np.linalg.norm(wrist - rig.ref_joints[3])
    scores = rig.bone_scores(np.array([knuckles, along_forearm]))
    assert scores[0, k] == 0.0                  # inside the detected hand's outline: the hand bone
    assert np.isinf(scores[1, k])               # where the forearm's continuation would be, but no hand is
    assert np.isfinite(plain.bone_scores(np.array([along_forearm]))[0, k])  # no hand keypoints: as before


def test_head_claims_the_hair_beside_a_raised_forearm_and_the_torso_its_clothes():
    from pose.sequence import PoseFrame

    _, kps = _standing_rig()
    raised = kps.copy()
    raised[3, :2], raised[4, :2] = (70, 60), (70, 20)  # right forearm held up beside the head
    rig = type(_)(PoseFrame(raised, 200, 300))
    labels = rig.label_layers(np.ones((300, 200), bool), step=1)
    name = lambda x, y: rig.layers[labels[y, x]]
    assert name(80, 20) == "body"       # between the forearm and the face: hair, with the head
    assert name(72, 20) == "right_arm"  # on the forearm
    standing, _ = _standing_rig()
    labels = standing.label_layers(np.ones((300, 200), bool), step=1)
    assert standing.layers[labels[100, 82]] == "body"       # a hanging arm's neighbour inside the torso
    assert standing.layers[labels[100, 72]] == "right_arm"  # the arm itself


def test_body_underlay_fills_a_notch_with_the_body_colours():
    from animate.puppet.renderer import body_underlay, extend_colours

    labels = np.full((60, 60), -1, np.int8)
    labels[10:50, 10:50] = 0                 # body
    labels[25:35, 40:50] = 1                 # a hand biting into its side
    labels[25:35, 50:58] = 1                 # ... and the rest of the arm outside it
    region = labels >= 0
    under = body_underlay(labels, 0, region, 6)
    assert under[25:35, 40:46].all() and not under[:, 50:].any() and not under[labels == 0].any()
    image = np.zeros((60, 60, 3), np.uint8)
    image[labels == 0] = (20, 40, 200)
    image[labels == 1] = (230, 180, 150)
    filled = extend_colours(image, labels == 0, under)
    np.testing.assert_array_equal(filled[under], np.tile([20, 40, 200], (int(under.sum()), 1)))
    np.testing.assert_array_equal(filled[~under], image[~under])
    np.testing.assert_array_equal(image[labels == 1][0], [230, 180, 150])  # the input is untouched


def _hand_on_the_side() -> tuple[np.ndarray, np.ndarray]:
    labels = np.full((90, 70), -1, np.int8)
    labels[10:80, 10:50] = 0                 # body ...
    labels[38:52, 38:66] = 1                 # ... and a hand biting into its side
    return labels, np.zeros((90, 70, 3), np.uint8)


def test_fill_keeps_the_edge_between_two_garments_under_a_hand():
    """A hand over the hem of the shorts: the fill is denim above the hem and skin below it, not a blend
    of the two found nowhere on the character; softening changes only the filled pixels."""
    from animate.puppet.renderer import body_underlay, extend_colours

    labels, image = _hand_on_the_side()
    image[10:45][labels[10:45] == 0] = (40, 60, 150)    # denim
    image[45:80][labels[45:80] == 0] = (230, 190, 170)  # thigh
    image[labels == 1] = (250, 200, 180)
    under = body_underlay(labels, 0, labels >= 0, 10)
    assert under[38:52, 38:46].all()
    sharp = extend_colours(image, labels == 0, under, soften=0)
    np.testing.assert_array_equal(sharp[38:44, 38:46].reshape(-1, 3), np.tile([40, 60, 150], (48, 1)))
    np.testing.assert_array_equal(sharp[46:52, 38:46].reshape(-1, 3), np.tile([230, 190, 170], (48, 1)))
    soft = extend_colours(image, labels == 0, under, soften=2.0)
    np.testing.assert_array_equal(soft[~under], image[~under])
    assert soft[38, 40, 2] > 140 and soft[51, 40, 2] < 180  # still denim at the top, skin at the bottom


def test_stretched_fill_continues_a_seam_down_the_side_of_the_body():
    """A hand biting into the body's side hides part of a dark side seam: with horizontal distances
    counted longer the notch is filled from the seam above and below it, not from the light middle."""
    from animate.puppet.renderer import body_underlay, extend_colours

    labels, image = _hand_on_the_side()
    image[labels == 0] = 200
    image[10:80, 44:50] = (30, 30, 120)      # the seam along the side
    image[labels == 1] = (230, 180, 150)
    truth = image.copy()
    truth[38:52, 38:44], truth[38:52, 44:50] = 200, (30, 30, 120)
    under = body_underlay(labels, 0, labels >= 0, 10)

    def error(stretch: float) -> float:
        filled = extend_colours(image, labels == 0, under, stretch=stretch, soften=0)
        return float(np.abs(filled[under].astype(float) - truth[under]).mean())

    assert error(1.3) < 0.5 * error(1.0)  # measured 0.0 vs 2.1


def test_bridged_fill_continues_the_shading_down_the_side():
    """A hand in the body's side over clothes shaded from light to dark down the body: the bridged fill
    interpolates between the clothes above and below the notch (the nearest colour makes a step)."""
    from animate.puppet.renderer import body_underlay, extend_colours

    labels, image = _hand_on_the_side()
    shade = np.linspace(220, 60, 90).astype(np.uint8)[:, None]
    image[..., 0], image[..., 1], image[..., 2] = shade, shade, 120
    truth = image.copy()
    image[labels == 1] = (230, 180, 150)
    under = body_underlay(labels, 0, labels >= 0, 10)

    def error(bridge: float) -> float:
        filled = extend_colours(image, labels == 0, under, stretch=1.3, soften=0, bridge=bridge)
        return float(np.abs(filled[under].astype(float) - truth[under]).mean())

    assert error(20.0) < 0.2 * error(0.0)  # measured 0.07 vs 3.0


def test_bridged_fill_never_mixes_two_garments():
    """Under a hand over the hem of the shorts, the ends of a line down the notch are denim and skin: it is
    not interpolated (a colour found on neither); the fill stays denim above the hem, skin below it."""
    from animate.puppet.renderer import body_underlay, extend_colours

    labels, image = _hand_on_the_side()
    image[10:45][labels[10:45] == 0] = (40, 60, 150)    # denim
    image[45:80][labels[45:80] == 0] = (230, 190, 170)  # thigh
    image[labels == 1] = (250, 200, 180)
    under = body_underlay(labels, 0, labels >= 0, 10)
    filled = extend_colours(image, labels == 0, under, stretch=1.3, soften=0, bridge=40.0)
    np.testing.assert_array_equal(filled[38:44, 38:46].reshape(-1, 3), np.tile([40, 60, 150], (48, 1)))
    np.testing.assert_array_equal(filled[46:52, 38:46].reshape(-1, 3), np.tile([230, 190, 170], (48, 1)))


def test_absorb_islands_joins_cut_off_pieces_to_their_surroundings():
    from reference.rig import absorb_islands

    labels = np.full((40, 40), -1, np.int8)
    labels[5:35, 5:35] = 0            # body
    labels[10:20, 10:14] = 1          # the arm ...
    labels[25:28, 25:28] = 1          # ... and a stray piece of it inside the body
    labels[1:3, 37:39] = 1            # a separate blob of the mask labelled arm: nothing to join
    out = absorb_islands(labels)
    assert (out[25:28, 25:28] == 0).all() and (out[10:20, 10:14] == 1).all() and (out[1:3, 37:39] == 1).all()
    assert (labels[25:28, 25:28] == 1).all()  # the input is untouched


def test_absorb_islands_keeps_large_pieces():
    """A forearm lying across the waist cuts the body in two; the skirt below it is no stray piece."""
    from reference.rig import absorb_islands

    labels = np.full((60, 40), -1, np.int8)
    labels[5:55, 5:35] = 0            # body (blouse above, skirt below)
    labels[28:34, 3:37] = 1           # a forearm across it: the body is cut in two
    labels[8:10, 8:10] = 1            # and a stray arm piece inside the blouse
    out = absorb_islands(labels)
    assert (out[34:55, 5:35] == 0).all()  # the skirt (2/3 of the blouse's area) stays body
    assert (out[8:10, 8:10] == 0).all()
    assert (absorb_islands(labels, keep_fraction=1.01)[34:55, 5:35] == 1).all()  # everything small: joins the arm


def test_absorb_islands_gives_a_thigh_cut_off_by_a_hand_back_to_its_leg():
    """A hand resting on the thigh cuts the body's share of the thigh off the shorts; it borders the hand
    more than the leg below it, but the thigh's bone is the leg's."""
    from reference.rig import absorb_islands

    labels = np.full((80, 40), -1, np.int8)
    labels[5:40, 5:35] = 2            # body: the shorts
    labels[40:50, 10:30] = 2          # body: its share of the thigh, below the shorts
    labels[50:75, 10:30] = 0          # the leg
    labels[38:51, 5:12] = 3           # the hand along the thigh's outer side ...
    labels[38:41, 12:30] = 3          # ... and over the shorts' hem
    owners = np.where(labels >= 0, 2, -1).astype(np.int8)
    owners[40:75, 10:30] = 0          # the thigh's pixels are nearest to the leg's bones
    owners[38:51, 5:12] = 3
    assert (absorb_islands(labels)[41:50, 12:30] == 3).all()  # by border alone it went with the hand
    out = absorb_islands(labels, owners=owners)
    assert (out[41:50, 12:30] == 0).all() and (out[5:38, 5:35] == 2).all() and (out[38:51, 5:12] == 3).all()
    owners[40:75, 10:30] = 1          # owned by a layer that does not border it: the border decides
    assert (absorb_islands(labels, owners=owners)[41:50, 12:30] == 3).all()


def test_rig_bone_layers_leave_the_thigh_top_to_the_leg():
    rig, _ = _standing_rig(thigh_body_fraction=0.5)
    mask = np.ones((300, 200), bool)
    assert rig.layers[rig.label_layers(mask, step=1)[160, 88]] == "body"
    owners = rig.bone_layers(mask, step=1)
    assert rig.layers[owners[160, 88]] == "right_leg" and rig.layers[owners[100, 100]] == "body"


def test_hidden_limb_finds_where_the_body_covers_an_arm():
    """A hand-made right arm (shoulder (80, 60) -> elbow (70, 100) -> wrist (65, 140)) 10 px wide, with a
    bite out of its outer side where the body (a ruffle) lies over it: the bite is the arm's hidden part;
    an arm without a bite has none."""
    from pose.sequence import PoseFrame
    from reference.rig import Rig

    _, kps = _standing_rig()
    kps = kps.copy()
    kps[[2, 3, 4], 0] = (30, 30, 30)                # a straight right arm hanging at x = 30, away from the body
    kps[[2, 3, 4], 1] = (60, 100, 140)
    rig = Rig(PoseFrame(kps, 200, 300))
    body, arm = rig.layers.index("body"), rig.layers.index("right_arm")
    labels = np.full((300, 200), -1, np.int8)
    labels[60:150, 80:120] = body                    # torso
    labels[60:160, 25:36] = arm                      # the arm, 11 px wide around x = 30
    assert not rig.hidden_limb(labels, "right_arm").any()
    bitten = labels.copy()
    bitten[85:100, 31:36] = body                     # a ruffle over the arm's outer half, 15 rows tall
    hidden = rig.hidden_limb(bitten, "right_arm")
    assert hidden[85:100, 31:36].mean() > 0.9 and hidden.sum() <= 1.1 * 15 * 5
    assert not hidden[labels == body].any()         # nothing of the torso itself
    assert not rig.hidden_limb(bitten, "left_arm")[85:100, 31:36].any()


def test_a_dress_between_the_legs_moves_with_the_body_touching_legs_still_part():
    """A long dress spans the gap between the legs: from the hips down to its hem it goes to the body
    layer, so it no longer opens into trouser legs. Legs that only touch (never a limb radius and a
    quarter from both bones) and trousers (a gap under the crotch) keep their leg layers."""
    rig, kps = _standing_rig()
    figure = np.zeros((300, 200), bool)
    figure[20:290, 60:140] = True
    dress = figure.copy()
    dress[240:, 99:102] = False           # the hem at 240, legs apart below it
    labels = rig.label_layers(dress, step=1)

    def name(lab: np.ndarray, x: int, y: int) -> str:
        return rig.layers[lab[y, x]]

    for x, y in ((88, 200), (112, 220), (75, 235), (125, 235)):
        assert name(labels, x, y) == "body", (x, y)  # the dress, right across
    assert name(labels, 86, 265) == "right_leg" and name(labels, 114, 265) == "left_leg"  # below the hem
    trousers = figure.copy()
    trousers[165:, 99:102] = False        # a gap right under the crotch
    labels = rig.label_layers(trousers, step=1)
    assert name(labels, 88, 200) == "right_leg" and name(labels, 112, 220) == "left_leg"
    from pose.sequence import PoseFrame
    from reference.rig import Rig

    together = kps.copy()
    together[[9, 10], 0], together[[12, 13], 0] = 94, 106  # knees and ankles side by side
    closed = Rig(PoseFrame(together, 200, 300))
    assert not closed.skirt_region(figure).any()       # touching legs: no gap to bridge
    labels = closed.label_layers(figure, step=1)
    assert closed.layers[labels[230, 93]] == "right_leg" and closed.layers[labels[230, 107]] == "left_leg"


def test_skirt_continues_past_a_slit_to_its_hem():
    """Below the top of a slit the leg in the slit is cut off from the panel by background: the panel,
    wide and coloured like the dress, is still skirt down to the hem; the bare legs below are not."""
    rig, _ = _standing_rig()
    mask = np.zeros((300, 200), bool)
    mask[20:290, 60:140] = True
    image = np.zeros((300, 200, 3), np.uint8)
    image[:] = (40, 160, 60)                 # the dress
    image[250:] = (230, 190, 160)            # bare shins below the hem at 250
    mask[250:, 99:102] = False               # legs apart below the hem
    mask[232:250, 91:94] = False             # the slit opens at 232: the right leg cut off from the panel
    image[232:250, 60:91] = (230, 190, 160)  # the right leg in the slit
    labels = rig.skirt_hem(image, rig.label_layers(mask, step=1))

    def name(x: int, y: int) -> str:
        return rig.layers[labels[y, x]]

    assert name(112, 240) == "body" and name(130, 245) == "body"   # the panel beside the left leg
    assert name(80, 240) == "right_leg"                            # the leg in the slit
    plain = rig.label_layers(mask, step=1)
    assert rig.layers[plain[240, 112]] == "left_leg"               # without the hem rule: with the leg
    assert name(114, 270) == "left_leg" and name(86, 270) == "right_leg"  # below the hem


def test_a_doubtful_ankle_of_legs_in_view_is_warned_about(caplog):
    """A QA pass's 6000x8000 photo scored one ankle 0.33 (the same image at 3000x4000: 0.57): that leg then
    follows its knee, with only an INFO line the -q flag hides. Legs in view with a doubtful joint warn now;
    legs hidden altogether (a half-body character) stay an INFO line."""
    import logging

    from pose.sequence import PoseFrame
    from reference.rig import Rig

    _, kps = _standing_rig()
    kps[10, 2] = 0.33  # right ankle
    with caplog.at_level(logging.INFO, logger="reference.rig"):
        rig = Rig(PoseFrame(kps.copy(), 200, 300))
    assert not rig.ref_visible[10] and rig.ref_visible[13]
    assert [r.levelname for r in caplog.records if "knees/ankles scored" in r.message] == ["WARNING"]
    assert "1.00 1.00 0.33 1.00" in caplog.text and "--reference-pose" in caplog.text
    caplog.clear()
    kps[[9, 10, 12, 13], 2] = 0.3  # all four: a long skirt or a half-body portrait
    with caplog.at_level(logging.INFO, logger="reference.rig"):
        Rig(PoseFrame(kps, 200, 300))
    assert [r.levelname for r in caplog.records if "legs barely seen" in r.message] == ["INFO"]
