"""Tests of pose.render against the anchors' drawing conventions and Moore-AnimateAnyone's real skeleton frames."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from pose import layout
from pose.errors import ConfigError
from pose.render import (
    HAND_EDGE_COLOURS,
    OPENPOSE_PALETTE,
    STYLES,
    musepose_width,
    render_pose,
    render_sequence,
)
from pose.sequence import PoseFrame, PoseSequence, empty_keypoints

DATA = Path(__file__).parent / "data" / "skeleton"
B = layout.B


# --- helpers ---------------------------------------------------------------------------------------------
def _read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _find_joint(img: np.ndarray, j: int, tol: int = 45) -> tuple[np.ndarray, int] | None:
    """Centroid and area of the compact blob of joint ``j``'s full palette colour."""
    d = np.abs(img.astype(int) - OPENPOSE_PALETTE[j].astype(int)).max(axis=2)
    n, _, stats, cents = cv2.connectedComponentsWithStats((d < tol).astype(np.uint8), connectivity=8)
    best = None
    for k in range(1, n):
        _, _, w, h, area = stats[k]
        if 15 <= area <= 80 and w <= 11 and h <= 11 and (best is None or area > stats[best][4]):
            best = k
    return None if best is None else (cents[best], int(stats[best][4]))


def _width_across(img: np.ndarray, p: np.ndarray, q: np.ndarray, thr: int = 60) -> float:
    """Width (px) of the non-black stroke across segment p-q at its midpoint (brightness, 0.25 px steps)."""
    m = (p + q) / 2.0
    d = (q - p) / np.linalg.norm(q - p)
    normal = np.array([-d[1], d[0]])
    steps = np.arange(-15, 15.01, 0.25)
    pts = np.rint(m + steps[:, None] * normal).astype(int)
    return float((img[pts[:, 1], pts[:, 0]].max(axis=1) > thr).sum() * 0.25)


def _bright_area(img: np.ndarray, c: np.ndarray, thr: int = 200) -> int:
    """Pixels brighter than the 0.6-dimmed limbs (any channel > thr) within 7 px of ``c``."""
    x, y = np.rint(c).astype(int)
    win = img[y - 7: y + 8, x - 7: x + 8]
    return int((win.max(axis=2) > thr).sum())


def _yuv420(img: np.ndarray) -> np.ndarray:
    """Simulate a video codec's chroma subsampling (the real frames come from an H.264 video)."""
    ycc = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb)
    h, w = img.shape[:2]
    for c in (1, 2):
        small = cv2.resize(ycc[..., c], (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        ycc[..., c] = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)


def _pose(points: dict[int, tuple[float, float]], w: int, h: int, score: float = 1.0) -> PoseFrame:
    kps = empty_keypoints()
    for i, (x, y) in points.items():
        kps[i] = [x, y, score]
    return PoseFrame(kps, w, h)


def _whole_body(w: int = 512, h: int = 768) -> PoseFrame:
    rng = np.random.default_rng(3)
    body = np.array([
        [256, 150], [256, 210], [206, 212], [186, 300], [180, 380], [306, 212], [326, 300], [332, 380],
        [226, 420], [222, 540], [220, 660], [286, 420], [290, 540], [292, 660],
        [246, 140], [266, 140], [236, 146], [276, 146],
    ], dtype=np.float32) + 0.5
    kps = empty_keypoints()
    kps[layout.BODY, :2] = body
    kps[layout.BODY, 2] = 0.9
    for sl, anchor in ((layout.LEFT_HAND, body[B["left_wrist"]]), (layout.RIGHT_HAND, body[B["right_wrist"]])):
        kps[sl, :2] = np.floor(anchor + rng.uniform(-25, 25, (layout.NUM_HAND, 2))) + 0.5
        kps[sl, 2] = 0.8
    kps[layout.FACE, :2] = np.floor(body[B["nose"]] + rng.uniform(-20, 20, (layout.NUM_FACE, 2))) + 0.5
    kps[layout.FACE, 2] = 0.8
    return PoseFrame(kps, w, h)


# --- exact agreement with controlnet_aux's drawing code (the convention Moore's guider was trained on) ------
def _controlnet_aux_util():
    spec = importlib.util.find_spec("controlnet_aux")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("controlnet_aux not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "dwpose" / "util.py"
    if not path.exists():
        pytest.skip("controlnet_aux has no dwpose/util.py")
    pytest.importorskip("matplotlib")
    mod_spec = importlib.util.spec_from_file_location("_cnaux_dwpose_util", path)  # no package import (no torch)
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    return module


def test_openpose_style_matches_controlnet_aux_pixel_for_pixel():
    util = _controlnet_aux_util()
    frame = _whole_body()
    w, h = frame.width, frame.height
    k = frame.keypoints.astype(np.float64)
    norm = k[:, :2] / [w, h]
    candidate = norm[layout.BODY]
    subset = np.array([[i if k[i, 2] >= 0.3 else -1 for i in range(18)]], dtype=float)
    hands = np.stack([norm[layout.LEFT_HAND], norm[layout.RIGHT_HAND]])
    faces = norm[layout.FACE][None]
    canvas = np.zeros((h, w, 3), np.uint8)
    canvas = util.draw_bodypose(canvas, candidate, subset)
    canvas = util.draw_handpose(canvas, hands)
    expected = util.draw_facepose(canvas, faces)
    ours = render_pose(frame, "openpose")
    diff = np.abs(ours.astype(int) - expected.astype(int)).max(axis=2)
    assert (diff > 0).mean() < 0.001, f"{(diff > 0).sum()} pixels differ"


# --- real Moore-AnimateAnyone skeleton frames ------------------------------------------------------------
REAL_LIMBS = [  # (file, limb index, joint a, joint b): limbs whose two joint dots are clean in the frame
    ("anyone-video-1_000.png", 2, 2, 3),
    ("anyone-video-1_030.png", 2, 2, 3),
    ("anyone-video-1_030.png", 8, 9, 10),
]


@pytest.mark.parametrize("name, limb, a, b", REAL_LIMBS)
def test_openpose_style_matches_real_moore_frame(name, limb, a, b):
    real = _read_rgb(DATA / name)
    h, w = real.shape[:2]
    ja, jb = _find_joint(real, a), _find_joint(real, b)
    assert ja is not None and jb is not None
    pa, pb = ja[0], jb[0]
    # limb colour at the midpoint is the palette colour times 0.6 (video compression tolerance)
    mid = np.rint((pa + pb) / 2).astype(int)
    expected = np.floor(OPENPOSE_PALETTE[limb] * 0.6)
    assert np.abs(real[mid[1], mid[0]].astype(int) - expected).max() <= 20

    ours = render_pose(_pose({a: tuple(pa), b: tuple(pb)}, w, h), "openpose")
    assert np.abs(ours[mid[1], mid[0]].astype(int) - expected).max() == 0
    # stick width across the limb: real vs ours within 1 px (ellipse half-width 4 -> ~9 px)
    w_real, w_ours = _width_across(real, pa, pb), _width_across(ours, pa, pb)
    assert abs(w_real - w_ours) <= 1.0, (w_real, w_ours)
    assert 8.0 <= w_ours <= 10.0
    # joint dots: full palette colour at the centre, same size as the real ones (radius 4)
    for j, p in ((a, pa), (b, pb)):
        c = np.rint(p).astype(int)
        assert np.abs(ours[c[1], c[0]].astype(int) - OPENPOSE_PALETTE[j]).max() == 0
        area_real, area_ours = _bright_area(real, p), _bright_area(_yuv420(ours), p)
        assert 30 <= _bright_area(ours, p) <= 60  # a radius-4 filled circle has 49 pixels
        assert abs(area_real - area_ours) <= 0.35 * area_ours, (area_real, area_ours)


def test_real_frame_channel_order_hands_and_face():
    """Moore's frames are RGB with limb 0 red, hand joints blue and white face dots; so are ours."""
    real = _read_rgb(DATA / "anyone-video-1_000.png")
    white = (real.min(axis=2) > 200).sum()
    ours = render_pose(_whole_body(), "openpose")
    assert white > 100 and (ours.min(axis=2) == 255).sum() > 100
    hand_blue = np.all(ours == [0, 0, 255], axis=2).sum()
    assert hand_blue > 100
    assert (np.all(real.astype(int) - [0, 0, 255] == 0, axis=2) | (np.abs(real.astype(int) - [0, 0, 255]).max(axis=2) < 30)).sum() > 50


# --- styles ----------------------------------------------------------------------------------------------
def test_openpose_limb_colours_and_hand_colours():
    frame = _whole_body()
    img = render_pose(frame, "openpose")
    xy = frame.keypoints[:, :2]
    for i, (a, b) in enumerate(layout.BODY_LIMBS[: layout.NUM_DRAWN_BODY_LIMBS]):
        if i in (12, 13, 14, 15, 16):  # head limbs are covered by the face dots
            continue
        t = 0.3  # away from the joints and from crossing limbs
        p = np.floor(xy[a] * (1 - t) + xy[b] * t).astype(int)
        np.testing.assert_array_equal(img[p[1], p[0]], np.floor(OPENPOSE_PALETTE[i] * 0.6), err_msg=f"limb {i}")
    assert HAND_EDGE_COLOURS[0] == (255, 0, 0) and HAND_EDGE_COLOURS[5] == (128, 255, 0)


def test_musepose_style_is_blue_first_and_length_dependent():
    w, h = 768, 1152
    long_pose = _pose({B["neck"]: (384.5, 300.5), B["right_shoulder"]: (84.5, 300.5)}, w, h)
    short_pose = _pose({B["neck"]: (384.5, 300.5), B["right_shoulder"]: (374.5, 300.5)}, w, h)
    img = render_pose(long_pose, "musepose")
    c = img[300, 234].astype(int)  # middle of limb 0
    assert c[2] >= 145 and c[0] <= 10 and c[1] <= 10, c  # blue (0, 0, 153)
    red = render_pose(long_pose, "openpose")[300, 234]
    assert tuple(red) == (153, 0, 0)
    # length-dependent stick: 300 px at output = 400 px at MusePose's 1024 drawing size -> half-width 8
    w_long = _width_across(img, np.array([384.5, 300.5]), np.array([84.5, 300.5]), thr=30)
    assert 2 * 8 * 0.75 - 2 <= w_long <= 2 * 8 * 0.75 + 2
    assert musepose_width(3) == 1 and musepose_width(30) == 4 and musepose_width(1000) == 8
    short = render_pose(short_pose, "musepose")
    w_short = (short[290:311, 379].max(axis=1) > 30).sum()
    assert w_short < w_long
    # musepose draws no face
    frame = _whole_body()
    assert (render_pose(frame, "musepose").min(axis=2) > 240).sum() < (render_pose(frame, "openpose").min(axis=2) > 240).sum() / 4
    assert set(STYLES) >= {"openpose", "musepose", "body"}


def test_body_style_has_no_hands_or_face():
    frame = _whole_body()
    img = render_pose(frame, "body")
    kps = frame.keypoints.copy()
    kps[layout.BODY.stop:, 2] = 0.0
    np.testing.assert_array_equal(img, render_pose(PoseFrame(kps, frame.width, frame.height), "openpose"))
    assert not np.array_equal(img, render_pose(frame, "openpose"))


def test_low_scores_and_garbage_coordinates_are_skipped():
    kps = _whole_body().keypoints.copy()
    kps[B["left_wrist"], 2] = 0.29
    kps[B["right_wrist"], :2] = [np.inf, np.nan]
    kps[B["left_ankle"], :2] = [1e30, -1e30]
    kps[B["right_ankle"], :2] = [-5000, 400]
    img = render_pose(PoseFrame(kps, 512, 768), "openpose")
    assert img.shape == (768, 512, 3) and img.dtype == np.uint8
    x, y = np.floor(kps[B["left_wrist"], :2]).astype(int)
    assert tuple(img[y, x]) != tuple(OPENPOSE_PALETTE[B["left_wrist"]])
    for style in STYLES:
        render_pose(PoseFrame(kps, 512, 768), style)
    empty = render_pose(PoseFrame.empty(64, 32))
    assert empty.shape == (32, 64, 3) and not empty.any()


def test_size_rescales_keeping_aspect_and_canvas():
    frame = _pose({B["neck"]: (50.5, 40.5), B["right_shoulder"]: (30.5, 40.5)}, 100, 100)
    img = render_pose(frame, "openpose", size=(200, 400))
    assert img.shape == (400, 200, 3)
    # 100x100 -> scale 2, centred vertically at offset 100: neck at (101, 181)
    assert tuple(img[181, 101]) == tuple(OPENPOSE_PALETTE[B["neck"]])
    bg = np.full((100, 100, 3), 100, np.uint8)
    over = render_pose(frame, "openpose", canvas=bg)
    assert tuple(over[5, 5]) == (60, 60, 60)  # background dimmed by 0.6 like the anchors
    assert tuple(over[40, 50]) == tuple(OPENPOSE_PALETTE[B["neck"]])
    with pytest.raises(ConfigError, match="style"):
        render_pose(frame, "dwpose-xl")


def test_render_sequence_and_speed():
    frame = _whole_body()
    n = 100
    seq = PoseSequence(np.repeat(frame.keypoints[None], n, 0), 512, 768, 24.0)
    start = time.process_time()  # CPU time: robust to a busy machine
    frames = list(render_sequence(seq, "openpose"))
    fps = n / max(time.process_time() - start, 1e-9)
    assert len(frames) == n and frames[0].shape == (768, 512, 3)
    np.testing.assert_array_equal(frames[0], frames[-1])
    assert fps > 100, f"{fps:.0f} fps"  # target >= 200 fps on one core
