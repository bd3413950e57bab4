"""Following one person when another crosses in front of them (pose/identity.py, extract_poses)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pose import identity, layout
from pose.detectors.mediapipe_holistic import note_graph_created
from pose.extract import extract_poses
from pose.sequence import FrameStatus, PoseFrame
from pose.video import VideoWriter, open_video

B = layout.B


def _pose(shoulders_y: float, hips_y: float, x0: float, x1: float) -> np.ndarray:
    """Keypoints with shoulders at ``(x0|x1, shoulders_y)``, hips at ``(x0|x1, hips_y)``, knees below."""
    kp = np.zeros((layout.NUM_KEYPOINTS, 3), np.float32)
    kp[:, :2] = np.nan
    knees_y = hips_y + (hips_y - shoulders_y)
    for name, xy in (("right_shoulder", (x0, shoulders_y)), ("left_shoulder", (x1, shoulders_y)),
                     ("right_hip", (x0, hips_y)), ("left_hip", (x1, hips_y)),
                     ("right_knee", (x0, knees_y)), ("left_knee", (x1, knees_y)),
                     ("neck", ((x0 + x1) / 2, shoulders_y))):
        kp[B[name]] = (*xy, 1.0)
    return kp


def _figure(top: tuple[int, int, int], legs: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A grey 200x100 image with a coloured torso (rows 40-100) and legs (rows 100-165), and its keypoints."""
    img = np.full((200, 100, 3), 128, np.uint8)
    img[40:100, 30:70] = top
    img[100:165, 24:76] = legs
    return img, _pose(40, 100, 35, 65)


def test_appearance_is_the_clothes_colours():
    red_top, kp = _figure((200, 20, 20), (20, 20, 200))
    sig = identity.appearance(red_top, kp)
    assert sig is not None and sig.shape == (identity.SIGNATURE_SIZE,)
    assert sig.sum() == pytest.approx(1.0)
    # only the top's red and the blue of the legs: both saturated, in two hue bins
    hue = np.argsort(sig)[::-1][:2] // identity.SATURATION_BINS
    assert sorted(hue.tolist()) == sorted([0, 240 * identity.HUE_BINS // 360])
    assert sig[identity.HUE_BINS * identity.SATURATION_BINS:].sum() == pytest.approx(0.0)
    assert identity.appearance_distance(sig, sig) == pytest.approx(0.0, abs=1e-6)

    white_top, _ = _figure((235, 235, 235), (20, 20, 20))
    grey = identity.appearance(white_top, kp)
    assert grey[identity.HUE_BINS * identity.SATURATION_BINS:].sum() == pytest.approx(1.0)
    assert identity.appearance_distance(sig, grey) == pytest.approx(1.0)
    # the same clothes a little darker still look alike
    darker = identity.appearance((red_top * 0.85).astype(np.uint8), kp)
    assert identity.appearance_distance(sig, darker) < identity.SIMILAR


def test_no_appearance_without_the_torso():
    img, kp = _figure((200, 20, 20), (20, 20, 200))
    kp[B["left_hip"], 2] = 0.1
    assert identity.appearance(img, kp) is None
    kp = _figure((200, 20, 20), (20, 20, 200))[1]
    kp[B["right_shoulder"], :2] = np.nan
    assert identity.appearance(img, kp) is None


def test_stranger_runs():
    nan = np.nan
    d = np.array([0.05, 0.1, 0.3, 0.5, nan, 0.6, 0.3, 0.1, 0.5, 0.1, 0.6, 0.7, 0.6])
    # 2..6 holds two strangers (3, 5) around a frame without a look; 8 is a lone stranger; 10.. runs to the end
    assert identity.stranger_runs(d) == [(2, 6), (10, 12)]
    assert identity.stranger_runs(np.full(5, 0.2)) == []
    assert identity.stranger_runs(np.full(5, nan)) == []


def test_reference_is_the_first_looks():
    looks = np.full((20, identity.SIGNATURE_SIZE), np.nan, np.float32)
    looks[3:, 0] = 1.0
    looks[3:, 1:] = 0.0
    looks[3 + identity.REFERENCE_DETECTIONS:, 0] = 0.0
    looks[3 + identity.REFERENCE_DETECTIONS:, 5] = 1.0
    ref = identity.reference_appearance(looks)
    assert ref[0] == pytest.approx(1.0)
    d = identity.distances_to(ref, looks)
    assert np.isnan(d[:3]).all() and d[3:11] == pytest.approx(0.0, abs=1e-6) and d[11:] == pytest.approx(1.0)
    assert identity.reference_appearance(np.full((4, identity.SIGNATURE_SIZE), np.nan)) is None


def test_cover_person_paints_their_box_only():
    img, kp = _figure((200, 20, 20), (20, 20, 200))
    before = img.copy()
    covered = identity.cover_person(img, kp)
    np.testing.assert_array_equal(img, before)  # input untouched
    assert identity.appearance(covered, kp) is not None
    assert len(np.unique(covered[40:160, 24:76].reshape(-1, 3), axis=0)) == 1  # the figure is gone
    np.testing.assert_array_equal(covered[:, :5], before[:, :5])  # the margin stops short of the far sides


class _Scripted:
    """A detector that returns the given keypoints for each call in turn (None: nobody)."""

    def __init__(self, answers: list[np.ndarray | None]) -> None:
        self.answers, self.seen = list(answers), []

    def __call__(self, rgb: np.ndarray) -> PoseFrame:
        self.seen.append(rgb.copy())
        kp = self.answers.pop(0)
        return PoseFrame.empty(rgb.shape[1], rgb.shape[0]) if kp is None else PoseFrame(kp, rgb.shape[1], rgb.shape[0])


def _two_people(left_top, right_top) -> np.ndarray:
    """A 200x240 frame with a person at x 30-70 (``left_top`` torso) and one at x 170-210."""
    img = np.full((200, 240, 3), 128, np.uint8)
    img[40:100, 30:70], img[100:160, 30:70] = left_top, (30, 30, 30)
    img[40:100, 170:210], img[100:160, 170:210] = right_top, (30, 30, 30)
    return img


def test_recover_runs_moves_the_track_to_the_followed_person():
    red, blue = (200, 20, 20), (20, 20, 200)
    left, right = _pose(40, 100, 35, 65), _pose(40, 100, 175, 205)
    frames = [_two_people(red, blue)] * 6
    reference = identity.appearance(frames[0], left)
    # the tracker follows the red person (left) up to 1, the blue one (right) from 2
    kps = np.stack([left, left, right, right, right, right])
    status = np.full(6, FrameStatus.DETECTED, np.uint8)
    keyframe = np.ones(6, bool)
    # detecting again with the blue person covered: nobody at 2 (red hidden), then red found at 3..5
    det = _Scripted([None, left, left, left])

    def source(first, last):
        for t in range(first, last + 1):
            yield t, frames[t], (2.0, 2.0)  # detection ran at half the source size

    src_kps = kps.copy()
    src_kps[..., :2] *= 2.0
    results = identity.recover_runs([(2, 5)], src_kps, status, keyframe, reference, source, lambda: det, fps=24.0)
    assert len(results) == 1 and not results[0].kept
    assert results[0].recovered == [3, 4, 5] and results[0].hidden == [2]
    assert status.tolist() == [FrameStatus.DETECTED] * 2 + [FrameStatus.MISSING] + [FrameStatus.DETECTED] * 3
    np.testing.assert_allclose(src_kps[3:, B["neck"], :2], [[100.0, 80.0]] * 3)  # back in source pixels
    assert np.isnan(src_kps[2, :, :2]).all() and (src_kps[2, :, 2] == 0).all()
    # the blue person was painted over in every frame given to the detector
    assert all((seen[40:100, 170:210] == seen[40, 170]).all() for seen in det.seen)


def test_recover_runs_keeps_a_run_when_nobody_like_them_is_found():
    red, blue = (200, 20, 20), (20, 20, 200)
    left = _pose(40, 100, 35, 65)
    reference = identity.appearance(_two_people(red, blue), left)
    frames = [_two_people(blue, blue)] * 200  # the same person, later in blue
    kps = np.stack([left] * 200)
    before = kps.copy()
    status = np.full(200, FrameStatus.DETECTED, np.uint8)
    keyframe = np.zeros(200, bool)
    keyframe[::3] = True
    # with them covered the detector finds the other person, in blue too: unlike the reference
    det = _Scripted([_pose(40, 100, 175, 205)] * 200)

    def source(first, last):
        for t in range(first, last + 1):
            yield t, frames[t], (1.0, 1.0)

    results = identity.recover_runs([(0, 199)], kps, status, keyframe, reference, source, lambda: det, fps=24.0)
    assert results[0].kept and not results[0].recovered and not results[0].hidden
    np.testing.assert_array_equal(kps, before)
    assert (status == FrameStatus.DETECTED).all()
    # given up after PROBE_SECONDS of keyframes, not the whole run
    assert len(det.seen) == len(range(0, int(identity.PROBE_SECONDS * 24), 3))


def test_recover_runs_other_person_seen_apart_after_the_run():
    """The tracker took the blue person at 2-4 and came back to the red one at 5 by itself; red was hidden
    during the run (nobody found with blue covered). With red covered after the run, blue is found apart:
    the run's keyframes showed blue, and red is marked hidden there."""
    red, blue = (200, 20, 20), (20, 20, 200)
    left, right = _pose(40, 100, 35, 65), _pose(40, 100, 175, 205)
    frames = [_two_people(red, blue)] * 10
    reference = identity.appearance(frames[0], left)
    kps = np.stack([left, left, right, right, right, left, left, left, left, left])
    status = np.full(10, FrameStatus.DETECTED, np.uint8)
    looks = np.stack([identity.appearance(f, k) for f, k in zip(frames, kps)])
    # covering blue at 2-4 finds nobody; covering red at 5.. finds blue on the right
    det = _Scripted([None, None, None, right, right])

    def source(first, last):
        for t in range(first, last + 1):
            yield t, frames[t], (1.0, 1.0)

    before = kps.copy()
    results = identity.recover_runs([(2, 4)], kps, status, np.ones(10, bool), reference, source, lambda: det,
                                    fps=24.0, looks=looks)
    r = results[0]
    assert r.other_seen and not r.kept and r.hidden == [2, 3, 4] and not r.recovered
    assert (status[2:5] == FrameStatus.MISSING).all() and (status[5:] == FrameStatus.DETECTED).all()
    np.testing.assert_array_equal(kps[5:], before[5:])
    assert len(det.seen) == 5  # stopped once blue was found twice
    # without the signatures only the followed person is searched for: the run is kept
    kps, status = before.copy(), np.full(10, FrameStatus.DETECTED, np.uint8)
    det = _Scripted([None, None, None, right, right])
    r = identity.recover_runs([(2, 4)], kps, status, np.ones(10, bool), reference, source, lambda: det, fps=24.0)[0]
    assert r.kept and not r.other_seen and (status == FrameStatus.DETECTED).all()


def test_recover_runs_stops_looking_after_fruitless_runs():
    red, blue = (200, 20, 20), (20, 20, 200)
    left = _pose(40, 100, 35, 65)
    frames = [_two_people(blue, blue)] * 60
    reference = identity.appearance(_two_people(red, blue), left)
    kps = np.stack([left] * 60)
    status = np.full(60, FrameStatus.DETECTED, np.uint8)
    det = _Scripted([None] * 60)  # nobody else, ever
    calls = []

    def source(first, last):
        calls.append(first)
        for t in range(first, last + 1):
            yield t, frames[t], (1.0, 1.0)

    runs = [(10 * i, 10 * i + 5) for i in range(6)]
    results = identity.recover_runs(runs, kps, status, np.ones(60, bool), reference, source, lambda: det, fps=24.0)
    assert all(r.kept for r in results)
    assert calls == [0, 10, 20]  # the last three runs are kept without decoding or detecting anything


def test_recover_runs_needs_more_than_one_sighting():
    red, blue = (200, 20, 20), (20, 20, 200)
    left, right = _pose(40, 100, 35, 65), _pose(40, 100, 175, 205)
    frames = [_two_people(red, blue)] * 120
    reference = identity.appearance(frames[0], left)
    kps = np.stack([right] * 120)
    status = np.full(120, FrameStatus.DETECTED, np.uint8)
    det = _Scripted([left] + [None] * 119)  # the red person seen once, then never again

    def source(first, last):
        for t in range(first, last + 1):
            yield t, frames[t], (1.0, 1.0)

    results = identity.recover_runs([(0, 119)], kps, status, np.ones(120, bool), reference, source, lambda: det,
                                    fps=24.0)
    assert results[0].kept and (status == FrameStatus.DETECTED).all()
    assert len(det.seen) == identity.PROBE_SECONDS * 24


def test_bridge_hidden_interpolates_short_stretches_only():
    def arrays():
        kps = np.zeros((20, layout.NUM_KEYPOINTS, 3), np.float32)
        kps[..., 0] = np.arange(20)[:, None] * 10.0
        kps[..., 2] = 1.0
        kps[:, 5] = (np.nan, np.nan, 0.0)  # a keypoint never seen stays missing
        status = np.full(20, FrameStatus.DETECTED, np.uint8)
        status[6:12] = FrameStatus.MISSING
        kps[6:12] = (np.nan, np.nan, 0.0)
        return kps, status

    run = identity.RunResult(8, 19, recovered=[12, 15, 18], hidden=[9])
    kps, status = arrays()
    assert identity.bridge_hidden(kps, status, [run], max_frames=6) == 6
    np.testing.assert_allclose(kps[6:12, 0, 0], [60, 70, 80, 90, 100, 110])
    assert (status[6:12] == FrameStatus.INTERPOLATED).all()
    assert np.isnan(kps[6:12, 5, :2]).all() and (kps[6:12, 5, 2] == 0).all()
    kps, status = arrays()
    assert identity.bridge_hidden(kps, status, [run], max_frames=5) == 0  # too long: held later
    assert (status[6:12] == FrameStatus.MISSING).all()
    kept = identity.RunResult(8, 19, kept=True)
    assert identity.bridge_hidden(*arrays(), [kept], max_frames=6) == 0


# ------------------------------------------------------------------ end to end on real frames
def _recolour_skirt(rgb: np.ndarray) -> np.ndarray:
    """The red skirt of tests/data/dance_short.mp4 turned blue (saturated reds only)."""
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    hue = hsv[..., 0].astype(int)
    red = (hsv[..., 1] > 120) & ((hue < 8) | (hue > 172)) & (hsv[..., 2] > 60)
    hsv[..., 0] = np.where(red, (hue + 110) % 180, hue).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


@pytest.fixture(scope="module")
def crossing(data_dir, tmp_path_factory):
    """Two dancers crossing, made of the real dance: A (red skirt) walks right to left behind B (blue
    skirt, mirrored, 8 frames ahead) walking left to right; 72 frames (the clip played back and forth)."""
    mediapipe = pytest.importorskip("mediapipe")
    frames = list(open_video(data_dir / "dance_short.mp4"))
    n = len(frames)
    order = [i % (2 * n - 2) for i in range(72)]
    order = [o if o < n else 2 * n - 2 - o for o in order]
    h, w = frames[0].shape[:2]
    width = int(w * 2.2) // 2 * 2
    note_graph_created()  # this process now runs a mediapipe graph: pose workers must not be forked from it
    with mediapipe.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as seg:
        masks = [seg.process(f).segmentation_mask[..., None].astype(np.float32) for f in frames]
    back = np.empty((h, width, 3), np.float32)
    back[:] = np.linspace(150, 230, width)[None, :, None]
    path = tmp_path_factory.mktemp("crossing") / "crossing.mp4"
    with VideoWriter(path, 24, (width, h)) as out:
        for t in range(72):
            canvas = back.copy()
            a, b = order[t], order[(t + 8) % 72]
            xa = round((width - w) * (1 - t / 71))
            xb = round((width - w) * t / 71)
            for img, m, x in ((frames[a], masks[a], xa), (_recolour_skirt(frames[b])[:, ::-1], masks[b][:, ::-1], xb)):
                canvas[:, x:x + w] = m * img + (1 - m) * canvas[:, x:x + w]
            out.write(canvas.astype(np.uint8))
    return path, width


@pytest.fixture(scope="module")
def crossing_poses(crossing):
    return extract_poses(crossing[0], progress=False)


def test_crossing_when_the_tracker_comes_back_by_itself(crossing):
    """Detecting every other frame, mediapipe's tracker follows the dancer in front through the crossing
    and comes back to the first dancer after it. She was hidden meanwhile (nobody like her is found with
    the other covered), but the other dancer is found apart from her right after: the run is taken as
    the other dancer, and the first one is interpolated across it."""
    path, width = crossing
    seq = extract_poses(path, progress=False, detect_every=2)
    runs = seq.meta["identity_runs"]
    assert len(runs) == 1 and runs[0]["other_seen"] and not runs[0]["kept"] and runs[0]["hidden"] >= 6
    x = seq.keypoints[:, B["neck"], 0]
    step = np.diff(x)
    assert np.all(step < 0) and step.min() > 3 * np.median(step), step
    assert x[-1] < width / 3


def test_crossing_dancers_are_told_apart_by_their_clothes(crossing, crossing_poses):
    path, width = crossing
    neck = B["neck"]
    plain = extract_poses(path, progress=False, follow_identity=False)
    assert plain.meta["identity_runs"] == []
    # the tracker slides onto the dancer in front and ends on the right with her
    assert plain.keypoints[-1, neck, 0] > width / 2

    seq = crossing_poses
    runs = seq.meta["identity_runs"]
    assert len(runs) == 1 and not runs[0]["kept"] and runs[0]["recovered"] >= 4 and runs[0]["hidden"] >= 4
    first, last = runs[0]["frames"]
    assert 20 <= first <= 32 and last == 71
    x = seq.keypoints[:, neck, 0]
    # the same poses up to the crossing; behind the other dancer she is interpolated, walking on to the left
    # at her pace (no freeze, no jump), and found again after the crossing
    np.testing.assert_allclose(x[:20], plain.keypoints[:20, neck, 0], atol=1.0)
    assert x[-1] < width / 3
    step = np.diff(x)
    assert np.all(step < 0) and step.min() > 3 * np.median(step), step
    assert (seq.status[first:] == FrameStatus.INTERPOLATED).sum() >= 15
    assert not (seq.status == FrameStatus.HELD).any()


def test_one_dancer_is_left_alone(data_dir, dance_short_poses):
    plain = extract_poses(data_dir / "dance_short.mp4", progress=False, follow_identity=False)
    assert dance_short_poses.meta["identity_runs"] == []
    np.testing.assert_array_equal(dance_short_poses.keypoints, plain.keypoints)


def test_one_dancer_changing_colour_is_kept(data_dir, tmp_path):
    """The same dancer whose skirt turns blue half-way: her look changes, but nobody else is there."""
    path = tmp_path / "recoloured.mp4"
    frames = list(open_video(data_dir / "dance_short.mp4"))
    with VideoWriter(path, 24, frames[0].shape[1::-1]) as out:
        for t, f in enumerate(frames + frames[::-1]):
            out.write(_recolour_skirt(f) if t >= 24 else f)
    seq = extract_poses(path, progress=False, smoothing=None)
    plain = extract_poses(path, progress=False, smoothing=None, follow_identity=False)
    assert [r["kept"] for r in seq.meta["identity_runs"]] == [True]
    np.testing.assert_array_equal(seq.keypoints, plain.keypoints)


def test_pose_show_reports_the_switch(crossing_poses, tmp_path, capsys):
    from animate.cli import main
    from pose.io import save_sequence

    path = tmp_path / "crossing.json"
    save_sequence(crossing_poses, path)
    assert main(["pose", "show", str(path)]) == 0
    out = capsys.readouterr().out
    run = crossing_poses.meta["identity_runs"][0]
    assert (f"frames {run['frames'][0]}-71: the tracker took someone else; the first person was found again in "
            f"{run['recovered']} detections, {run['hidden']} hidden") in out


@pytest.mark.parametrize("follow", [True, False])
def test_config_switch_reaches_the_extraction(follow, data_dir, monkeypatch):
    import pose.extract
    from animate.api import Animator

    seen = {}

    def fake_extract(path, **kwargs):
        seen.update(kwargs)
        raise RuntimeError("stop here")

    monkeypatch.setattr(pose.extract, "extract_poses", fake_extract)
    with Animator(**{"pose.follow_identity": follow}) as animator, pytest.raises(RuntimeError, match="stop here"):
        animator.load_driving(data_dir / "dance_short.mp4", progress=False)
    assert seen["follow_identity"] is follow


def test_pose_extract_cli_switch(crossing, tmp_path):
    from animate.cli import main
    from pose.io import load_sequence

    out = tmp_path / "plain.json"
    assert main(["-q", "pose", "extract", str(crossing[0]), "-o", str(out), "--no-follow-identity"]) == 0
    seq = load_sequence(out)
    assert seq.meta["identity_runs"] == [] and len(seq) == 72
    assert seq.keypoints[-1, B["neck"], 0] > crossing[1] / 2  # went on with the dancer in front


def test_appearance_of_people_partly_out_of_the_frame():
    """Keypoints past the frame's edges (a dancer half out of the picture) give a signature of the part in
    view, or None when too little of it is; never an error."""
    img, kp = _figure((200, 20, 20), (20, 20, 200))
    rng = np.random.default_rng(0)
    for _ in range(200):
        moved = kp.copy()
        moved[:, 0] += rng.uniform(-150, 150)
        moved[:, 1] += rng.uniform(-250, 250)
        sig = identity.appearance(img, moved)
        assert sig is None or (sig.shape == (identity.SIGNATURE_SIZE,) and sig.sum() == pytest.approx(1.0))
        covered = identity.cover_person(img, moved)
        assert covered.shape == img.shape
    far = kp.copy()
    far[:, :2] += 10_000
    assert identity.appearance(img, far) is None
    np.testing.assert_array_equal(identity.cover_person(img, far), img)


def test_no_histograms_when_nothing_will_compare_them(data_dir, monkeypatch):
    """With the check off (or inside a detection window, or for skeleton videos) the detections' looks are
    not computed at all: the detector loop pays nothing for them."""
    import pose.extract
    from pose.detectors import create_detector

    def fail(*args, **kwargs):
        raise AssertionError("appearance computed although nobody compares it")

    monkeypatch.setattr(pose.extract, "appearance", fail)
    with create_detector("mediapipe") as det:  # a ready detector runs in this process, so the patch applies
        seq = extract_poses(data_dir / "dance_short.mp4", detector=det, progress=False, follow_identity=False)
    assert len(seq) == 24 and seq.meta["identity_runs"] == []
