"""Convert mediapipe Holistic landmarks into posedrive's 134-keypoint layout (:mod:`pose.layout`).

All maps are data (index tables below), so they can be read, tested and reused.

Body
    Mediapipe's 33 BlazePose landmarks -> OpenPose-18 (:data:`MP_POSE_TO_BODY`). Mediapipe names sides
    from the person's point of view, like OpenPose, so no swap is needed. The neck is the mean of the two
    shoulders, only when both are visible; its score is the smaller shoulder score. A body keypoint's score
    is mediapipe's ``visibility``.
Feet
    heels (29/30) and foot-index tips (31/32, used as big toes). Mediapipe has no small toe: left missing.
Face
    468-point face mesh -> iBUG/dlib 68 (:data:`FACE_MESH_TO_IBUG68`), score 1.0 when the face was found.
    The mesh vertex for each iBUG point was chosen on the canonical face model (jaw contour, brows,
    nose bridge and base, eye corners and lids, outer and inner lip contours); the table is built so that
    mirrored iBUG pairs map to mirrored mesh vertices (checked in the tests against
    :func:`pose.layout.flip_permutation`).
Hands
    21 landmarks each, same order as :data:`pose.layout.HAND_NAMES`, score 1.0. Holistic's
    ``left_hand_landmarks`` is the person's left hand (verified on the test images: its wrist lies on
    the pose's left wrist); to be robust to mix-ups, each hand is assigned to the body wrist it is nearest
    to when the body wrists are visible, and by mediapipe's label otherwise.

Coordinates are mediapipe's normalised ``[0, 1]`` image coordinates times ``width``/``height``, i.e.
pixels of the image the landmarks refer to (posedrive's convention). Because they are normalised,
detection can run on a downscaled copy of a frame and still be mapped to the full-size frame.
"""

from __future__ import annotations

import numpy as np

from . import layout
from .sequence import FrameStatus, PoseFrame, empty_keypoints

# Score under which a mediapipe body landmark counts as not visible (same threshold the anchors use to
# drop keypoints when drawing).
VISIBILITY_THRESHOLD = 0.3

# OpenPose-18 body index -> mediapipe pose landmark index (-1: computed, the neck).
MP_POSE_TO_BODY: tuple[int, ...] = (
    0,    # nose
    -1,   # neck = mean of shoulders
    12,   # right shoulder
    14,   # right elbow
    16,   # right wrist
    11,   # left shoulder
    13,   # left elbow
    15,   # left wrist
    24,   # right hip
    26,   # right knee
    28,   # right ankle
    23,   # left hip
    25,   # left knee
    27,   # left ankle
    5,    # right eye (centre)
    2,    # left eye (centre)
    8,    # right ear
    7,    # left ear
)
MP_LEFT_SHOULDER, MP_RIGHT_SHOULDER = 11, 12
MP_LEFT_WRIST, MP_RIGHT_WRIST = 15, 16

# Feet (layout order: L big toe, L small toe, L heel, R big toe, R small toe, R heel) -> mediapipe index.
MP_POSE_TO_FEET: tuple[int, ...] = (31, -1, 29, 32, -1, 30)

# iBUG 68 index -> mediapipe face-mesh vertex. Sides are the person's (iBUG point 0 is on the person's right).
FACE_MESH_TO_IBUG68: tuple[int, ...] = (
    # jaw 0-16, person's right ear -> chin (8) -> left ear
    127, 234, 93, 132, 58, 172, 136, 149, 152, 378, 365, 397, 288, 361, 323, 454, 356,
    # right brow 17-21 (outer -> inner), left brow 22-26 (inner -> outer)
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    # nose bridge 27-30 (top -> tip), lower nose 31-35 (right -> left)
    168, 197, 5, 4, 75, 97, 2, 326, 305,
    # right eye 36-41: outer corner, upper lid x2, inner corner, lower lid x2
    33, 160, 158, 133, 153, 144,
    # left eye 42-47: inner corner, upper lid x2, outer corner, lower lid x2
    362, 385, 387, 263, 373, 380,
    # outer lips 48-59: right corner, upper lip to left corner, lower lip back
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
    # inner lips 60-67: right corner, upper, left corner, lower
    78, 81, 13, 311, 308, 402, 14, 178,
)

NUM_MP_POSE = 33
NUM_MP_FACE = 468
NUM_MP_HAND = 21

if len(FACE_MESH_TO_IBUG68) != layout.NUM_FACE:  # pragma: no cover - guards the table above
    raise RuntimeError("FACE_MESH_TO_IBUG68 must have 68 entries")


def landmarks_to_array(landmarks, width: int, height: int, use_visibility: bool = False) -> np.ndarray | None:
    """Mediapipe ``NormalizedLandmarkList`` -> ``(N, 3)`` float32 ``[x_px, y_px, score]``.

    Args:
        landmarks: a mediapipe landmark list (``.landmark`` sequence) or ``None``.
        width, height: pixel size the normalised coordinates refer to.
        use_visibility: score = landmark ``visibility`` (pose); otherwise 1.0 (face, hands).

    Returns:
        The array, or ``None`` when ``landmarks`` is ``None``.
    """
    if landmarks is None:
        return None
    pts = landmarks.landmark
    arr = np.empty((len(pts), 3), dtype=np.float32)
    for i, p in enumerate(pts):
        arr[i, 0] = p.x * width
        arr[i, 1] = p.y * height
        arr[i, 2] = min(max(p.visibility, 0.0), 1.0) if use_visibility else 1.0
    return arr


def _put(dst: np.ndarray, src: np.ndarray, index_map: tuple[int, ...]) -> None:
    for i, j in enumerate(index_map):
        if j >= 0:
            dst[i] = src[j]


def assign_hands(left: np.ndarray | None, right: np.ndarray | None,
                 body: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Decide which detected hand is the person's left and which the right.

    Args:
        left, right: ``(21, 3)`` hands as labelled by mediapipe (``None`` when not found).
        body: ``(18, 3)`` OpenPose-18 body of the same person (pixels, scores).

    Returns:
        ``(left_hand, right_hand)``: each hand goes to the visible body wrist its own wrist is nearest to;
        when both body wrists are not visible, mediapipe's labels are kept.
    """
    lw, rw = body[layout.B["left_wrist"]], body[layout.B["right_wrist"]]
    if not (lw[2] >= VISIBILITY_THRESHOLD and rw[2] >= VISIBILITY_THRESHOLD):
        return left, right
    hands = [h for h in (left, right) if h is not None]
    if len(hands) == 2:
        keep = (np.linalg.norm(left[0, :2] - lw[:2]) + np.linalg.norm(right[0, :2] - rw[:2]))
        swap = (np.linalg.norm(left[0, :2] - rw[:2]) + np.linalg.norm(right[0, :2] - lw[:2]))
        return (right, left) if swap < keep else (left, right)
    if len(hands) == 1:
        h = hands[0]
        nearer_left = np.linalg.norm(h[0, :2] - lw[:2]) <= np.linalg.norm(h[0, :2] - rw[:2])
        return (h, None) if nearer_left else (None, h)
    return None, None


def holistic_to_keypoints(results, width: int, height: int) -> np.ndarray:
    """Mediapipe Holistic results -> ``(134, 3)`` float32 keypoints in pixels (missing = NaN, score 0).

    Args:
        results: the object returned by ``mediapipe.solutions.holistic.Holistic.process`` (attributes
            ``pose_landmarks``, ``face_landmarks``, ``left_hand_landmarks``, ``right_hand_landmarks``).
        width, height: size in pixels of the image the keypoints should refer to (may differ from the
            processed image when detection ran on a resized copy; the aspect ratio must be the same).
    """
    kps = empty_keypoints()
    pose = landmarks_to_array(results.pose_landmarks, width, height, use_visibility=True)
    if pose is None:
        return kps
    body = kps[layout.BODY]
    _put(body, pose, MP_POSE_TO_BODY)
    ls, rs = pose[MP_LEFT_SHOULDER], pose[MP_RIGHT_SHOULDER]
    if ls[2] >= VISIBILITY_THRESHOLD and rs[2] >= VISIBILITY_THRESHOLD:
        body[layout.B["neck"], :2] = (ls[:2] + rs[:2]) / 2.0
        body[layout.B["neck"], 2] = min(ls[2], rs[2])
    _put(kps[layout.FEET], pose, MP_POSE_TO_FEET)

    face = landmarks_to_array(results.face_landmarks, width, height)
    if face is not None:
        kps[layout.FACE] = face[list(FACE_MESH_TO_IBUG68)]

    left = landmarks_to_array(results.left_hand_landmarks, width, height)
    right = landmarks_to_array(results.right_hand_landmarks, width, height)
    left, right = assign_hands(left, right, body)
    if left is not None:
        kps[layout.LEFT_HAND] = left
    if right is not None:
        kps[layout.RIGHT_HAND] = right
    return kps


def holistic_to_frame(results, width: int, height: int) -> PoseFrame:
    """Mediapipe Holistic results -> :class:`PoseFrame` (``MISSING`` and empty when no person was found).

    Args:
        results: ``Holistic.process`` output.
        width, height: pixel size of the image the pose belongs to.
    """
    if results.pose_landmarks is None:
        return PoseFrame.empty(width, height)
    return PoseFrame(holistic_to_keypoints(results, width, height), width, height, FrameStatus.DETECTED)
