"""Whole-body keypoint layout and skeleton topologies, kept as data.

posedrive stores one person per frame as ``K = 134`` keypoints in the DWPose / COCO-WholeBody order
used by the anchors' pose guiders, with the body in OpenPose-18 order (neck included):

============  =========  ==========================================================
part          indices    order
============  =========  ==========================================================
body          0..17      OpenPose-18 (``BODY_NAMES``)
feet          18..23     L big toe, L small toe, L heel, R big toe, R small toe, R heel
face          24..91     iBUG / dlib 68 landmarks (jaw 0-16, brows, nose, eyes, mouth)
left hand     92..112    21 hand landmarks (wrist, thumb 1-4, index 1-4, ..., pinky 1-4)
right hand    113..133   same order
============  =========  ==========================================================

"Left" and "right" are the *person's* sides (the OpenPose convention), not the image's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BODY_NAMES: tuple[str, ...] = (
    "nose", "neck",
    "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle",
    "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)
FEET_NAMES: tuple[str, ...] = (
    "left_big_toe", "left_small_toe", "left_heel",
    "right_big_toe", "right_small_toe", "right_heel",
)
HAND_NAMES: tuple[str, ...] = (
    "wrist",
    "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
    "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)
FACE_NAMES: tuple[str, ...] = (
    tuple(f"jaw_{i}" for i in range(17))
    + tuple(f"right_brow_{i}" for i in range(5))
    + tuple(f"left_brow_{i}" for i in range(5))
    + tuple(f"nose_bridge_{i}" for i in range(4))
    + tuple(f"nose_lower_{i}" for i in range(5))
    + tuple(f"right_eye_{i}" for i in range(6))
    + tuple(f"left_eye_{i}" for i in range(6))
    + tuple(f"mouth_outer_{i}" for i in range(12))
    + tuple(f"mouth_inner_{i}" for i in range(8))
)

NUM_BODY = len(BODY_NAMES)  # 18
NUM_FEET = len(FEET_NAMES)  # 6
NUM_FACE = len(FACE_NAMES)  # 68
NUM_HAND = len(HAND_NAMES)  # 21

BODY = slice(0, NUM_BODY)
FEET = slice(BODY.stop, BODY.stop + NUM_FEET)
FACE = slice(FEET.stop, FEET.stop + NUM_FACE)
LEFT_HAND = slice(FACE.stop, FACE.stop + NUM_HAND)
RIGHT_HAND = slice(LEFT_HAND.stop, LEFT_HAND.stop + NUM_HAND)
NUM_KEYPOINTS = RIGHT_HAND.stop  # 134

PARTS: dict[str, slice] = {
    "body": BODY, "feet": FEET, "face": FACE, "left_hand": LEFT_HAND, "right_hand": RIGHT_HAND,
}

KEYPOINT_NAMES: tuple[str, ...] = (
    BODY_NAMES
    + FEET_NAMES
    + tuple(f"face_{n}" for n in FACE_NAMES)
    + tuple(f"left_hand_{n}" for n in HAND_NAMES)
    + tuple(f"right_hand_{n}" for n in HAND_NAMES)
)

# Body indices by name, for readable code: B["left_wrist"] == 7.
B: dict[str, int] = {name: i for i, name in enumerate(BODY_NAMES)}

# OpenPose-18 limbs (pairs of body indices) in the order the OpenPose palette colours them.
# The last two (ear-shoulder) exist in the original list but are not drawn by the anchors.
BODY_LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
    (2, 16), (5, 17),
)
NUM_DRAWN_BODY_LIMBS = 17

# Hand edges (pairs of hand-local indices), 20 edges, 4 per finger from the wrist outwards.
HAND_EDGES: tuple[tuple[int, int], ...] = tuple(
    (0 if j == 0 else 1 + 4 * f + j - 1, 1 + 4 * f + j) for f in range(5) for j in range(4)
)

# Parent of each body joint in the kinematic tree rooted at the neck (-1 = root).
BODY_PARENTS: tuple[int, ...] = (
    1, -1,        # nose <- neck
    1, 2, 3,      # right arm
    1, 5, 6,      # left arm
    1, 8, 9,      # right leg
    1, 11, 12,    # left leg
    0, 0, 14, 15,  # eyes <- nose, ears <- eyes
)

# Parent of each hand joint (hand-local indices).
HAND_PARENTS: tuple[int, ...] = tuple([-1] + [a for a, _ in HAND_EDGES])


def _body_flip() -> list[int]:
    names = list(BODY_NAMES)
    out = []
    for n in names:
        if n.startswith("right_"):
            out.append(names.index("left_" + n[6:]))
        elif n.startswith("left_"):
            out.append(names.index("right_" + n[5:]))
        else:
            out.append(names.index(n))
    return out


# Face 68 mirror permutation (iBUG convention).
_FACE_FLIP: list[int] = (
    list(range(16, -1, -1))                      # jaw
    + list(range(26, 21, -1)) + list(range(21, 16, -1))  # brows swap
    + [27, 28, 29, 30]                           # bridge
    + [35, 34, 33, 32, 31]                       # lower nose
    + [45, 44, 43, 42, 47, 46]                   # right eye <- left eye
    + [39, 38, 37, 36, 41, 40]                   # left eye <- right eye
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]  # outer mouth
    + [64, 63, 62, 61, 60, 67, 66, 65]           # inner mouth
)


def flip_permutation() -> np.ndarray:
    """Index permutation that swaps left and right keypoints (for horizontal mirroring).

    Returns:
        ``(K,)`` int array ``p`` such that ``mirrored[i] = original[p[i]]`` after the x flip.
    """
    perm = np.arange(NUM_KEYPOINTS)
    perm[BODY] = _body_flip()
    feet = np.arange(FEET.start, FEET.stop)
    perm[FEET] = np.concatenate([feet[3:], feet[:3]])
    perm[FACE] = FACE.start + np.asarray(_FACE_FLIP)
    perm[LEFT_HAND] = np.arange(RIGHT_HAND.start, RIGHT_HAND.stop)
    perm[RIGHT_HAND] = np.arange(LEFT_HAND.start, LEFT_HAND.stop)
    return perm


@dataclass(frozen=True)
class Topology:
    """A skeleton topology as data: keypoint names, parents and left/right swap."""

    names: tuple[str, ...]
    parents: tuple[int, ...]
    edges: tuple[tuple[int, int], ...]
    flip: tuple[int, ...]


BODY_TOPOLOGY = Topology(BODY_NAMES, BODY_PARENTS, BODY_LIMBS[:NUM_DRAWN_BODY_LIMBS], tuple(_body_flip()))
HAND_TOPOLOGY = Topology(HAND_NAMES, HAND_PARENTS, HAND_EDGES, tuple(range(NUM_HAND)))

if sorted(_FACE_FLIP) != list(range(NUM_FACE)):  # pragma: no cover - guards the table above
    raise RuntimeError("face flip table is not a permutation of 68 indices")
