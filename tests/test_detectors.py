"""pose.detectors and pose.mediapipe_convert on real images: anatomy, known transforms, mirror symmetry."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from pose import layout
from pose.detectors import available_detectors, create_detector
from pose.errors import DetectorError
from pose.mediapipe_convert import FACE_MESH_TO_IBUG68, MP_POSE_TO_BODY
from pose.sequence import FrameStatus
from pose.video import read_image

B = layout.B
# Tolerance of the transform tests: median body-keypoint error below this fraction of the body height.
TRANSFORM_TOL = 0.03


@pytest.fixture(scope="module")
def still():
    """Mediapipe in single-image mode, shared by the tests of this module."""
    det = create_detector("mediapipe", static_image_mode=True)
    yield det
    det.close()


def _body_height(frame) -> float:
    vis = frame.visible()[layout.BODY]
    ys = frame.body[vis, 1]
    return float(ys.max() - ys.min())


def _median_body_error(a, b) -> float:
    ok = (a.body[:, 2] > 0.5) & (b.body[:, 2] > 0.5)
    return float(np.median(np.linalg.norm(a.body[ok, :2] - b.body[ok, :2], axis=1)))


def test_registry():
    assert {"mediapipe", "openpose", "skeleton"} <= set(available_detectors())
    with pytest.raises(DetectorError, match="unknown pose detector 'dwpose'"):
        create_detector("dwpose")
    with pytest.raises(DetectorError, match="invalid option"):
        create_detector("mediapipe", no_such_option=1)
    with pytest.raises(DetectorError, match="model_complexity=2 would download"):
        create_detector("mediapipe", model_complexity=2)


def test_conversion_tables():
    assert len(MP_POSE_TO_BODY) == 18 and MP_POSE_TO_BODY[B["neck"]] == -1
    assert len(FACE_MESH_TO_IBUG68) == 68 and len(set(FACE_MESH_TO_IBUG68)) == 68
    assert all(0 <= i < 468 for i in FACE_MESH_TO_IBUG68)


@pytest.mark.parametrize("name", ["dance_000.jpg", "dance_100.jpg", "dance_200.jpg"])
def test_dance_frames_anatomy(still, data_dir, name):
    img = read_image(data_dir / name)
    f = still(img)
    assert f.status == FrameStatus.DETECTED and (f.width, f.height) == (540, 960)
    body = f.body
    assert (body[:14, 2] > 0.5).all()  # nose, neck, arms and legs all seen in these frames
    hips_y = body[[B["right_hip"], B["left_hip"]], 1].mean()
    assert body[B["nose"], 1] < body[B["neck"], 1] < hips_y
    assert hips_y < body[[B["right_knee"], B["left_knee"]], 1].mean() < body[[B["right_ankle"], B["left_ankle"]], 1].mean()
    # neck is the mean of the shoulders
    assert np.allclose(body[B["neck"], :2], body[[2, 5], :2].mean(axis=0), atol=1e-3)
    # the dancer faces the camera: her right shoulder is on the image's left
    assert body[B["right_shoulder"], 0] < body[B["left_shoulder"], 0]
    # face: 68 points inside the head region, jaw point 0 on the person's right (image left)
    face = f.part("face")
    assert (face[:, 2] == 1.0).all()
    assert face[0, 0] < face[16, 0] and face[8, 1] > face[27, 1]
    assert np.linalg.norm(face[30, :2] - body[B["nose"], :2]) < 0.05 * _body_height(f)
    # a found hand sits on its own body wrist
    for side in ("left", "right"):
        hand = f.part(f"{side}_hand")
        if hand[0, 2] > 0:
            wrist = body[B[f"{side}_wrist"], :2]
            assert np.linalg.norm(hand[0, :2] - wrist) < 0.05 * _body_height(f)


def test_blank_image_is_missing(still):
    f = still(np.zeros((480, 270, 3), np.uint8))
    assert f.status == FrameStatus.MISSING and not f.has_person
    assert np.isnan(f.keypoints[:, :2]).all() and (f.scores == 0).all()


def _affine_case(img, angle, scale, shift):
    """Pad the frame, then rotate/scale about the centre and shift; returns (image, 2x3 map)."""
    h, w = img.shape[:2]
    pad = max(h, w) // 4
    canvas = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(255, 255, 255))
    H, W = canvas.shape[:2]
    m = cv2.getRotationMatrix2D((W / 2, H / 2), angle, scale)
    m[:, 2] += shift
    m_full = m @ np.array([[1, 0, pad], [0, 1, pad], [0, 0, 1]], dtype=np.float64)
    out = cv2.warpAffine(canvas, m, (W, H), flags=cv2.INTER_LINEAR, borderValue=(255, 255, 255))
    return out, m_full


@pytest.mark.parametrize("angle,scale,shift", [(0, 1.0, (60, -40)), (0, 0.7, (0, 0)), (15, 1.0, (0, 0)),
                                               (-15, 0.85, (-30, 25))])
def test_detection_follows_known_affine(still, data_dir, angle, scale, shift):
    img = read_image(data_dir / "dance_100.jpg")
    ref = still(img)
    warped, m = _affine_case(img, angle, scale, shift)
    got = still(warped)
    want = ref.transformed(m, warped.shape[1], warped.shape[0])
    err = _median_body_error(got, want)
    assert err < TRANSFORM_TOL * _body_height(want), f"median error {err:.1f}px"


def test_mirror_swaps_sides_and_face(still, data_dir):
    """Detecting on a mirrored image == mirroring the detection (checks left/right labels and the 68 map)."""
    img = read_image(data_dir / "dance_000.jpg")
    ref = still(img).mirrored()
    got = still(np.ascontiguousarray(img[:, ::-1]))
    h = _body_height(ref)
    assert _median_body_error(got, ref) < TRANSFORM_TOL * h
    face_w = np.ptp(ref.part("face")[:, 0])
    d = np.linalg.norm(got.part("face")[:, :2] - ref.part("face")[:, :2], axis=1)
    assert np.median(d) < 0.08 * face_w
    # if mirror pairs of the face table were wrong, swapped points would be ~a face width apart
    assert d.max() < 0.35 * face_w


def test_video_mode_tracks_and_loses_the_person(data_dir):
    img = read_image(data_dir / "dance_000.jpg")
    blank = np.full_like(img, 255)
    with create_detector("mediapipe") as det:
        statuses = [det(x).status for x in (img, img, blank, blank, img)]
        det.reset()
        assert det(img).has_person
    assert statuses == [FrameStatus.DETECTED, FrameStatus.DETECTED, FrameStatus.MISSING, FrameStatus.MISSING,
                        FrameStatus.DETECTED]


def test_downscaled_detection_is_in_input_pixels(data_dir):
    img = read_image(data_dir / "dance_200.jpg")
    with create_detector("mediapipe", static_image_mode=True, max_size=None) as full, \
            create_detector("mediapipe", static_image_mode=True, max_size=480) as small:
        a, b = full(img), small(img)
    assert (b.width, b.height) == (540, 960)
    assert _median_body_error(a, b) < TRANSFORM_TOL * _body_height(a)


# ---------------------------------------------------------------------------------------------- openpose
def test_openpose_missing_files_are_named(tmp_path):
    (tmp_path / "body_pose_model.pth").write_bytes(b"x")
    with pytest.raises(DetectorError) as info:
        create_detector("openpose", annotator_dir=tmp_path)
    msg = str(info.value)
    assert "hand_pose_model.pth" in msg and "facenet.pth" in msg and "body_pose_model.pth" not in msg
    assert "lllyasviel/Annotators" in msg and str(tmp_path) in msg
    with pytest.raises(DetectorError, match="annotator_dir"):
        create_detector("openpose")


class _Kp:
    def __init__(self, x, y):
        self.x, self.y, self.score = x, y, 1.0


class _FakeOpenpose:
    """Stands in for controlnet_aux's OpenposeDetector: returns fixed normalised results."""

    def __init__(self, people):
        self.people = people
        self.calls = []

    def detect_poses(self, img, include_hand=False, include_face=False):
        from types import SimpleNamespace

        self.calls.append(img.shape)
        return [SimpleNamespace(body=SimpleNamespace(keypoints=body), left_hand=lh, right_hand=rh, face=face)
                for body, lh, rh, face in self.people]


def test_openpose_conversion_keeps_largest_person():
    from pose.detectors.openpose import OpenposeDetector

    small = [_Kp(0.1, 0.1), _Kp(0.12, 0.15)] + [None] * 16
    big = [_Kp(0.5, 0.1 + 0.04 * i) if i % 3 else None for i in range(18)]
    hand = [_Kp(0.6, 0.5)] + [_Kp(-1, -1)] * 20
    face = [_Kp(0.5, 0.05)] * 70
    fake = _FakeOpenpose([(small, None, None, None), (big, hand, None, face)])
    det = OpenposeDetector.from_model(fake, detect_resolution=256)
    f = det(np.zeros((400, 200, 3), np.uint8))
    assert fake.calls == [(256, 128, 3)]  # resized for detection
    assert f.status == FrameStatus.DETECTED and (f.width, f.height) == (200, 400)
    assert f.body[1, 0] == pytest.approx(100.0) and f.body[1, 1] == pytest.approx(400 * 0.14)
    assert f.body[0, 2] == 0 and np.isnan(f.body[0, 0])
    lh = f.part("left_hand")
    assert lh[0, :2].tolist() == pytest.approx([120.0, 200.0]) and (lh[1:, 2] == 0).all()
    assert (f.part("right_hand")[:, 2] == 0).all() and (f.part("face")[:, 2] == 1).all()


@pytest.mark.slow
def test_openpose_random_weights_run(tmp_path):
    """Builds controlnet_aux's networks with random weights (no download) and runs the whole path."""
    torch = pytest.importorskip("torch")
    from controlnet_aux.open_pose.body import bodypose_model
    from controlnet_aux.open_pose.face import FaceNet
    from controlnet_aux.open_pose.hand import handpose_model

    torch.manual_seed(0)
    for cls, name, strip in ((bodypose_model, "body_pose_model.pth", True),
                             (handpose_model, "hand_pose_model.pth", True), (FaceNet, "facenet.pth", False)):
        sd = cls().state_dict()
        if strip:  # controlnet_aux's loader expects the original checkpoints' key names (no first component)
            sd = {k.split(".", 1)[1]: v for k, v in sd.items()}
        torch.save(sd, tmp_path / name)
    with create_detector("openpose", annotator_dir=tmp_path, detect_resolution=128) as det:
        f = det(np.zeros((256, 128, 3), np.uint8))
    assert (f.width, f.height) == (128, 256)


def test_mediapipe_import_leaves_matplotlib_alone():
    """Importing the detector does not import matplotlib (0.45 s), and matplotlib still works afterwards."""
    code = (
        "import sys\n"
        "from pose.detectors.mediapipe_holistic import preload\n"
        "preload()\n"
        "assert 'mediapipe' in sys.modules\n"
        "assert 'matplotlib' not in sys.modules and 'matplotlib.pyplot' not in sys.modules\n"
        "import mediapipe as mp\n"
        "assert callable(mp.solutions.drawing_utils.plt.figure)  # mediapipe's own reference loads the real one\n"
        "import matplotlib.pyplot as plt\n"
        "assert type(plt).__name__ == 'module' and plt is sys.modules['matplotlib.pyplot']\n"
        "assert plt.figure is mp.solutions.drawing_utils.plt.figure\n"
    )
    env = {**os.environ, "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
