"""The character's skeleton rig: bones, body-part labels, skinning weights and per-frame bone transforms.

Bones are built from the OpenPose-18 body joints of the reference pose:

* ``torso``: the polygon neck / shoulders / hips; its transform blends the least-squares affine map and the
  similarity of those joints (a body turning sideways narrows, hip-keypoint jitter is damped);
* ``head``: segment neck -> top of the head (eyes pushed away from the neck); transform = least-squares
  similarity of the neck, nose, eyes and ears;
* limbs (upper arm, forearm, thigh, shin): transform = rotation onto the new segment direction, stretch along
  the bone only (thickness kept), pinned at the proximal joint;
* hands and feet: rigid continuations of the forearm / shin, pinned at the wrist / ankle (never stretched).

Parts are grouped into draw layers, back to front: ``right_leg`` and ``left_leg`` (thigh below
``thigh_body_fraction`` of its length, shin, foot), ``body`` (torso, head, hips and the top of the thighs:
skirts and shorts), ``right_arm`` and ``left_arm``. Skinning weights are smooth inverse-distance weights to
the bones driving a vertex's layer (the body layer is also driven by both thighs), so two meshes that meet
at a joint move together (the weights are a function of the reference position only).

numpy / OpenCV only.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

import cv2
import numpy as np

from pose import layout
from pose.errors import ConfigError, NoPersonError
from pose.sequence import PoseFrame
from reference.colour import colour_codes, colour_density
from reference.morphology import disc

logger = logging.getLogger(__name__)

B = layout.B
TORSO_JOINTS = (B["neck"], B["right_shoulder"], B["left_shoulder"], B["right_hip"], B["left_hip"])
HEAD_JOINTS = (B["neck"], B["nose"], B["right_eye"], B["left_eye"], B["right_ear"], B["left_ear"])
# The skull: the ears' midpoint stays on the skull's axis when the head turns, while the eyes and nose
# swing sideways with the turn (a 2-D head drawn in one view cannot follow them without sliding).
SKULL_JOINTS = (B["neck"], B["right_ear"], B["left_ear"])

# name: (kind, proximal joint, distal joint, layer)
BONES: dict[str, tuple[str, int, int, str]] = {
    "torso": ("torso", B["neck"], -1, "body"),
    "head": ("head", B["neck"], B["nose"], "body"),
    "right_upper_arm": ("limb", B["right_shoulder"], B["right_elbow"], "right_arm"),
    "right_forearm": ("limb", B["right_elbow"], B["right_wrist"], "right_arm"),
    "right_hand": ("end", B["right_elbow"], B["right_wrist"], "right_arm"),
    "left_upper_arm": ("limb", B["left_shoulder"], B["left_elbow"], "left_arm"),
    "left_forearm": ("limb", B["left_elbow"], B["left_wrist"], "left_arm"),
    "left_hand": ("end", B["left_elbow"], B["left_wrist"], "left_arm"),
    "right_thigh": ("limb", B["right_hip"], B["right_knee"], "right_leg"),
    "right_shin": ("limb", B["right_knee"], B["right_ankle"], "right_leg"),
    "right_foot": ("end", B["right_knee"], B["right_ankle"], "right_leg"),
    "left_thigh": ("limb", B["left_hip"], B["left_knee"], "left_leg"),
    "left_shin": ("limb", B["left_knee"], B["left_ankle"], "left_leg"),
    "left_foot": ("end", B["left_knee"], B["left_ankle"], "left_leg"),
}
# Draw layers, back to front by default (legs behind the body so that a skirt or jacket covers the thighs).
LAYERS: tuple[str, ...] = ("right_leg", "left_leg", "body", "right_arm", "left_arm")
LEG_LAYERS = ("right_leg", "left_leg")
# Joint that stands for the torso inside a limb layer (where the limb attaches).
ATTACH_JOINT = {"right_arm": B["right_shoulder"], "left_arm": B["left_shoulder"],
                "right_leg": B["right_hip"], "left_leg": B["left_hip"]}
# Bones of other layers that also drive a layer's skinning (the hips/skirt follow the thighs).
SHARED_BONES: dict[str, tuple[str, ...]] = {"body": ("right_thigh", "left_thigh")}

# Hand / foot bones extend past the wrist / ankle by this fraction of the forearm / shin length.
END_BONE_FRACTION = {"hand": 0.45, "foot": 0.3}
# Head bone: from the neck to the eye centre pushed this much further along neck -> eyes.
HEAD_TOP_FRACTION = 0.6
# Score handicap (in limb radii) of a shared bone inside another layer (the thighs inside the body layer).
SHARED_BONE_OFFSET = 1.0
# The head also claims a disc around the face (hair, hats): centred this fraction of the neck -> eyes distance
# above the eyes, with this radius (same unit); inside it the head scores HEAD_DISC_OFFSET limb radii, so a
# raised forearm or hand keeps only its own pixels and the hair between it and the face stays with the head.
HEAD_DISC_LIFT = 0.25
HEAD_DISC_RADIUS = 1.0
HEAD_DISC_OFFSET = 0.5
# When labelling pixels, the torso scores its polygon distance plus this many limb radii: an arm lying along or
# over the torso keeps the pixels within that distance of its bone, the clothes beside it stay with the torso.
# (Skinning inside the body layer uses one limb radius.)
TORSO_LABEL_OFFSET = 0.5
# An arm pixel's colour must be this many times likelier among the body's pixels beside the arm than among the
# arm's own core to be given back to the body (:meth:`Rig.refine_limb_labels`).
COLOUR_SPLIT_RATIO = 3.0
# A colour of an arm's core that its rim shows COLOUR_SPLIT_RATIO ** RIM_RARITY times less often, and the body
# beside it COLOUR_SPLIT_RATIO times more often, is taken for the clothes the core lies on and dropped from the
# arm's colours. The square (2) let a ruffle the bone runs along stay the arm's colour when the pose came out a
# few pixels otherwise (the try-on photo cropped or mirrored): the raised arm carried a band of the top.
RIM_RARITY = 1.5
# Knees and ankles of the *reference* need this score to be rigged: legs hidden under a long skirt or cut off
# by the frame (a half-body character, tests/data/ref/anyone-1.png: knees 0.3, ankles 0.16-0.3) are guesses,
# and leg layers cut along guessed legs tear the skirt apart; the lower body then follows the torso. Full
# bodies score 0.73-0.99 (the test images and the dance).
REF_LEG_SCORE = 0.5
# A piece of a layer cut off from its largest piece keeps its label from this fraction of that piece's area
# (:func:`absorb_islands`); smaller pieces join the layer around them.
ISLAND_KEEP_FRACTION = 0.25
# Where the body covers an arm (:meth:`Rig.hidden_limb`) is looked for from this fraction of the upper arm
# on, so that the shoulder's round stays with the body.
HIDDEN_LIMB_START = 0.15
# Hair over an arm (:meth:`Rig.hair_over_arms`) must also be this many times likelier under the head's colours
# than under the body's beside the arm: a sleeve of the shirt's colour is not hair.
HAIR_BODY_RATIO = 1.5
# Rim of an arm (its pixels within 2 px of the outside) needed, as a fraction of its core's area, before the
# colour check trusts the rim to say which core colours are the arm's own (:meth:`Rig.refine_limb_labels`);
# an arm lying across the body barely meets the outside, and its rim shows only a few of its colours.
RIM_MIN_FRACTION = 0.15
# Below the hips, a row of the reference whose character pixels run unbroken from one leg bone to the other
# and reach farther than this many limb radii from both is cloth hanging between the legs (a skirt or a
# dress, :meth:`Rig.skirt_region`): legs that merely touch are never that far apart.
SKIRT_GAP_RADII = 1.25
# Below a slit's top, a run of the character at least this many limb radii wide, overlapping the skirt
# above and coloured like it, is still skirt (:meth:`Rig.skirt_hem`): a bare leg is narrower.
SKIRT_PANEL_RADII = 1.5
# ... and one of its sides must continue a side of the skirt's run above within this many limb radii (a
# panel carries the dress's outline on down; legs below a hem start well inside a flared skirt).
SKIRT_EDGE_RADII = 0.5
# ... scanned only while the hip line is within this angle of the image's horizontal (an upright reference).
SKIRT_MAX_TILT = np.deg2rad(30.0)
# How far the head's skull weight (:meth:`Rig.bone_transforms`) moves per frame towards 1 (both ears seen) or
# 0 (an ear lost): a skeleton video's ears come and go with the head's turn (39 times in the 136 frames of
# anyone-video-2's), and switching fits at once made the head jump sideways.
SKULL_FADE = 0.25
#: A bust portrait shows no hips: they are placed below the shoulders at the median proportions of the
#: sample characters and the dance (neck to mid-hip 1.55 shoulder widths, 1.24-1.88; hip joints 0.6
#: shoulder widths apart, 0.49-0.63), off the image.
BUST_TORSO_LENGTH = 1.55
BUST_HIP_WIDTH = 0.6
# Fewest face landmarks (of 68) seen in both reference and frame for the head to follow the face.
MIN_FACE_POINTS = 20
# Hand keypoints (of 21) whose mean, seen from the hand's wrist point, gives the hand's direction: the index,
# middle, ring and little finger knuckles (MCP joints), which move rigidly with the palm.
HAND_KNUCKLES = (5, 9, 13, 17)
# A hand bone claims only pixels within this many limb radii of the detected reference hand (the convex hull
# of its keypoints), when it was detected: hair or clothes next to a raised hand stay with the head or arm.
HAND_REGION_MARGIN = 0.25
# Fewest hand keypoints (of 21) for the reference hand's outline to be used.
MIN_HAND_POINTS = 10
# Largest bend of the hand against the forearm taken from the hand keypoints (radians); beyond it the hand
# keypoints are more likely wrong (e.g. the hands swapped) than the wrist bent.
MAX_HAND_BEND = 0.5 * np.pi
# When the hand is no longer found, its bend against the forearm fades by this factor per frame.
HAND_BEND_DECAY = 0.8
# Limb stretch (new length / reference length) is clamped to this range.
STRETCH_RANGE = (0.3, 2.0)


def _segment_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of ``(P, 2)`` points to the segment ``a``-``b``."""
    ab = b - a
    denom = float(ab @ ab)
    t = np.zeros(len(points)) if denom < 1e-12 else np.clip(((points - a) @ ab) / denom, 0.0, 1.0)
    dx = points[:, 0] - (a[0] + t * ab[0])
    dy = points[:, 1] - (a[1] + t * ab[1])
    return np.sqrt(dx * dx + dy * dy)


def _segment_param(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Position of the projection of ``(P, 2)`` points on the segment ``a``-``b`` (0 at ``a``, 1 at ``b``, clamped)."""
    ab = b - a
    denom = float(ab @ ab)
    if denom < 1e-12:
        return np.zeros(len(points))
    return np.clip(((points - a) @ ab) / denom, 0.0, 1.0)


def _polygon_distance(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Distance of ``(P, 2)`` points to the convex hull of ``polygon`` ``(Q, 2)`` (0 inside)."""
    hull = cv2.convexHull(polygon.astype(np.float32).reshape(-1, 1, 2))[:, 0, :].astype(np.float64)
    d = np.min([_segment_distance(points, hull[i], hull[(i + 1) % len(hull)]) for i in range(len(hull))], axis=0)
    if len(hull) < 3:
        return d
    edges = np.roll(hull, -1, axis=0) - hull
    rel = points[:, None, :] - hull[None, :, :]
    cross = edges[None, :, 0] * rel[:, :, 1] - edges[None, :, 1] * rel[:, :, 0]
    inside = (cross >= 0).all(axis=1) | (cross <= 0).all(axis=1)
    return np.where(inside, 0.0, d)


def fit_affine(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares 2x3 affine map ``src -> dst`` (``(P, 2)`` each, P >= 3 non-collinear); else similarity."""
    if len(src) >= 3:
        x = np.hstack([src, np.ones((len(src), 1))])
        sol, _, rank, _ = np.linalg.lstsq(x, dst, rcond=None)
        if rank == 3:
            return sol.T
    return fit_similarity(src, dst)


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares 2x3 similarity (rotation, uniform scale, translation) ``src -> dst``; a translation for one point."""
    ms, md = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - ms, dst - md
    denom = float((s * s).sum())
    if len(src) < 2 or denom < 1e-9:
        return np.array([[1.0, 0.0, md[0] - ms[0]], [0.0, 1.0, md[1] - ms[1]]])
    a = float((s * d).sum()) / denom
    b = float((s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()) / denom
    lin = np.array([[a, -b], [b, a]])
    return np.hstack([lin, (md - lin @ ms)[:, None]])


@dataclass
class Bone:
    """One bone of the rig.

    Attributes:
        name: key of :data:`BONES`.
        kind: ``"torso"``, ``"head"``, ``"limb"`` or ``"end"``.
        layer: draw layer it belongs to (see :data:`LAYERS`).
        a, b: ``(2,)`` reference segment ends (for the torso: neck and mid-hip).
    """

    name: str
    kind: str
    layer: str
    a: np.ndarray
    b: np.ndarray


class Rig:
    """Bones of a character bound to its reference pose.

    Args:
        reference_pose: the character's pose on the reference canvas; neck and both shoulders must be
            visible, and at least one hip.
        score_threshold: minimum keypoint score to count a joint as present (default 0.3).
        leg_layers: give each leg its own draw layer behind the body (default True); ``False`` keeps the
            legs in the body layer (one mesh for torso, head and legs).
        thigh_body_fraction: with leg layers, the part of each thigh within this fraction of its length from
            the hip stays in the body layer (skirts, shorts and hips follow both thighs there), default 0.7.
        torso_affine: the torso moves by this blend of the least-squares affine map of neck, shoulders and
            hips (1: follows a sideways turn, but also every jitter of the hip keypoints) and their
            similarity (0: rigid + uniform scale); default 0.5.
        head_from_ears: the head follows the neck and the ears, the skull's axis, rather than also the
            eyes and nose, which slide sideways when the head turns (default True; see
            :meth:`bone_transforms`).
        skirt_stretch: the body layer's share of each thigh (skirt, shorts, hips; ``thigh_body_fraction``)
            stretches and squashes with the thigh's 2-D length by only this fraction, while turning with it
            fully (:meth:`body_transforms`); default 0.5.
        torso_stiffness: how firmly the torso keeps its reference length, neck to mid-hip
            (:meth:`steady_torso`): 0 takes the driving hips as they are, 1 slides them along the driving
            torso's direction to the reference length; default 1.
    """

    def __init__(self, reference_pose: PoseFrame, score_threshold: float = 0.3, leg_layers: bool = True,
                 thigh_body_fraction: float = 0.7, torso_affine: float = 0.5, torso_stiffness: float = 1.0,
                 head_from_ears: bool = True, skirt_stretch: float = 0.5) -> None:
        if not 0.0 <= float(torso_affine) <= 1.0:
            raise ConfigError(f"rig torso_affine={torso_affine} must be in [0, 1]")
        if not 0.0 <= float(torso_stiffness) <= 1.0:
            raise ConfigError(f"rig torso_stiffness={torso_stiffness} must be in [0, 1]")
        if not 0.0 <= float(skirt_stretch) <= 1.0:
            raise ConfigError(f"rig skirt_stretch={skirt_stretch} must be in [0, 1]")
        if not 0.0 <= float(thigh_body_fraction) <= 1.0:
            raise ConfigError(f"rig thigh_body_fraction={thigh_body_fraction} must be in [0, 1]")
        self.threshold = float(score_threshold)
        self.leg_layers = bool(leg_layers)
        self.thigh_body_fraction = float(thigh_body_fraction)
        self.shared_bone_offset = SHARED_BONE_OFFSET
        self.torso_affine = float(torso_affine)
        self.torso_stiffness = float(torso_stiffness)
        self.head_from_ears = bool(head_from_ears)
        self.skirt_stretch = float(skirt_stretch)
        vis = reference_pose.visible(self.threshold)[layout.BODY]
        legs = [B[n] for n in ("right_knee", "left_knee", "right_ankle", "left_ankle")]
        guessed = vis[legs] & (reference_pose.keypoints[legs, 2] < max(REF_LEG_SCORE, self.threshold))
        if guessed.any():
            scores = " ".join(f"{v:.2f}" for v in reference_pose.keypoints[legs, 2])
            if (vis[legs] & ~guessed).any():  # legs in view, one joint doubtful: the puppet will show it
                logger.warning("reference knees/ankles scored %s (right knee, left knee, right ankle, left ankle): "
                               "the ones below %.2f are not rigged, so that part of the leg follows the joint above "
                               "it; if the legs are in the picture, give the pose with --reference-pose",
                               scores, max(REF_LEG_SCORE, self.threshold))
            else:
                logger.info("reference legs barely seen (knee/ankle scores %s): not rigged, the lower body follows "
                            "the torso", scores)
            vis[legs] = vis[legs] & ~guessed
        xy = reference_pose.xy[layout.BODY].astype(np.float64)
        needed = (B["neck"], B["right_shoulder"], B["left_shoulder"])
        if not all(vis[j] for j in needed):
            raise NoPersonError("reference pose: the neck and both shoulders must be visible to rig the character; "
                                "use an image showing at least head and shoulders, or pass --reference-pose")
        xy = xy.copy()
        if not (vis[B["right_hip"]] or vis[B["left_hip"]]):
            xy[B["right_hip"]], xy[B["left_hip"]] = bust_hips(xy, vis)
            vis[B["right_hip"]] = vis[B["left_hip"]] = True
            logger.info("reference shows no hips (a bust): placed %.0f px below the neck",
                        np.linalg.norm(_mid_hip(xy) - xy[B["neck"]]))
        # a missing hip mirrors the other one across the neck-midline
        for h, o, s, os_ in ((B["right_hip"], B["left_hip"], B["right_shoulder"], B["left_shoulder"]),
                             (B["left_hip"], B["right_hip"], B["left_shoulder"], B["right_shoulder"])):
            if not vis[h]:
                xy[h] = xy[o] + (xy[s] - xy[os_])
                vis[h] = True
        self.ref_joints = xy
        self.ref_visible = vis
        self.torso_length = float(np.linalg.norm(_mid_hip(xy) - xy[B["neck"]]))
        self.ref_hand_dirs = {side: _hand_direction(reference_pose, side, self.threshold) for side in ("left", "right")}
        self.ref_face = reference_pose.xy[layout.FACE].astype(np.float64)
        self.ref_face_visible = reference_pose.visible(self.threshold)[layout.FACE]
        self.height = float(reference_pose.height)
        self.shoulder_width = float(np.linalg.norm(xy[B["right_shoulder"]] - xy[B["left_shoulder"]]))
        self.limb_radius = max(2.0, 0.25 * self.shoulder_width)
        self.hand_outlines = {side: _hand_outline(reference_pose, side, self.threshold) for side in ("left", "right")}
        self.hand_regions = {side: _hand_region(outline, (int(reference_pose.height), int(reference_pose.width)),
                                                HAND_REGION_MARGIN * self.limb_radius)
                             for side, outline in self.hand_outlines.items()}
        self.bones: list[Bone] = []
        for name, (kind, ja, jb, lay) in BONES.items():
            if lay in LEG_LAYERS and not self.leg_layers:
                lay = "body"
            bone = self._make_bone(name, kind, ja, jb, lay)
            if bone is not None:
                self.bones.append(bone)
        self.bone_names = [b.name for b in self.bones]
        self.head_disc = self._head_disc()
        self._head_zones: dict[tuple[int, int, int], np.ndarray] = {}
        self.layers = [lay for lay in LAYERS if any(b.layer == lay for b in self.bones)]
        logger.debug("rig: %d bones, layers %s", len(self.bones), self.layers)

    # --- construction -----------------------------------------------------------------------------
    def _make_bone(self, name: str, kind: str, ja: int, jb: int, lay: str) -> Bone | None:
        xy, vis = self.ref_joints, self.ref_visible
        if kind == "torso":
            return Bone(name, kind, lay, xy[B["neck"]].copy(), _mid_hip(xy))
        if kind == "head":
            eyes = [j for j in (B["right_eye"], B["left_eye"], B["nose"]) if vis[j]]
            if not eyes:
                return None
            centre = xy[eyes].mean(axis=0)
            top = centre + HEAD_TOP_FRACTION * (centre - xy[B["neck"]])
            return Bone(name, kind, lay, xy[B["neck"]].copy(), top)
        if not (vis[ja] and vis[jb]):
            return None
        if kind == "limb":
            return Bone(name, kind, lay, xy[ja].copy(), xy[jb].copy())
        frac = END_BONE_FRACTION["hand" if name.endswith("hand") else "foot"]
        return Bone(name, kind, lay, xy[jb].copy(), xy[jb] + frac * (xy[jb] - xy[ja]))

    def _head_disc(self) -> tuple[np.ndarray, float] | None:
        """Centre and radius of the disc the head claims (:data:`HEAD_DISC_RADIUS`), ``None`` without a head."""
        head = next((b for b in self.bones if b.kind == "head"), None)
        if head is None:
            return None
        eyes = (head.b + HEAD_TOP_FRACTION * head.a) / (1.0 + HEAD_TOP_FRACTION)  # undo the top's extension
        up = eyes - head.a
        reach = float(np.linalg.norm(up))
        return eyes + HEAD_DISC_LIFT * up, HEAD_DISC_RADIUS * reach

    @property
    def torso_polygon(self) -> np.ndarray:
        """``(4, 2)`` shoulders and hips of the reference.

        Without a rigged thigh (legs cut off by the frame or hidden, :data:`REF_LEG_SCORE`) the hips are
        pushed down by one neck -> hips length: the torso claims the lower body (a skirt), which would
        otherwise go to the nearest bone, often a hand resting on it.
        """
        j = self.ref_joints
        poly = j[[B["right_shoulder"], B["left_shoulder"], B["left_hip"], B["right_hip"]]].copy()
        if not any(b.name.endswith("_thigh") for b in self.bones):
            poly[2:] += _mid_hip(j) - j[B["neck"]]
        return poly

    # --- distances, labels, weights ---------------------------------------------------------------
    def layer_bones(self, layer: str) -> list[int]:
        """Indices of the bones that drive ``layer``'s skinning: its own bones, the torso (as the attachment
        joint in a limb layer) and the shared bones of :data:`SHARED_BONES` (the thighs in the body layer)."""
        shared = SHARED_BONES.get(layer, ()) if self.leg_layers else ()
        return [k for k, b in enumerate(self.bones) if b.layer == layer or b.kind == "torso" or b.name in shared]

    def bone_scores(self, points: np.ndarray, layer: str | None = None) -> np.ndarray:
        """Distance-like score of each point to each bone (smaller = closer).

        The torso scores its polygon distance plus one limb radius, so a limb lying over the torso in the
        reference is still claimed by the limb. Inside a limb layer the torso is represented by the joint the
        limb hangs from (shoulder or hip), so a hand resting on the hip follows the arm.

        Args:
            points: ``(P, 2)`` reference positions.
            layer: restrict to the bones driving this layer (:meth:`layer_bones`); ``None`` = all bones.

        Returns:
            ``(P, B)`` float64 scores, ``inf`` for bones not taking part.
        """
        pts = np.asarray(points, np.float64).reshape(-1, 2)
        out = np.full((len(pts), len(self.bones)), np.inf)
        active = range(len(self.bones)) if layer is None else self.layer_bones(layer)
        for k in active:
            bone = self.bones[k]
            if bone.kind == "torso":
                if layer in ATTACH_JOINT:
                    out[:, k] = np.linalg.norm(pts - self.ref_joints[ATTACH_JOINT[layer]], axis=1) + self.limb_radius
                else:
                    offset = TORSO_LABEL_OFFSET if layer is None else 1.0
                    out[:, k] = _polygon_distance(pts, self.torso_polygon) + offset * self.limb_radius
            else:
                out[:, k] = _segment_distance(pts, bone.a, bone.b)
                if bone.kind == "head" and self.head_disc is not None:
                    centre, radius = self.head_disc
                    disc = np.maximum(np.linalg.norm(pts - centre, axis=1) - radius, 0.0)
                    out[:, k] = np.minimum(out[:, k], disc + HEAD_DISC_OFFSET * self.limb_radius)
                if layer is not None and bone.layer != layer:  # a shared bone pulls less than the layer's own
                    out[:, k] += self.shared_bone_offset * self.limb_radius
                side = bone.name[: -len("_hand")] if bone.name.endswith("_hand") else None
                if side is not None and self.hand_regions.get(side) is not None:
                    # the detected hand is the hand: 0 inside its outline, nothing beyond its margin
                    out[:, k] = np.minimum(out[:, k], _polygon_distance(pts, self.hand_outlines[side]))
                    out[~_inside(self.hand_regions[side], pts), k] = np.inf
        return out

    def label_layers(self, mask: np.ndarray, step: int = 2) -> np.ndarray:
        """Assign each character pixel to a draw layer (nearest bone).

        With leg layers, a pixel nearest to a thigh but within :attr:`thigh_body_fraction` of its length
        from the hip joint goes to the body layer.

        Args:
            mask: ``(H, W)`` bool character mask.
            step: labels are computed on every ``step``-th pixel and upsampled (nearest) for speed.

        Returns:
            ``(H, W)`` int8 layer index into :attr:`layers`, -1 outside the mask.
        """
        return self.layer_maps(mask, step)[0]

    def bone_layers(self, mask: np.ndarray, step: int = 2) -> np.ndarray:
        """The layer of each character pixel's nearest bone, without the body's share of the thighs or the
        skirt (what :meth:`label_layers` starts from); ``(H, W)`` int8, -1 outside ``mask``."""
        return self.layer_maps(mask, step)[1]

    def layer_maps(self, mask: np.ndarray, step: int = 2) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`label_layers` and :meth:`bone_layers` from one nearest-bone pass (the costly part of both).

        Args:
            mask: ``(H, W)`` bool character mask.
            step: computed on every ``step``-th pixel and upsampled (nearest) for speed.

        Returns:
            ``(labels, owners)``, both ``(H, W)`` int8 layer indices into :attr:`layers`, -1 outside the mask.
        """
        h, w = mask.shape
        ys, xs = np.mgrid[0:h:step, 0:w:step]
        # only the grid points that the upsampling below can carry onto a mask pixel are scored
        near = cv2.dilate(mask.astype(np.uint8), np.ones((2 * step + 3, 2 * step + 3), np.uint8))[ys, xs] > 0
        pts = np.stack([xs[near], ys[near]], axis=1).astype(np.float64)
        scores = self.bone_scores(pts)
        layer_of_bone = np.array([self.layers.index(b.layer) for b in self.bones], np.int8)
        nearest = np.argmin(scores, axis=1) if len(pts) else np.zeros(0, np.intp)
        owners = layer_of_bone[nearest]
        labels = owners.copy()
        shared = self.leg_layers and "body" in self.layers
        if shared:
            for k, bone in enumerate(self.bones):
                if bone.name.endswith("thigh"):
                    sel = nearest == k
                    labels[sel & (_segment_param(pts, bone.a, bone.b) < self.thigh_body_fraction)] = \
                        self.layers.index("body")
        maps = []
        for scored in (labels, owners):
            coarse = np.full(ys.shape, -1, np.int8)
            coarse[near] = scored
            full = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_NEAREST) if step > 1 else coarse
            full = np.asarray(full, np.int8)
            full[~mask] = -1
            maps.append(full)
        if shared:
            legs = np.isin(maps[0], [self.layers.index(lay) for lay in LEG_LAYERS if lay in self.layers])
            maps[0][legs & self.skirt_region(mask)] = self.layers.index("body")
        return maps[0], maps[1]

    def skirt_region(self, mask: np.ndarray) -> np.ndarray:
        """Cloth that hangs between the legs in the reference: a skirt or a dress, to move with the body.

        Scanning down from the hips, the rows whose character pixels run without a break from the right
        leg's bones (thigh, shin) to the left's are collected, up to the first row with a break (the hem, or
        the gap under the crotch of trousers). If in one of them some of those pixels lie farther than
        :data:`SKIRT_GAP_RADII` limb radii from both legs, cloth spans a real gap and the whole run of every
        collected row is skirt. Legs that merely touch (a suit, legs together) are never that far apart
        where they touch, so they still part.
        Without the skirt rule a long dress was cut down the middle between the two leg layers and opened
        into trouser legs as soon as the legs moved apart.

        Args:
            mask: ``(H, W)`` bool character mask of the reference.

        Returns:
            ``(H, W)`` bool, True on the skirt (all False without two rigged thighs or on a tilted body).
        """
        h, w = mask.shape
        out = np.zeros((h, w), bool)
        chains = []
        for side in ("right", "left"):
            bones = [b for b in self.bones if b.name in (f"{side}_thigh", f"{side}_shin")]
            if not bones or bones[0].name != f"{side}_thigh":
                return out
            chains.append(np.array([bones[0].a] + [b.b for b in bones]))
        hips = chains[1][0] - chains[0][0]
        if abs(np.arctan2(hips[1], abs(hips[0]) + 1e-9)) > SKIRT_MAX_TILT:
            return out
        gap = SKIRT_GAP_RADII * self.limb_radius
        top = int(np.ceil(max(chains[0][0, 1], chains[1][0, 1])))
        bottom = int(min(chains[0][:, 1].max(), chains[1][:, 1].max(), h - 1))
        runs: list[tuple[int, int, int]] = []  # (row, first, last) of the unbroken rows from the hips down
        bridged = False
        for y in range(max(top, 0), bottom + 1):
            xs = [_polyline_x(chain, y) for chain in chains]
            if any(x is None for x in xs):
                break
            a, b = max(round(min(xs)), 0), min(round(max(xs)), w - 1)
            if not mask[y, a:b + 1].all():
                break  # the hem, or the gap under the crotch
            row = mask[y]
            left = a - int(np.argmin(row[a::-1])) + 1 if not row[:a + 1].all() else 0
            right = b + int(np.argmin(row[b:])) - 1 if not row[b:].all() else w - 1
            runs.append((y, left, right))
            if not bridged:
                pts = np.stack([np.arange(a, b + 1, dtype=np.float64), np.full(b - a + 1, float(y))], axis=1)
                dist = np.min([_segment_distance(pts, c[i], c[i + 1]) for c in chains for i in range(len(c) - 1)],
                              axis=0)
                bridged = bool((dist > gap).any())
        if bridged:  # cloth spans a real gap somewhere: every unbroken row from the hips down is the skirt
            for y, left, right in runs:
                out[y, left:right + 1] = True
        return out

    def skirt_hem(self, image: np.ndarray, labels: np.ndarray, bins: int = 12) -> np.ndarray:
        """Carry a skirt (:meth:`skirt_region`) on down past the top of a slit, to its hem.

        Below a slit's top the skirt no longer runs unbroken from leg to leg: the leg in the slit is cut off
        from the panel beside the other leg by a strip of background, and the panel went with that other leg
        as a separate piece. Row by row below the skirt, a run of the character that overlaps the skirt's
        run in the row above and continues one of its sides (:data:`SKIRT_EDGE_RADII`), is wider than
        :data:`SKIRT_PANEL_RADII` limb radii and whose colours are mostly likelier under the skirt's
        histogram than under the bare legs' below it, is skirt too.

        Args:
            image: ``(H, W, 3)`` uint8 RGB reference.
            labels: ``(H, W)`` int8 labels of :meth:`label_layers` (not modified).
            bins: histogram bins per channel.

        Returns:
            ``(H, W)`` int8 labels.
        """
        out = labels.copy()
        if not self.leg_layers or "body" not in self.layers:
            return out
        skirt = self.skirt_region(labels >= 0)
        rows = np.nonzero(skirt.any(axis=1))[0]
        if not len(rows):
            return out
        h, w = labels.shape
        legs = np.isin(labels, [self.layers.index(lay) for lay in LEG_LAYERS if lay in self.layers])
        last = int(rows.max())
        below = legs & (np.arange(h)[:, None] > last + self.limb_radius)
        if below.sum() < 20:
            return out
        codes = colour_codes(image, bins)
        p_skirt = colour_density(codes[skirt], bins)
        p_leg = colour_density(codes[below], bins)
        clothy = p_skirt[codes] > p_leg[codes]
        body = self.layers.index("body")
        xs = np.flatnonzero(skirt[last])
        above = [(int(xs.min()), int(xs.max()) + 1)]
        edge = SKIRT_EDGE_RADII * self.limb_radius
        panel = np.zeros((h, w), bool)
        for y in range(last + 1, h):
            row = labels[y] >= 0
            bounds = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(np.int8), [0]])))
            here = []
            for start, stop in zip(bounds[::2], bounds[1::2]):
                on = [(a, b) for a, b in above if a < stop and start < b]
                if (stop - start > SKIRT_PANEL_RADII * self.limb_radius and clothy[y, start:stop].mean() > 0.5
                        and any(abs(start - a) <= edge or abs(stop - b) <= edge for a, b in on)):
                    here.append((int(start), int(stop)))
                    panel[y, start:stop] = True
            if not here:
                break
            above = here
        if panel.any() and np.ptp(np.nonzero(panel.any(axis=1))[0]) + 1 >= self.limb_radius:
            out[panel & legs] = body  # a panel at least a limb radius long; a few rows are only a hem's edge
        return out

    def refine_limb_labels(self, image: np.ndarray, labels: np.ndarray, bins: int = 12,
                           ratio: float = COLOUR_SPLIT_RATIO) -> np.ndarray:
        """Give back to the body the pixels of an arm layer whose colour is the body's, not the arm's.

        The nearest-bone labels give an arm every pixel within its limb radius; where the arm lies along or
        over the body that includes a strip of the top or the shorts. Per arm, a colour histogram of its core
        (within a fifth of a limb radius of its bones, hand included) is compared with one of
        the body's pixels beside it (within two limb radii of the arm's bones); an arm pixel outside the core
        whose colour is ``ratio`` times likelier under the body's histogram is relabelled body, if it touches
        the body. Legs and the head's disc are left alone.

        When a bone runs along the arm's inner edge, its core lies partly on the dress or the hair beside the
        arm and would vouch for their colours. Where the arm meets the outside along enough of its length
        (its rim: arm pixels within 2 px of the background, at least :data:`RIM_MIN_FRACTION` of the core's
        area), a core colour that is ``ratio`` ** :data:`RIM_RARITY` times rarer on the rim than in the core,
        and ``ratio`` times likelier beside the arm than on the rim, is dropped from the core first. A sleeve coloured
        like the shirt also lines the arm's rim and stays in the core.

        Args:
            image: ``(H, W, 3)`` uint8 RGB reference.
            labels: ``(H, W)`` int8 labels from :meth:`label_layers` (not modified).
            bins: histogram bins per channel.
            ratio: likelihood ratio needed to move a pixel.

        Returns:
            ``(H, W)`` int8 labels.
        """
        out = labels.copy()
        if "body" not in self.layers:
            return out
        body = self.layers.index("body")
        h, w = labels.shape
        codes = colour_codes(image, bins)
        head = self.head_zone((h, w))
        outside = cv2.dilate((labels < 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        for lay in ("right_arm", "left_arm"):
            if lay not in self.layers:
                continue
            arm = labels == self.layers.index(lay)
            if not arm.any():
                continue
            own = tuple(b.name for b in self.bones if b.layer == lay)
            d = self._distance_map(np.nonzero(arm | (labels == body)), (h, w), own)
            core = arm & (d < self.limb_radius / 5.0)
            beside = (labels == body) & (d < 2.0 * self.limb_radius) & ~head
            if core.sum() < 20 or beside.sum() < 20:
                continue
            p_body = colour_density(codes[beside], bins)
            # the core can lie on the body's clothes or hair when the bone runs along the arm's inner edge: a
            # colour of the core that the arm hardly shows where it meets the outside (its rim: ratio**2
            # times rarer there) and that is the body's (ratio times likelier beside it) is not the arm's
            rim = arm & outside & (d < self.limb_radius)
            if rim.sum() >= max(20.0, RIM_MIN_FRACTION * core.sum()):
                p_rim, p_core = colour_density(codes[rim], bins), colour_density(codes[core], bins)
                foreign = (p_body > ratio * p_rim) & (ratio ** RIM_RARITY * p_rim < p_core)
                clean = core & ~foreign[codes]
                if clean.sum() >= 20:
                    core = clean
            p_arm = colour_density(codes[core], bins)
            candidate = arm & ~core & ~head & (p_body[codes] > ratio * p_arm[codes])
            candidate = cv2.morphologyEx(candidate.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0
            if not candidate.any():
                continue
            # keep the pieces that touch the body
            _, comp = cv2.connectedComponents(candidate.astype(np.uint8), connectivity=8)
            touching = np.unique(comp[cv2.dilate((labels == body).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0])
            keep = np.isin(comp, touching[touching > 0])
            out[keep] = body
        return out

    def hair_over_arms(self, image: np.ndarray, labels: np.ndarray, bins: int = 12,
                       ratio: float = COLOUR_SPLIT_RATIO) -> np.ndarray:
        """Give back to the body (the head moves it) the hair that falls over an arm in the reference.

        Long hair over a shoulder lies in front of the upper arm, so the nearest-bone labels give it to the
        arm, and it flew up with a raised arm. Per arm, an arm pixel outside the core of the forearm and
        hand (within half a limb radius of them: the hair rarely reaches there) is hair-coloured when its
        colour is ``ratio`` times likelier under the head's histogram (:meth:`head_zone`) than under that
        core's, and :data:`HAIR_BODY_RATIO` times likelier than under the body beside the arm (so a sleeve
        of the shirt's colour is not taken for hair). Hair-coloured pieces that reach the head through
        hair-coloured pixels go to the body; :meth:`hidden_limb` then completes the arm under them.

        Args:
            image: ``(H, W, 3)`` uint8 RGB reference.
            labels: ``(H, W)`` int8 labels (not modified).
            bins: histogram bins per channel.
            ratio: likelihood ratio against the arm's core.

        Returns:
            ``(H, W)`` int8 labels.
        """
        out = labels.copy()
        if "body" not in self.layers or not any(b.kind == "head" for b in self.bones):
            return out
        body = self.layers.index("body")
        h, w = labels.shape
        zone = self.head_zone((h, w))
        head = zone & (labels == body)
        if head.sum() < 20:
            return out
        codes = colour_codes(image, bins)
        p_head = colour_density(codes[head], bins)[codes]
        for lay in ("right_arm", "left_arm"):
            if lay not in self.layers:
                continue
            arm = labels == self.layers.index(lay)
            side = lay[: -len("_arm")]
            sel = np.nonzero(arm | (labels == body))
            lower = arm & (self._distance_map(sel, (h, w), (f"{side}_forearm", f"{side}_hand")) < 0.5 * self.limb_radius)
            near = self._distance_map(sel, (h, w), (f"{side}_upper_arm", f"{side}_forearm", f"{side}_hand"))
            beside = (labels == body) & ~zone & (near < 2.0 * self.limb_radius)
            if lower.sum() < 20 or beside.sum() < 20:
                continue
            p_arm = colour_density(codes[lower], bins)[codes]
            p_body = colour_density(codes[beside], bins)[codes]
            hairy = p_head > ratio * p_arm
            candidate = arm & ~lower & hairy & (p_head > HAIR_BODY_RATIO * p_body)
            candidate = cv2.morphologyEx(candidate.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0
            if not candidate.any():
                continue
            path = candidate | head | ((labels == body) & hairy)
            _, comp = cv2.connectedComponents(path.astype(np.uint8), connectivity=8)
            reached = np.unique(comp[head])
            keep = candidate & np.isin(comp, reached[reached > 0])
            out[keep] = body
        return out

    def _distance_map(self, where: tuple[np.ndarray, np.ndarray], shape: tuple[int, int],
                      names: tuple[str, ...]) -> np.ndarray:
        """Distance of the pixels ``where`` (``np.nonzero`` rows, columns) to the nearest of the bones named
        ``names``; ``inf`` elsewhere and without such bones."""
        d = np.full(shape, np.inf)
        bones = [b for b in self.bones if b.name in names]
        if bones:
            pts = np.stack([where[1], where[0]], axis=1).astype(np.float64)
            d[where] = np.min([_segment_distance(pts, b.a, b.b) for b in bones], axis=0)
        return d

    def hidden_limb(self, labels: np.ndarray, layer: str, bins: int = 12) -> np.ndarray:
        """Body pixels that probably cover part of an arm in the reference (a ruffle or hair over it).

        Along each arm bone (upper arm, forearm), the arm's own pixels reach out to some distance on either
        side of it; the median of that reach over ``bins`` slices along the bone is the arm's usual width
        on that side. Body pixels within the usual width are where the arm is notched by something in front
        of it. The upper arm counts from :data:`HIDDEN_LIMB_START` of its length, so the shoulder's round
        stays with the body.

        Args:
            labels: ``(H, W)`` int labels of :meth:`label_layers` (-1 outside the character).
            layer: ``"right_arm"`` or ``"left_arm"``.
            bins: slices along each bone.

        Returns:
            ``(H, W)`` bool, within the body's pixels (empty without the arm's bones or the body).
        """
        hidden = np.zeros(labels.shape, bool)
        if layer not in self.layers or "body" not in self.layers:
            return hidden
        side = layer[: -len("_arm")]
        ys, xs = np.nonzero(labels >= 0)
        pts = np.stack([xs, ys], axis=1).astype(np.float64)
        lab = labels[ys, xs]
        own, body = lab == self.layers.index(layer), lab == self.layers.index("body")
        for bone in (b for b in self.bones if b.name in (f"{side}_upper_arm", f"{side}_forearm")):
            axis = bone.b - bone.a
            length = float(np.linalg.norm(axis))
            if length < 1.0:
                continue
            axis = axis / length
            rel = pts - bone.a
            t = _segment_param(pts, bone.a, bone.b)  # clamped: the ends fall outside ``along`` below
            offset = rel[:, 0] * axis[1] - rel[:, 1] * axis[0]  # signed distance from the bone's line
            start = HIDDEN_LIMB_START if bone.name.endswith("upper_arm") else 0.0
            along = (t > start) & (t < 1.0)
            slot = np.clip(((t - start) / (1.0 - start) * bins).astype(int), 0, bins - 1)
            for sign in (1.0, -1.0):
                reach = []
                for k in range(bins):
                    mine = own & along & (slot == k) & (sign * offset > 0)
                    if mine.sum() >= 4:
                        reach.append(float((sign * offset[mine]).max()))
                if len(reach) < bins // 2:
                    continue
                usual = float(np.median(reach))
                inside = body & along & (sign * offset > 0) & (sign * offset <= usual)
                hidden[ys[inside], xs[inside]] = True
        return hidden

    def head_zone(self, shape: tuple[int, int], step: int = 2) -> np.ndarray:
        """``(H, W)`` read-only bool: pixels whose nearest bone of the body layer is the head (all False without
        one). Computed once per shape: the colour split and the body underlay both use it."""
        h, w = shape
        key = (h, w, step)
        if key not in self._head_zones:
            zone = np.zeros((h, w), bool)
            if "head" in [self.bones[k].name for k in self.layer_bones("body")]:
                ys, xs = np.mgrid[0:h:step, 0:w:step]
                pts = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
                nearest = np.argmin(self.bone_scores(pts, "body"), axis=1)
                coarse = (nearest == self.bone_names.index("head")).reshape(ys.shape).astype(np.uint8)
                zone = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_NEAREST) > 0
            zone.setflags(write=False)
            self._head_zones[key] = zone
        return self._head_zones[key]

    def looseness(self, shape: tuple[int, int], layer: str, step: int = 4) -> np.ndarray:
        """How loosely the pose pins down each pixel of ``layer``: 0 within one limb radius of its bones,
        rising to 1 at two limb radii (skirt hems, long hair, wide sleeves).

        Args:
            shape: ``(H, W)`` of the canvas.
            layer: layer name.
            step: computed every ``step`` pixels and upsampled (bilinear).

        Returns:
            ``(H, W)`` float32 map in [0, 1].
        """
        h, w = shape
        ys, xs = np.mgrid[0:h:step, 0:w:step]
        pts = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
        d = self.bone_scores(pts, layer).min(axis=1).reshape(ys.shape)
        coarse = np.clip((d - self.limb_radius) / self.limb_radius, 0.0, 1.0).astype(np.float32)
        return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)

    def skinning_weights(self, points: np.ndarray, layer: str, power: float = 4.0) -> np.ndarray:
        """Smooth linear-blend-skinning weights.

        ``w_b = (eps + score_b) ** -power`` normalised over the layer's bones (eps = half a limb radius),
        continuous across joints.

        Args:
            points: ``(P, 2)`` reference positions.
            layer: the layer the points belong to.
            power: falloff exponent (default 4; larger = more rigid parts, sharper joints).

        Returns:
            ``(P, B)`` float64 weights summing to 1 per point.
        """
        if not power > 0:
            raise ConfigError(f"skinning power must be > 0, got {power}")
        scores = self.bone_scores(points, layer)
        eps = 0.5 * self.limb_radius
        # normalise by the best score first to keep the powers in range
        rel = (eps + scores) / (eps + scores.min(axis=1, keepdims=True))
        w = np.where(np.isfinite(rel), rel ** (-power), 0.0)
        return w / w.sum(axis=1, keepdims=True)

    # --- per frame ----------------------------------------------------------------------------------
    def complete_joints(self, pose: PoseFrame, last: np.ndarray | None = None) -> np.ndarray:
        """Body joints of a driving frame with every missing one filled in.

        Missing joints take their last known position (``last``), else the reference position moved by the
        torso's motion (or the mean displacement of the joints present). Never NaN.

        Args:
            pose: driving pose on the reference canvas.
            last: ``(18, 2)`` joints returned for the previous frame, or ``None``.

        Returns:
            ``(18, 2)`` float64 joints.
        """
        vis = pose.visible(self.threshold)[layout.BODY]
        cur = pose.xy[layout.BODY].astype(np.float64)
        out = np.where(vis[:, None], cur, np.nan)
        if vis.all():
            return out
        if last is not None:
            out = np.where(vis[:, None], out, last)
            return out
        common = [j for j in TORSO_JOINTS if vis[j]]
        if len(common) >= 2:
            m = fit_similarity(self.ref_joints[common], cur[common])
        elif vis.any():
            shift = (cur[vis] - self.ref_joints[vis]).mean(axis=0)
            m = np.array([[1.0, 0.0, shift[0]], [0.0, 1.0, shift[1]]])
        else:
            m = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        moved = self.ref_joints @ m[:, :2].T + m[:, 2]
        return np.where(vis[:, None], out, moved)

    def steady_torso(self, joints: np.ndarray) -> np.ndarray:
        """Hips slid along the torso so that the neck to mid-hip distance keeps the reference's length.

        Body detectors place the hips under clothes (skirts, dresses, loose shirts) with a bias that comes
        and goes with the pose: on the bundled dance the mediapipe hips rise 5-15 px for seconds while the
        dancer's waistband stays put, and the skirt, pinned to the hips, jumps with them. Shoulders and neck
        are seen and sit steadier. Both hips move by the same vector, along the driving neck -> mid-hip
        direction (the lean is kept, and the hip width), so that the torso's length becomes the blend
        ``(1 - torso_stiffness) * driving + torso_stiffness * reference``. A 2-D puppet's torso cannot
        foreshorten convincingly anyway (it would squash the clothes' texture), so it stays its length.

        Args:
            joints: ``(18, 2)`` complete joints of a frame (:meth:`complete_joints`); not modified.

        Returns:
            ``(18, 2)`` joints, the hips moved (a copy).
        """
        out = np.array(joints, dtype=np.float64, copy=True)
        if self.torso_stiffness <= 0.0:
            return out
        axis = _mid_hip(out) - out[B["neck"]]
        length = float(np.linalg.norm(axis))
        if length < 1e-3 or self.torso_length < 1e-3:
            return out
        target = (1.0 - self.torso_stiffness) * length + self.torso_stiffness * self.torso_length
        shift = axis * (target / length - 1.0)
        out[B["right_hip"]] += shift
        out[B["left_hip"]] += shift
        return out

    def head_transform(self, pose: PoseFrame, min_points: int = MIN_FACE_POINTS) -> np.ndarray | None:
        """Similarity of the face landmarks visible in both the reference and ``pose`` (``None`` if too few).

        Args:
            pose: driving frame on the reference canvas.
            min_points: least number of common face landmarks (default :data:`MIN_FACE_POINTS`).

        Returns:
            ``(2, 3)`` float64 similarity or ``None``.
        """
        common = self.ref_face_visible & pose.visible(self.threshold)[layout.FACE]
        if int(common.sum()) < min_points:
            return None
        return fit_similarity(self.ref_face[common], pose.xy[layout.FACE][common].astype(np.float64))

    def hand_bends(self, joints: np.ndarray, pose: PoseFrame,
                   previous: dict[str, float] | None = None) -> dict[str, float]:
        """How far each hand is bent against its forearm in a frame, from the hand keypoints (radians).

        The bend is the hand's rotation (wrist -> mean of the knuckles, :data:`HAND_KNUCKLES`, against the
        same direction in the reference) minus the forearm's rotation (elbow -> wrist), wrapped to
        ``(-pi, pi]`` and clipped to :data:`MAX_HAND_BEND`. A hand not found in this frame (or not in the
        reference) keeps ``previous`` faded by :data:`HAND_BEND_DECAY`, so it straightens smoothly instead of
        snapping back to the forearm's line.

        Args:
            joints: ``(18, 2)`` complete joints of the frame.
            pose: the driving frame (hand keypoints on the reference canvas).
            previous: the bends returned for the previous frame, or ``None``.

        Returns:
            ``{"left": bend, "right": bend}``.
        """
        previous = previous or {}
        out = {}
        for side in ("left", "right"):
            ref_dir = self.ref_hand_dirs.get(side)
            cur_dir = _hand_direction(pose, side, self.threshold)
            if ref_dir is None or cur_dir is None:
                out[side] = HAND_BEND_DECAY * float(previous.get(side, 0.0))
                continue
            elbow, wrist = B[f"{side}_elbow"], B[f"{side}_wrist"]
            forearm = _angle(joints[wrist] - joints[elbow]) - _angle(self.ref_joints[wrist] - self.ref_joints[elbow])
            hand = _angle(cur_dir) - _angle(ref_dir)
            bend = (hand - forearm + np.pi) % (2 * np.pi) - np.pi
            out[side] = float(np.clip(bend, -MAX_HAND_BEND, MAX_HAND_BEND))
        return out

    def skull_target(self, seen: np.ndarray | None = None) -> float:
        """1.0 when the head can follow the skull (:data:`SKULL_JOINTS`) in a frame: ``head_from_ears`` is on
        and both ears are seen in the reference and in ``seen`` (``(18,)`` bool, default: all); else 0.0."""
        if not (self.head_from_ears and all(self.ref_visible[j] for j in SKULL_JOINTS)):
            return 0.0
        return 1.0 if seen is None or all(seen[j] for j in SKULL_JOINTS) else 0.0

    def bone_transforms(self, joints: np.ndarray, pose: PoseFrame | None = None,
                        hand_bends: dict[str, float] | None = None, skull_weight: float | None = None) -> np.ndarray:
        """Affine map of every bone from the reference to a frame.

        The head's rotation and position come from the similarity of the neck and both ears
        (:data:`SKULL_JOINTS`) when the rig has ``head_from_ears`` and both ears are seen in the reference
        and in the frame, else from that of the neck, nose, eyes and ears (:data:`HEAD_JOINTS`), or from a
        blend of the two (``skull_weight``: a renderer fades between them over a few frames, so that a
        skeleton video whose ears come and go does not make the head jump). Its size is the torso's, kept
        about the middle of the fitted joints other than the neck: the fit's own scale comes from the
        neck-to-ears distance, which shrinks 9 % on average and up to 40 % on the bundled dance as the head
        tilts and the shoulders rise, and from the ears' spread, which grows as the head turns to the
        camera, while a head keeps its size.

        Args:
            joints: ``(18, 2)`` complete joints of the frame (:meth:`complete_joints`).
            pose: the driving frame; when given and its face landmarks are found (in the reference too),
                the head follows their similarity (:meth:`head_transform`) instead of the body head joints.
            hand_bends: extra rotation of each hand about its wrist (:meth:`hand_bends`); without it the
                hands continue their forearms.
            skull_weight: weight of the skull fit in the head's transform, in [0, 1] (default:
                :meth:`skull_target` with every joint seen; pass ``skull_target(seen)`` for one frame's own
                joints); ignored when the reference's ears are not both seen or ``head_from_ears`` is off.

        Returns:
            ``(B, 2, 3)`` float64 matrices, ``new = M @ [x, y, 1]``.
        """
        ref = self.ref_joints
        out = np.zeros((len(self.bones), 2, 3))
        torso_scale = 1.0  # the torso comes first in BONES
        for k, bone in enumerate(self.bones):
            kind, ja, jb, _ = BONES[bone.name]
            if kind == "torso":
                src, dst = ref[list(TORSO_JOINTS)], joints[list(TORSO_JOINTS)]
                m = self.torso_affine * fit_affine(src, dst) + (1.0 - self.torso_affine) * fit_similarity(src, dst)
                torso_scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
            elif kind == "head":
                m = self.head_transform(pose) if pose is not None else None
                if m is None:
                    skull = self.skull_target()
                    w = skull if skull_weight is None or skull == 0.0 else float(np.clip(skull_weight, 0.0, 1.0))
                    m = np.zeros((2, 3))
                    for idx, share in ((list(SKULL_JOINTS), w),
                                       ([j for j in HEAD_JOINTS if self.ref_visible[j]], 1.0 - w)):
                        if share > 0.0:
                            pivot = ref[[j for j in idx if j != B["neck"]] or idx].mean(axis=0)
                            m += share * _rescaled(fit_similarity(ref[idx], joints[idx]), torso_scale, pivot)
            elif kind == "limb":
                m = _limb_transform(ref[ja], ref[jb], joints[ja], joints[jb], stretch=1.0)
            else:  # end bone: rigid continuation of the parent limb, pinned at its distal joint
                m = _limb_transform(ref[ja], ref[jb], joints[ja], joints[jb], stretch=0.0, pin_distal=True)
                bend = (hand_bends or {}).get(bone.name[: -len("_hand")], 0.0) if bone.name.endswith("_hand") else 0.0
                if bend:
                    m = _rotation_about(joints[jb], bend) @ np.vstack([m, [0.0, 0.0, 1.0]])
            out[k] = m
        return out

    def body_transforms(self, joints: np.ndarray, transforms: np.ndarray) -> np.ndarray:
        """The bone transforms that drive the body layer: as ``transforms``, except that the thighs it shares
        with the leg layers (:data:`SHARED_BONES`) stretch by only ``skirt_stretch`` of their change of length.

        A squat, or a knee bent towards the camera, shortens the thigh on screen: the leg layer must follow
        (the knee is where it is), but the skirt over the thigh hangs from the waist and does not fold up
        with it. On the bundled dance the real hem drops about 25 px in the squats while a fully stretched
        body layer dropped it 8-12 px.

        Args:
            joints: ``(18, 2)`` joints of the frame (those given to :meth:`bone_transforms`).
            transforms: ``(B, 2, 3)`` result of :meth:`bone_transforms`; not modified.

        Returns:
            ``(B, 2, 3)`` float64 matrices (``transforms`` itself when nothing changes).
        """
        shared = SHARED_BONES.get("body", ()) if self.leg_layers else ()
        if self.skirt_stretch >= 1.0 or not shared:
            return transforms
        out = np.array(transforms, copy=True)
        ref = self.ref_joints
        for k, bone in enumerate(self.bones):
            if bone.name in shared:
                _, ja, jb, _ = BONES[bone.name]
                out[k] = _limb_transform(ref[ja], ref[jb], joints[ja], joints[jb], stretch=self.skirt_stretch)
        return out


def absorb_islands(labels: np.ndarray, keep_fraction: float = ISLAND_KEEP_FRACTION,
                   owners: np.ndarray | None = None) -> np.ndarray:
    """Give every small piece of a layer cut off from the layer's largest piece to the layer that borders it
    most (or, with ``owners``, to the bordering layer whose bones are nearest to most of the piece).

    Labelling by nearest bone (and by colour) can leave a few pixels of a layer apart from the rest of it, e.g.
    a lock of hair beyond a hand. Such an island would move with bones it does not touch (and leave an ARAP
    mesh component without handles); it joins its surroundings instead. Islands bordered only by the
    background (a separate piece of the mask) keep their label, and so do large ones (at least
    ``keep_fraction`` of the largest piece): a skirt cut off from the blouse by a forearm lying across the
    waist is still the body (the body underlay then joins them under the forearm).

    Args:
        labels: ``(H, W)`` int8 layer labels, -1 outside the character (not modified).
        keep_fraction: pieces at least this fraction of their layer's largest piece keep their label.
        owners: ``(H, W)`` int8 layer of each pixel's nearest bone (:meth:`Rig.bone_layers`, or the second
            map of :meth:`Rig.layer_maps`). A piece then
            joins, among the layers bordering it, the one that owns most of its pixels, when there is one:
            the top of a thigh that a hand resting on it cuts off from the shorts (the body's share of the
            thigh) goes back to its leg rather than to the hand that borders it more.

    Returns:
        ``(H, W)`` int8 labels.
    """
    out = labels.copy()
    ring = np.ones((3, 3), np.uint8)
    for li in [int(v) for v in np.unique(labels) if v >= 0]:
        n, comp, stats, _ = cv2.connectedComponentsWithStats((labels == li).astype(np.uint8), connectivity=8)
        if n <= 2:
            continue
        main = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        for c in range(1, n):
            if c == main or stats[c, cv2.CC_STAT_AREA] >= keep_fraction * stats[main, cv2.CC_STAT_AREA]:
                continue
            x, y, w, h = (int(v) for v in stats[c, :4])
            y0, x0 = max(0, y - 1), max(0, x - 1)
            piece = (comp[y0:y + h + 1, x0:x + w + 1] == c).astype(np.uint8)
            border = (cv2.dilate(piece, ring) > 0) & (piece == 0)
            around = out[y0:y + h + 1, x0:x + w + 1][border]
            around = around[(around >= 0) & (around != li)]
            if not len(around):
                continue
            target = int(np.bincount(around).argmax())
            if owners is not None:  # the bordering layer that owns most of the piece, if any owns some
                owned = owners[y0:y + h + 1, x0:x + w + 1][piece > 0]
                votes = {int(lay): int((owned == lay).sum()) for lay in np.unique(around)}
                best = max(votes, key=votes.get)
                target = best if votes[best] > 0 else target
            out[y0:y + h + 1, x0:x + w + 1][piece > 0] = target
    return out


def _rescaled(m: np.ndarray, scale: float, pivot: np.ndarray) -> np.ndarray:
    """The similarity ``m`` with its scale replaced by ``scale``, keeping where ``pivot`` lands."""
    lin = m[:, :2]
    own = float(np.sqrt(abs(np.linalg.det(lin))))
    if own < 1e-9:
        return m
    new = lin * (scale / own)
    return np.hstack([new, (lin @ pivot + m[:, 2] - new @ pivot)[:, None]])


def bust_hips(joints: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Right and left hip of a character shown down to the chest at most (a bust portrait).

    The torso runs from the neck at right angles to the shoulder line, away from the head (the visible
    nose, eyes and ears; straight down the image when none is), :data:`BUST_TORSO_LENGTH` shoulder widths
    long; the hips sit :data:`BUST_HIP_WIDTH` shoulder widths apart, parallel to the shoulders.

    Args:
        joints: ``(18, 2)`` body joints (neck and shoulders used).
        visible: ``(18,)`` bool visibility.
    """
    neck = joints[B["neck"]]
    across = joints[B["left_shoulder"]] - joints[B["right_shoulder"]]
    down = np.array([-across[1], across[0]])
    head = [j for j in (B["nose"], B["right_eye"], B["left_eye"], B["right_ear"], B["left_ear"]) if visible[j]]
    above = (joints[head].mean(axis=0) - neck) if head else np.array([0.0, -1.0])
    if float(down @ above) > 0:
        down = -down
    mid = neck + BUST_TORSO_LENGTH * down  # |down| = the shoulder width
    return mid - 0.5 * BUST_HIP_WIDTH * across, mid + 0.5 * BUST_HIP_WIDTH * across


def _mid_hip(joints: np.ndarray) -> np.ndarray:
    return 0.5 * (joints[B["right_hip"]] + joints[B["left_hip"]])


def _polyline_x(chain: np.ndarray, y: float) -> float | None:
    """x where the polyline ``chain`` (points top to bottom) crosses row ``y``; ``None`` if it does not, or
    turns back up before reaching it (a leg bent up)."""
    for p, q in itertools.pairwise(chain):
        if q[1] <= p[1]:
            return None
        if p[1] <= y <= q[1]:
            return float(p[0] + (q[0] - p[0]) * (y - p[1]) / (q[1] - p[1]))
    return None


def _angle(v: np.ndarray) -> float:
    return float(np.arctan2(v[1], v[0]))


def _rotation_about(point: np.ndarray, angle: float) -> np.ndarray:
    """``(2, 3)`` rotation by ``angle`` (radians, image axes) about ``point``."""
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    return np.hstack([rot, (point - rot @ point)[:, None]])


def _hand_outline(pose: PoseFrame, side: str, threshold: float) -> np.ndarray | None:
    """``(Q, 2)`` convex hull of the hand's keypoints, ``None`` with fewer than :data:`MIN_HAND_POINTS` seen."""
    hand = pose.keypoints[layout.PARTS[f"{side}_hand"]]
    ok = np.isfinite(hand[:, :2]).all(axis=1) & (hand[:, 2] >= threshold)
    if int(ok.sum()) < MIN_HAND_POINTS:
        return None
    return cv2.convexHull(hand[ok, :2].astype(np.float32).reshape(-1, 1, 2))[:, 0, :].astype(np.float64)


def _hand_region(outline: np.ndarray | None, shape: tuple[int, int], margin: float) -> np.ndarray | None:
    """``(H, W)`` bool: the hand's outline grown by ``margin`` px (``None`` without an outline)."""
    if outline is None:
        return None
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, np.round(outline).astype(np.int32), 1)
    return cv2.dilate(mask, disc(margin)) > 0


def _inside(region: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Which ``(P, 2)`` points fall on a True pixel of ``region`` (points off the canvas do not)."""
    h, w = region.shape
    x = np.floor(pts[:, 0]).astype(np.int64)
    y = np.floor(pts[:, 1]).astype(np.int64)
    ok = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    out = np.zeros(len(pts), bool)
    out[ok] = region[y[ok], x[ok]]
    return out


def _hand_direction(pose: PoseFrame, side: str, threshold: float) -> np.ndarray | None:
    """Unit vector from the hand's wrist point to the mean of its knuckles, or ``None`` if not all are seen."""
    hand = pose.keypoints[layout.PARTS[f"{side}_hand"]]
    pts = hand[[0, *HAND_KNUCKLES]]
    if not (np.isfinite(pts[:, :2]).all() and (pts[:, 2] >= threshold).all()):
        return None
    d = pts[1:, :2].astype(np.float64).mean(axis=0) - pts[0, :2].astype(np.float64)
    n = float(np.linalg.norm(d))
    return d / n if n > 1e-6 else None


def _limb_transform(a: np.ndarray, b: np.ndarray, a2: np.ndarray, b2: np.ndarray,
                    stretch: float = 1.0, pin_distal: bool = False) -> np.ndarray:
    """Rotation taking ``a->b`` onto ``a2->b2``, pinned at ``a`` (or ``b``), plus this fraction of the change
    of length as a stretch along the bone (1: ``a->b`` lands on ``a2->b2``; 0: rigid)."""
    d, d2 = b - a, b2 - a2
    n, n2 = float(np.linalg.norm(d)), float(np.linalg.norm(d2))
    if n < 1e-9 or n2 < 1e-9:
        rot = np.eye(2)
        s = 1.0
    else:
        u, u2 = d / n, d2 / n2
        c, sn = float(u @ u2), float(u[0] * u2[1] - u[1] * u2[0])
        rot = np.array([[c, -sn], [sn, c]])
        s = float(np.clip(n2 / n, *STRETCH_RANGE))
    lin = rot
    if stretch and n >= 1e-9:
        u = d / n
        lin = rot @ (np.eye(2) + float(stretch) * (s - 1.0) * np.outer(u, u))
    pin, pin2 = (b, b2) if pin_distal else (a, a2)
    return np.hstack([lin, (pin2 - lin @ pin)[:, None]])
