"""A character that is small in their image (a full figure in a wide shot) is detected and segmented on a
crop around them (pose.extract.zoom_window), on the real MusePose reference shrunk into a wide frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pose import layout
from pose.extract import ZOOM_BELOW, detect_image, zoom_window
from pose.sequence import PoseFrame
from reference.segmentation import coarse_mask

B = layout.B
SCALE = 0.25  # the character, 1216 px tall in the original, becomes 304 px tall ...
PAD = (400, 500)  # ... in a 1176 x 1104 frame (edge pixels repeated around it)


@pytest.fixture(scope="module")
def wide_shot(data_dir):
    """(small image, the original image's pose and mask mapped into it)."""
    ref = cv2.cvtColor(cv2.imread(str(data_dir / "ref" / "musepose_ref.png")), cv2.COLOR_BGR2RGB)
    h, w = ref.shape[:2]
    small = cv2.resize(ref, (round(w * SCALE), round(h * SCALE)), interpolation=cv2.INTER_AREA)
    wide = cv2.copyMakeBorder(small, PAD[0], PAD[0], PAD[1], PAD[1], cv2.BORDER_REPLICATE)
    to_wide = np.array([[SCALE, 0.0, PAD[1]], [0.0, SCALE, PAD[0]]])
    pose = detect_image(ref).transformed(to_wide, wide.shape[1], wide.shape[0])
    mask = cv2.warpAffine((coarse_mask(ref) >= 0.5).astype(np.uint8), to_wide, wide.shape[1::-1],
                          flags=cv2.INTER_NEAREST) > 0
    return wide, pose, mask


def test_zoom_window_only_for_small_people():
    kps = np.zeros((layout.NUM_KEYPOINTS, 3), np.float32)
    kps[B["nose"]] = (500, 400, 1.0)
    kps[B["right_ankle"]] = (520, 600, 1.0)
    small = PoseFrame(kps, 1000, 1000)
    x0, y0, x1, y1 = zoom_window(small)
    assert (x1 - x0, y1 - y0) == (440, 440) and (x0 + x1) / 2 == pytest.approx(510, abs=1)
    big = kps.copy()
    big[B["right_ankle"], 1] = 400 + ZOOM_BELOW * 1000
    assert zoom_window(PoseFrame(big, 1000, 1000)) is None
    edge = kps.copy()
    edge[:, 0] -= 480  # at the left border: the window is clipped to the image
    assert zoom_window(PoseFrame(edge, 1000, 1000))[0] == 0
    assert zoom_window(PoseFrame(np.zeros_like(kps), 1000, 1000)) is None


def test_small_character_is_detected_on_a_crop(wide_shot):
    wide, truth, _ = wide_shot
    found = detect_image(wide)
    height = 1216 * SCALE
    err = np.linalg.norm(found.xy[layout.BODY] - truth.xy[layout.BODY], axis=1)
    seen = found.visible()[layout.BODY] & truth.visible()[layout.BODY]
    assert seen.sum() >= 14
    assert np.median(err[seen]) < 0.02 * height
    # on the whole frame mediapipe put the ankles about at the knees (8 % of her height off)
    for ankle in ("right_ankle", "left_ankle"):
        assert err[B[ankle]] < 0.04 * height


def test_small_character_is_segmented_on_a_crop(wide_shot):
    wide, _, mask = wide_shot
    assert not (coarse_mask(wide) >= 0.5).any()  # the model sees nothing in the whole frame
    prob = coarse_mask(wide, pose=detect_image(wide))
    got = prob >= 0.5
    assert (got & mask).sum() / (got | mask).sum() > 0.8


def test_character_too_small_for_the_whole_image_is_found_on_tiles(data_dir):
    """At 11 % of the image's height mediapipe finds nobody in the whole image (nor with margins, which make
    her smaller still); the reference was refused with "no person detected". The tiles find her."""
    ref = cv2.cvtColor(cv2.imread(str(data_dir / "ref" / "musepose_ref.png")), cv2.COLOR_BGR2RGB)
    h, w = ref.shape[:2]
    scale, pad = 0.15, (700, 800)
    small = cv2.resize(ref, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    wide = cv2.copyMakeBorder(small, pad[0], pad[0], pad[1], pad[1], cv2.BORDER_REPLICATE)
    truth = detect_image(ref).transformed(np.array([[scale, 0.0, pad[1]], [0.0, scale, pad[0]]]),
                                          wide.shape[1], wide.shape[0])
    found = detect_image(wide)
    seen = found.visible()[layout.BODY] & truth.visible()[layout.BODY]
    err = np.linalg.norm(found.xy[layout.BODY] - truth.xy[layout.BODY], axis=1)
    assert seen.sum() >= 14 and np.median(err[seen]) < 0.03 * h * scale
