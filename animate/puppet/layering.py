"""Per-frame draw order of the puppet's layers (legs, body, arms), so arms pass in front of or behind the body.

The legs are always behind the body (a skirt or a jacket covers the thighs), the arms in front unless
the pose says an arm is hidden behind the torso; a hysteresis keeps that decision steady over frames."""

from __future__ import annotations

import numpy as np

from pose import layout
from pose.sequence import PoseFrame

B = layout.B
WRIST = {"right_arm": B["right_wrist"], "left_arm": B["left_wrist"]}
ELBOW = {"right_arm": B["right_elbow"], "left_arm": B["left_elbow"]}
# Score margin an arm behind the body must clear before it comes back in front (no flicker).
DEFAULT_HYSTERESIS = 0.15
TORSO = [B["right_shoulder"], B["left_shoulder"], B["left_hip"], B["right_hip"]]


def _inside(point: np.ndarray, polygon: np.ndarray) -> bool:
    edges = np.roll(polygon, -1, axis=0) - polygon
    rel = point[None, :] - polygon
    cross = edges[:, 0] * rel[:, 1] - edges[:, 1] * rel[:, 0]
    return bool((cross >= 0).all() or (cross <= 0).all())


def draw_order(layers: list[str], pose: PoseFrame, joints: np.ndarray, enabled: bool = True,
               hidden_score: float = 0.5, previous: list[str] | None = None,
               hysteresis: float = DEFAULT_HYSTERESIS) -> list[str]:
    """Back-to-front order of the layers for one frame.

    Arms are drawn in front of the body by default (the common case when a hand crosses the torso). An arm
    goes behind the body when its wrist lies over the torso and the detector rated the wrist (or elbow) as
    hardly visible (score below ``hidden_score``), the signature of an occluded joint. Of two arms in front,
    the one with the less visible wrist is drawn first.

    Args:
        layers: layer names of the rig, back to front (legs, ``"body"``, arms).
        pose: the driving frame (for the keypoint scores).
        joints: ``(18, 2)`` complete joints of the frame.
        enabled: ``False`` gives the fixed order body, then arms.
        hidden_score: score under which a wrist over the torso counts as occluded (default 0.5).
        previous: the order returned for the previous frame; an arm that was behind the body stays there
            until its score rises above ``hidden_score + hysteresis``, so a score hovering around the
            threshold does not make the arm flicker in front of and behind the body.
        hysteresis: score margin of that rule (default :data:`DEFAULT_HYSTERESIS`).

    Returns:
        The layer names, back to front.
    """
    arms = [lay for lay in layers if lay in WRIST]
    rest = [lay for lay in layers if lay not in WRIST]
    if not enabled:
        return rest + arms
    scores = np.nan_to_num(pose.scores[layout.BODY])
    torso = joints[TORSO]
    was_behind = set()
    if previous and "body" in previous:
        was_behind = {a for a in previous[:previous.index("body")] if a in WRIST}
    behind, front = [], []
    for arm in arms:
        wrist = joints[WRIST[arm]]
        limit = hidden_score + (hysteresis if arm in was_behind else 0.0)
        occluded = min(scores[WRIST[arm]], scores[ELBOW[arm]]) < limit
        (behind if occluded and _inside(wrist, torso) else front).append(arm)
    front.sort(key=lambda a: scores[WRIST[a]])
    at = rest.index("body") if "body" in rest else 0  # hidden arms go right behind the body, before the legs
    return rest[:at] + behind + rest[at:] + front
