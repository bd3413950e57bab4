"""animate.api.Animator on real data: arrays in, frames out, bad inputs, atomic output, audio.

A tiny test renderer ("stamp") is registered here so the API is checked independently of the real
renderers; the end-to-end test at the bottom uses the real puppet renderer when it is installed.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from animate.api import Animator, canvas_size, fit_image, frame_border, hold_missing, resample
from animate.config import load_config
from pose.errors import ConfigError, InputError, NoPersonError, OutputError
from pose.sequence import FrameStatus, PoseFrame, PoseSequence
from tests.helpers import StampRenderer

NECK = 1




@pytest.fixture(scope="module")
def detector():
    from pose.detectors import create_detector

    det = create_detector("mediapipe")
    yield det
    det.close()


@pytest.fixture(scope="module")
def driving(detector, data_dir) -> PoseSequence:
    """6 frames at 24 fps from real detections on frames 0, 100, 200 of the dance (540x960)."""
    from pose.video import read_image

    frames = [detector(read_image(data_dir / f"dance_{i:03d}.jpg")) for i in (0, 100, 200)]
    assert all(f.has_person for f in frames)
    return PoseSequence.from_frames([frames[i % 3] for i in range(6)], fps=24.0, meta={"source": "test"})


@pytest.fixture(scope="module")
def reference(data_dir) -> np.ndarray:
    from pose.video import read_image

    return read_image(data_dir / "ref" / "musepose_ref.png")  # 704x1216


@pytest.fixture(scope="module")
def reference_pose(detector, reference) -> PoseFrame:
    pose = detector(reference)
    assert pose.has_person
    return pose


def stamp(**kw) -> Animator:
    return Animator(renderer="stamp", smoothing=False, **kw)


# ------------------------------------------------------------------------------------------------
# canvas and fitting
# ------------------------------------------------------------------------------------------------
def test_canvas_follows_reference_aspect_by_default():
    cfg = load_config(None)
    assert canvas_size(704, 1216, cfg) == (448, 768)   # 768 * 704 / 1216 = 444.6 -> multiple of 8
    assert canvas_size(1920, 1080, cfg) == (1368, 768)  # landscape reference, landscape canvas
    assert canvas_size(704, 1216, cfg, (512, 512)) == (512, 512)
    with pytest.raises(InputError, match="even"):
        canvas_size(704, 1216, cfg, (511, 512))


def test_fit_image_pads_without_distortion():
    img = np.zeros((100, 200, 3), np.uint8)
    img[:, :100] = (255, 0, 0)
    img[:, 100:] = (0, 0, 255)
    canvas, m = fit_image(img, 100, 100, pad_color=(0, 255, 0))
    assert canvas.shape == (100, 100, 3)
    assert (canvas[:25] == (0, 255, 0)).all() and (canvas[75:] == (0, 255, 0)).all()  # letterbox
    assert (canvas[30:70, :45] == (255, 0, 0)).all() and (canvas[30:70, 55:] == (0, 0, 255)).all()
    np.testing.assert_allclose(m, [[0.5, 0, 0], [0, 0.5, 25]])
    # default pad colour: median of the border
    canvas2, _ = fit_image(np.full((10, 20, 3), 7, np.uint8), 20, 20)
    assert (canvas2 == 7).all()


def test_fit_image_padding_continues_the_background(data_dir):
    """The letterbox runs on the wall and floor of the reference: not its thin black frame line, not the
    feet that touch its bottom edge (tests/data/ref/anyone-2.png has both)."""
    img = np.zeros((300, 200, 3), np.uint8)
    img[:200] = (100, 80, 160)                 # wall
    img[200:] = (200, 200, 200)                # floor
    img[:, :1] = img[:, -1:] = 0               # a 1-px black frame line on the sides
    img[150:, 80:95] = img[150:, 110:125] = (40, 40, 40)  # two legs down to the bottom edge
    canvas, m = fit_image(img, 400, 300)       # pads left and right
    x0 = int(m[0, 2])
    left, right = canvas[:, :x0 - 1], canvas[:, x0 + 200 + 1:]
    assert np.abs(left[:190].astype(int) - (100, 80, 160)).max() <= 2
    assert np.abs(right[210:].astype(int) - (200, 200, 200)).max() <= 2  # the wall-to-floor step is kept
    tall, m2 = fit_image(img, 200, 500)        # pads top and bottom
    y0 = int(m2[1, 2])
    assert np.abs(tall[:y0].astype(int) - (100, 80, 160)).max() <= 2
    assert np.abs(tall[y0 + 300:, 10:190].astype(int) - (200, 200, 200)).max() <= 2  # no legs run on
    from pose.video import read_image

    real = read_image(data_dir / "ref" / "anyone-2.png")
    canvas3, m3 = fit_image(real, 384, 640)
    bottom = canvas3[int(m3[1, 2]) + round(real.shape[0] * m3[1, 1]):]
    assert bottom.size and np.abs(bottom.reshape(-1, 3).astype(int) - np.median(real[-40:, :60].reshape(-1, 3), 0)).max() < 40


def test_frame_border_finds_thin_edge_lines_only(data_dir):
    """The real references' frame lines are found (anyone-1: white 1 px at the bottom, 2 px on the right;
    anyone-2: black 1 px left and right); pictures that run to their edges have none."""
    from pose.video import read_image

    assert frame_border(read_image(data_dir / "ref" / "anyone-1.png")) == (0, 1, 0, 2)
    assert frame_border(read_image(data_dir / "ref" / "anyone-2.png")) == (0, 0, 1, 1)
    for name in ("ref/anyone-3.png", "ref/anyone-5.png", "ref/musepose_ref.png", "dance_000.jpg", "no_person.png"):
        assert frame_border(read_image(data_dir / name)) == (0, 0, 0, 0), name
    wall = np.full((100, 80, 3), 250, np.uint8)  # a white wall to the edge with a white line: nothing to trim
    wall[-1] = 255
    assert frame_border(wall) == (0, 0, 0, 0)


def test_framed_reference_is_trimmed_and_poses_stay_on_the_character(tmp_path, reference, reference_pose):
    """A reference with a frame line gives the canvas of the same picture without it, and a pose or a mask
    given in the framed image's pixels lands where it did."""
    framed = np.pad(reference, ((3, 2), (0, 4), (0, 0)), constant_values=255)  # white lines top, bottom, right
    framed[:, -4:] = (0, 0, 0)                                                  # ... black on the right
    shifted = reference_pose.transformed(np.array([[1.0, 0, 0], [0, 1.0, 3.0]]), *framed.shape[1::-1])
    animator = stamp()
    plain = animator.prepare_reference(reference, reference_pose=reference_pose, size=(448, 768))
    trimmed = animator.prepare_reference(framed, reference_pose=shifted, size=(448, 768))
    np.testing.assert_array_equal(trimmed.image, plain.image)
    np.testing.assert_allclose(trimmed.pose.keypoints, plain.pose.keypoints, atol=1e-6, equal_nan=True)
    mask = np.zeros(framed.shape[:2], np.uint8)
    mask[303:903, 200:500] = 1
    with_mask = animator.prepare_reference(framed, reference_pose=shifted, size=(448, 768), mask=mask)
    unframed = animator.prepare_reference(reference, reference_pose=reference_pose, size=(448, 768),
                                          mask=mask[3:-2, :-4])
    np.testing.assert_array_equal(with_mask.mask, unframed.mask)
    assert framed.shape == (reference.shape[0] + 5, reference.shape[1] + 4, 3)  # the input is not modified


# ------------------------------------------------------------------------------------------------
# pose handling
# ------------------------------------------------------------------------------------------------
def test_hold_missing_counts_and_holds(driving):
    kps = driving.keypoints.copy()
    status = driving.status.copy()
    kps[[0, 3, 4]] = np.nan
    kps[[0, 3, 4], :, 2] = 0
    status[[0, 3, 4]] = FrameStatus.MISSING
    seq = driving.copy(kps, status=status)
    held, n = hold_missing(seq)
    assert n == 3
    assert list(held.status[[0, 3, 4]]) == [FrameStatus.HELD] * 3
    np.testing.assert_array_equal(held.keypoints[0], driving.keypoints[1])  # leading gap: next pose
    np.testing.assert_array_equal(held.keypoints[3], driving.keypoints[2])  # later gap: previous pose
    np.testing.assert_array_equal(held.keypoints[4], driving.keypoints[2])
    empty = driving.copy(np.full_like(kps, np.nan))
    empty.keypoints[..., 2] = 0
    with pytest.raises(NoPersonError, match="no person found in any"):
        hold_missing(empty)


def test_resample_halves_frames(driving):
    half = resample(driving, 12.0)
    assert len(half) == 3 and half.fps == 12.0
    np.testing.assert_array_equal(half.keypoints, driving.keypoints[[0, 2, 4]])
    # every output time within the clip: 6 frames at 24 fps (0.25 s) hold 6 at 23.976 (floor made 5), 7 at 25
    assert len(resample(driving, 23.976)) == 6 and len(resample(driving, 25.0)) == 7
    assert len(resample(driving, 5.0)) == 2 and len(resample(driving, 1.0)) == 1


# ------------------------------------------------------------------------------------------------
# stream / animate on arrays
# ------------------------------------------------------------------------------------------------
def test_stream_numpy_reference_and_sequence(driving, reference, reference_pose):
    animator = stamp()
    frames = list(animator.stream(reference, driving, reference_pose=reference_pose, progress=False))
    assert len(frames) == 6
    assert all(f.shape == (768, 448, 3) and f.dtype == np.uint8 for f in frames)
    stats = animator.last_stats
    assert stats.frames == 6 and stats.fps == 24.0 and stats.canvas == (448, 768)
    assert stats.detected == 6 and stats.held == 0 and stats.reference_pose == "given"
    # the renderer got the reference fitted on the canvas and the poses retargeted onto it
    renderer = StampRenderer.instances[-1]
    ref_canvas, ref_pose, _ = renderer.prepared
    assert (ref_pose.width, ref_pose.height) == (448, 768)
    expected, _ = fit_image(reference, 448, 768)
    np.testing.assert_array_equal(ref_canvas, expected)
    poses = animator.last_poses
    assert (poses.width, poses.height) == (448, 768) and len(poses) == 6
    # retargeted neck near the character's neck on the first frame (the retarget anchor)
    assert np.linalg.norm(poses.keypoints[0, NECK, :2] - ref_pose.keypoints[NECK, :2]) < 0.05 * 768
    # the stamp is where the pose is: frames differ where the neck moved
    assert not np.array_equal(frames[0], frames[1])


def test_driving_frames_without_person_are_held_and_counted(driving, reference, reference_pose, caplog):
    kps = driving.keypoints.copy()
    kps[[2, 3]] = np.nan
    kps[[2, 3], :, 2] = 0
    status = driving.status.copy()
    status[[2, 3]] = FrameStatus.MISSING
    gappy = driving.copy(kps, status=status)
    animator = stamp()
    with caplog.at_level("WARNING", logger="animate.api"):
        frames = list(animator.stream(reference, gappy, reference_pose=reference_pose, progress=False))
    assert len(frames) == 6
    assert animator.last_stats.held == 2 and animator.last_stats.detected == 4
    assert "no person in 2 of the 6 frames (0 interpolated, 2 held" in caplog.text
    np.testing.assert_array_equal(frames[2], frames[1])  # held: same pose as the frame before
    np.testing.assert_array_equal(frames[3], frames[1])


def test_frames_between_detector_keyframes_are_not_misses(driving, reference, reference_pose, caplog):
    status = driving.status.copy()
    status[1::2] = FrameStatus.INTERPOLATED  # what extract_poses(detect_every=2) produces
    status[4] = FrameStatus.INTERPOLATED  # a keyframe without a person, filled by fill_gaps: a real miss
    strided = driving.copy(status=status, meta={**driving.meta, "detect_every": 2})
    animator = stamp()
    with caplog.at_level("WARNING", logger="animate.api"):
        list(animator.stream(reference, strided, reference_pose=reference_pose, progress=False))
    stats = animator.last_stats
    assert (stats.detected, stats.interpolated, stats.held) == (5, 1, 0)
    assert "no person in 1 of the 3 frames the detector ran on (1 interpolated" in caplog.text  # not "of 6"


def test_landscape_reference_with_portrait_driving(driving, reference, reference_pose):
    wide = np.concatenate([reference, reference], axis=1)  # 1408x1216 landscape character sheet
    # pose of the left copy, in the wide image's pixels
    pose_wide = PoseFrame(reference_pose.keypoints, 1408, 1216)
    animator = stamp()
    frames = list(animator.stream(wide, driving, reference_pose=pose_wide, progress=False))
    assert frames[0].shape == (768, 888, 3)  # 768 * 1408 / 1216 = 889.3 -> 888
    # explicit portrait size: the landscape reference is letterboxed, nothing distorted
    prepared = animator.prepare_reference(wide, size=(320, 640), reference_pose=pose_wide)
    s = 320 / 1408
    np.testing.assert_allclose(prepared.matrix[0, 0], s, rtol=0.01)
    np.testing.assert_allclose(prepared.matrix[1, 1], s, rtol=0.01)  # same scale on both axes
    y0, y1 = int(prepared.matrix[1, 2]), int(prepared.matrix[1, 2] + 1216 * s)
    assert 150 < y0 and y1 < 490  # content in the middle band, padding above and below
    assert (prepared.image[:y0] == prepared.image[0]).all() and (prepared.image[y1 + 1:] == prepared.image[-1]).all()
    np.testing.assert_allclose(
        prepared.pose.keypoints[NECK, :2],
        reference_pose.keypoints[NECK, :2] * s + prepared.matrix[:, 2], atol=1.0,
    )


def test_reference_pose_file_and_canvas_sized_pose(tmp_path, driving, reference, reference_pose):
    from pose.io import save_pose_frame

    path = tmp_path / "ref_pose.json"
    save_pose_frame(reference_pose, path)
    animator = stamp()
    from_file = animator.prepare_reference(reference, reference_pose=path)
    np.testing.assert_allclose(
        from_file.pose.keypoints[NECK, :2], reference_pose.transformed(from_file.matrix).keypoints[NECK, :2], atol=1e-3
    )
    on_canvas = from_file.pose
    again = animator.prepare_reference(reference, reference_pose=on_canvas)  # already canvas-sized: kept
    np.testing.assert_allclose(again.pose.keypoints, on_canvas.keypoints, equal_nan=True)


def test_preview_is_side_by_side(driving, reference, reference_pose):
    animator = stamp(size=(256, 384))
    frames = list(animator.stream(reference, driving, reference_pose=reference_pose, preview=True, progress=False))
    f = frames[0]
    assert f.shape == (384, 768, 3)
    ref_panel, skeleton, result = f[:, :256], f[:, 256:512], f[:, 512:]
    expected_ref, _ = fit_image(reference, 256, 384)
    np.testing.assert_array_equal(ref_panel, expected_ref)
    assert skeleton.mean() < 40 and skeleton.max() > 200  # coloured limbs on black
    assert result.std() > 5 and not np.array_equal(result, skeleton)  # the rendered frame, not a blank panel
    assert animator.last_stats.size == (768, 384)


def test_range_and_fps(driving, reference, reference_pose):
    animator = stamp()
    frames = list(animator.stream(reference, driving, start=1, end=5, fps=12, reference_pose=reference_pose,
                                  progress=False))
    assert len(frames) == 2 and animator.last_stats.fps == 12.0
    with pytest.raises(InputError, match="invalid frame range"):
        animator.stream(reference, driving, start=4, end=2, reference_pose=reference_pose)
    with pytest.raises(InputError, match="no frames in the range"):
        animator.stream(reference, driving, start=10, reference_pose=reference_pose)


def test_animate_writes_video_from_arrays(tmp_path, driving, reference, reference_pose):
    from pose.video import open_video

    animator = stamp(size=(256, 384))
    out = animator.animate(reference, driving, tmp_path / "o.mp4", reference_pose=reference_pose, progress=False)
    with open_video(out) as video:
        frames = list(video)
    assert len(frames) == 6 and frames[0].shape == (384, 256, 3)
    assert animator.last_stats.output == str(out)
    assert os.listdir(tmp_path) == ["o.mp4"]


def test_existing_output_rejected_before_any_work(tmp_path, driving, reference, reference_pose):
    out = tmp_path / "exists.mp4"
    out.write_bytes(b"old")
    animator = stamp()
    with pytest.raises(OutputError, match="already exists"):
        animator.animate(reference, driving, out, reference_pose=reference_pose, progress=False)
    assert animator._renderer is None  # failed before creating the renderer
    assert out.read_bytes() == b"old"


def test_unwritable_output(tmp_path, driving, reference, reference_pose):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError):
        stamp().animate(reference, driving, blocker / "o.mp4", reference_pose=reference_pose, progress=False)


def test_interrupt_mid_render_leaves_no_file(tmp_path, driving, reference, reference_pose):
    animator = stamp(renderer_options={"interrupt_after": 2}, size=(256, 384))
    with pytest.raises(KeyboardInterrupt):
        animator.animate(reference, driving, tmp_path / "o.mp4", reference_pose=reference_pose, progress=False)
    assert StampRenderer.instances[-1].rendered == 2
    assert os.listdir(tmp_path) == []


def test_bad_inputs(tmp_path, driving, reference, reference_pose):
    animator = stamp()
    with pytest.raises(InputError, match="^reference .*missing.png does not exist"):
        animator.stream(tmp_path / "missing.png", driving, reference_pose=reference_pose)
    not_an_image = tmp_path / "mask.png"
    not_an_image.write_text("not an image")
    with pytest.raises(InputError, match="^mask .*mask.png cannot be decoded"):  # the error names the input's role
        animator.stream(reference, driving, reference_pose=reference_pose, mask=not_an_image)
    with pytest.raises(InputError, match="driving must be"):
        animator.stream(reference, 42, reference_pose=reference_pose)
    with pytest.raises(InputError, match="reference must be"):
        animator.stream(42, driving, reference_pose=reference_pose)
    no_body = PoseFrame.empty(704, 1216)
    with pytest.raises(NoPersonError, match="fix the pose file"):
        animator.stream(reference, driving, reference_pose=no_body)
    with pytest.raises(InputError, match="mask"):
        animator.stream(reference, driving, reference_pose=reference_pose, mask=np.ones((10, 10), np.uint8))


def test_mask_is_fitted_with_the_reference(driving, reference, reference_pose):
    mask = np.zeros(reference.shape[:2], np.uint8)
    mask[300:900, 200:500] = 1
    prepared = stamp().prepare_reference(reference, reference_pose=reference_pose, mask=mask)
    assert prepared.mask.shape == (768, 448) and set(np.unique(prepared.mask)) == {0, 255}
    frac = (prepared.mask > 0).mean()
    assert abs(frac - mask.mean()) < 0.02  # same area fraction: same fit as the image


def test_rgba_cutout_transparency_becomes_the_mask(tmp_path, reference, reference_pose):
    import cv2

    alpha = np.zeros(reference.shape[:2], np.uint8)
    alpha[300:900, 200:500] = 255
    rgba = np.dstack([reference, alpha])
    path = tmp_path / "cutout.png"
    cv2.imwrite(str(path), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    for source in (path, rgba):
        prepared = stamp().prepare_reference(source, reference_pose=reference_pose)
        assert prepared.mask is not None
        assert abs((prepared.mask > 0).mean() - (alpha > 0).mean()) < 0.02
    opaque = np.dstack([reference, np.full(reference.shape[:2], 255, np.uint8)])
    assert stamp().prepare_reference(opaque, reference_pose=reference_pose).mask is None


# ------------------------------------------------------------------------------------------------
# with the real pose stage (pose.extract) and the real puppet renderer
# ------------------------------------------------------------------------------------------------
def test_reference_without_person_explains_reference_pose(data_dir, driving):
    pytest.importorskip("pose.extract")
    with pytest.raises(NoPersonError, match="--reference-pose"):
        stamp().stream(data_dir / "no_person.png", driving)


@pytest.fixture(scope="module")
def dance_with_audio(tmp_path_factory, data_dir) -> Path:
    """tests/data/dance_short.mp4 (24 frames, 24 fps) with a 1 s, 440 Hz sine track muxed in."""
    from pose.video import ffmpeg_exe

    path = tmp_path_factory.mktemp("drv") / "dance_audio.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-i", str(data_dir / "dance_short.mp4"),
         "-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-map", "0:v", "-map", "1:a",
         "-c:v", "copy", "-c:a", "aac", "-shortest", str(path)],
        check=True, capture_output=True,
    )
    return path


def test_video_driving_keeps_audio(tmp_path, dance_with_audio, reference, reference_pose):
    pytest.importorskip("pose.extract")
    from animate.writers import has_audio
    from pose.video import open_video

    animator = stamp(size=(256, 384))
    out = animator.animate(reference, dance_with_audio, tmp_path / "a.mp4", start=6, end=12,
                           reference_pose=reference_pose, progress=False)
    assert has_audio(out)
    with open_video(out) as video:
        assert len(list(video)) == 6
    assert animator.last_stats.frames == 6


def test_end_to_end_puppet_on_real_clip(tmp_path, data_dir):
    pytest.importorskip("pose.extract")
    pytest.importorskip("animate.puppet.renderer")
    from pose.video import open_video

    animator = Animator(renderer="puppet", size=(256, 448))
    out = animator.animate(data_dir / "ref" / "musepose_ref.png", data_dir / "dance_short.mp4",
                           tmp_path / "puppet.mp4", end=4, progress=False)
    with open_video(out) as video:
        frames = np.stack(list(video))
    assert frames.shape == (4, 448, 256, 3)
    assert frames.std() > 10  # a picture, not a flat frame
    assert animator.last_stats.detected + animator.last_stats.interpolated + animator.last_stats.held == 4


def test_pose_file_and_skeleton_video_drive(tmp_path, data_dir, driving, reference, reference_pose):
    pytest.importorskip("pose.extract")
    from pose.io import save_sequence

    pose_file = save_sequence(driving, tmp_path / "drv.json")
    animator = stamp(size=(256, 384))
    frames = list(animator.stream(reference, pose_file, end=4, reference_pose=reference_pose, progress=False))
    assert len(frames) == 4 and animator.last_stats.detected == 4
    # Moore-AnimateAnyone's rendered skeleton video (12 frames, 30 fps) drives too
    skeleton = data_dir / "skeleton" / "anyone-video-1_kps_short.mp4"
    frames = list(animator.stream(reference, skeleton, reference_pose=reference_pose, progress=False))
    assert len(frames) == 12 and animator.last_stats.fps == 30.0
    assert animator.last_stats.held < 12


def test_cpu_path_does_not_import_torch(driving, reference, reference_pose):
    code = (
        "import sys, numpy as np; import animate.api, animate.writers, animate.evaluation, animate.config; "
        "from animate.api import fit_image; fit_image(np.zeros((8, 8, 3), np.uint8), 4, 4); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    import sys

    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parent.parent)


def test_renderer_option_it_does_not_take_is_a_config_error():
    from animate.renderer import create_renderer

    with pytest.raises(ConfigError, match="invalid option for renderer 'stamp'.*background"):
        create_renderer("stamp", background="green")
    assert create_renderer("stamp", interrupt_after=3).interrupt_after == 3


# ------------------------------------------------------------------------------------------------
# misuse of one animator, odd inputs (found by a QA pass of the API)
# ------------------------------------------------------------------------------------------------
def test_pending_stream_refuses_to_render_another_character(driving, reference, reference_pose):
    """One renderer per animator: a stream left pending while a later job prepared another character
    raises instead of drawing that character with its own poses."""
    animator = stamp(size=(256, 384))
    first = animator.stream(reference, driving, reference_pose=reference_pose, progress=False)
    second = animator.stream(reference[::-1].copy(), driving, reference_pose=reference_pose, progress=False)
    with pytest.raises(RuntimeError, match="left pending while a later stream"):
        next(first)
    assert len(list(second)) == len(driving)  # the latest stream renders
    third = animator.stream(reference, driving, reference_pose=reference_pose, progress=False)
    next(third)
    list(animator.stream(reference, driving, reference_pose=reference_pose, progress=False))
    with pytest.raises(RuntimeError, match="left pending"):  # replaced half-way through, too
        next(third)
    fresh = animator.stream(reference, driving, reference_pose=reference_pose, progress=False)
    animator.close()
    with pytest.raises(RuntimeError, match="closed before the stream"):
        next(fresh)


def test_stream_consumed_in_turn_on_one_animator_matches_fresh_animators(driving, reference, reference_pose):
    animator = stamp(size=(256, 384))
    flipped = reference[::-1].copy()
    a = list(animator.stream(reference, driving, reference_pose=reference_pose, progress=False))
    b = list(animator.stream(flipped, driving, reference_pose=reference_pose, progress=False))
    fresh = list(stamp(size=(256, 384)).stream(flipped, driving, reference_pose=reference_pose, progress=False))
    assert all(np.array_equal(x, y) for x, y in zip(b, fresh)) and not np.array_equal(a[0], b[0])


def test_driving_sequence_without_any_person_fails_when_loaded(driving):
    empty = driving.copy(np.full_like(driving.keypoints, np.nan), status=np.full(len(driving), FrameStatus.MISSING))
    with pytest.raises(NoPersonError, match="no person in any of the 6 frames of driving PoseSequence"):
        stamp().load_driving(empty)


def test_size_argument_forms(driving, reference, reference_pose):
    config = load_config(None)
    assert canvas_size(100, 200, config, "256x384") == (256, 384)
    assert canvas_size(100, 200, config, (np.int64(256), np.int64(384))) == (256, 384)
    assert canvas_size(100, 200, config, np.array([256, 384])) == (256, 384)
    assert canvas_size(100, 200, config, (256.0, 384.0)) == (256, 384)
    for bad in ((256.5, 384), (256, 384, 3), ("a", "b"), (True, 384)):
        with pytest.raises(InputError, match="output size must be"):
            canvas_size(100, 200, config, bad)
    with pytest.raises(InputError, match="too small for the puppet renderer"):
        Animator(smoothing=False).stream(reference, driving, reference_pose=reference_pose, size=(16, 16))


def test_pil_images_of_every_depth_read_like_the_file(tmp_path):
    from PIL import Image

    from animate.api import alpha_mask, load_rgb

    gray = (np.arange(64 * 48, dtype=np.uint32).reshape(64, 48) * 21).astype(np.uint16)  # 0..64491
    path = tmp_path / "gray16.png"
    Image.fromarray(gray).save(path)
    from_file = load_rgb(path)
    assert 100 < from_file.mean() < 150
    np.testing.assert_array_equal(load_rgb(Image.open(path)), from_file)  # opened as mode I or I;16
    np.testing.assert_array_equal(load_rgb(Image.fromarray(gray)), from_file)
    as_float = Image.fromarray(gray.astype(np.float32) / 65535.0)  # mode F, in [0, 1]
    assert np.abs(load_rgb(as_float).astype(int) - from_file).max() <= 1
    with pytest.raises(InputError, match=r"values go up to 255; divide it by 255"):
        load_rgb(np.full((8, 8, 3), 255.0, np.float32))
    np.testing.assert_array_equal(load_rgb(np.full((8, 8, 3), 1.02, np.float32)), 255)  # resampling overshoot

    palette = Image.new("P", (40, 40), 0)
    palette.putpalette([255, 255, 255, 200, 30, 30] + [0] * 762)
    palette.paste(1, (10, 5, 30, 35))
    palette.info["transparency"] = 0
    palette.save(tmp_path / "cut.png", transparency=0)
    from_path, from_pil = alpha_mask(tmp_path / "cut.png"), alpha_mask(Image.open(tmp_path / "cut.png"))
    assert from_path is not None and from_pil is not None
    np.testing.assert_array_equal(from_pil, from_path)
    assert from_pil[20, 20] == 255 and from_pil[2, 2] == 0


def test_failed_run_leaves_no_new_output_folder(tmp_path, driving, reference, reference_pose):
    target = tmp_path / "new" / "deeper" / "o.mp4"
    with pytest.raises(InputError):
        stamp().animate(tmp_path / "missing.png", driving, target, reference_pose=reference_pose, progress=False)
    assert os.listdir(tmp_path) == []
    (tmp_path / "kept").mkdir()
    with pytest.raises(KeyboardInterrupt):
        stamp(renderer_options={"interrupt_after": 2}, size=(256, 384)).animate(
            reference, driving, tmp_path / "kept" / "sub" / "o.mp4", reference_pose=reference_pose, progress=False)
    assert os.listdir(tmp_path) == ["kept"] and os.listdir(tmp_path / "kept") == []  # existing folders stay
    path = stamp(size=(256, 384)).animate(reference, driving, target, reference_pose=reference_pose, progress=False)
    assert path.is_file()


def test_output_size_and_rate_have_upper_limits(driving, reference, reference_pose):
    with pytest.raises(ConfigError, match="at most 4096"):
        Animator(size=(8192, 8192))
    with pytest.raises(ConfigError, match="output.height"):
        Animator(**{"output.height": 100000})
    with pytest.raises(ConfigError, match="output.fps"):
        Animator(fps=1000)
    animator = stamp()
    with pytest.raises(InputError, match="too large"):
        animator.stream(reference, driving, reference_pose=reference_pose, size=(20000, 20000))
    for bad in (float("inf"), float("nan"), 0, -1, 1000, "fast"):
        with pytest.raises(InputError, match=r"fps \(--fps\) must be"):
            animator.stream(reference, driving, reference_pose=reference_pose, fps=bad)
    fast = driving.copy()
    fast.fps = 960.0
    with pytest.raises(InputError, match="runs at 960 fps"):
        animator.stream(reference, fast, reference_pose=reference_pose)
    assert len(list(animator.stream(reference, fast, reference_pose=reference_pose, fps=240, progress=False)))


def test_folder_reference_and_empty_mask_files_are_named(tmp_path, driving, reference, reference_pose):
    from PIL import Image

    with pytest.raises(InputError, match="is a folder; give an image file"):
        stamp().stream(tmp_path, driving, reference_pose=reference_pose)
    black = tmp_path / "black.png"
    Image.fromarray(np.zeros(reference.shape[:2], np.uint8)).save(black)
    with pytest.raises(InputError, match=r"mask .*black.png is empty"):
        stamp().stream(reference, driving, reference_pose=reference_pose, mask=black)


def test_output_that_is_an_input_is_refused_even_with_overwrite(tmp_path, data_dir):
    """``-o`` naming the driving video, the reference, the mask or the reference pose (or a link to one)
    would replace that input: refused before any work, with or without overwrite."""
    import shutil

    drv, ref = tmp_path / "drv.mp4", tmp_path / "ref.png"
    shutil.copy(data_dir / "dance_short.mp4", drv)
    shutil.copy(data_dir / "ref" / "musepose_ref.png", ref)
    (tmp_path / "alias.mp4").symlink_to(drv)
    before = {p: p.read_bytes() for p in (drv, ref)}
    animator = stamp(size=(128, 224))
    for out, kw in ((drv, {}), (tmp_path / "alias.mp4", {}), (str(drv), {"overwrite": False}),
                    (tmp_path / "m.mp4", {"mask": tmp_path / "m.mp4"}),
                    (tmp_path / "p.json", {"reference_pose": str(tmp_path / "p.json")})):
        kw = {"overwrite": True, **kw}
        with pytest.raises(OutputError, match="is the input"):
            animator.animate(ref, drv, out, progress=False, **kw)
    with pytest.raises(OutputError, match=r"output .*ref.png is the input .*ref.png"):
        animator.animate(ref, drv, ref, overwrite=True, progress=False)
    assert animator._renderer is None  # refused before any work
    assert {p: p.read_bytes() for p in (drv, ref)} == before
    assert sorted(os.listdir(tmp_path)) == ["alias.mp4", "drv.mp4", "ref.png"]
    from PIL import Image

    gif = tmp_path / "bg.gif"  # a background picture named only in the config is an input too
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(gif)
    puppet = Animator(renderer_options={"background": str(gif)}, size=(128, 224))
    with pytest.raises(OutputError, match=r"output .*bg.gif is the input"):
        puppet.animate(ref, drv, gif, overwrite=True, progress=False)
    assert puppet._renderer is None and Image.open(gif).size == (32, 32)


def _audio_hz(path: Path, start: float, length: float, rate: int = 8000) -> float:
    """Dominant frequency of ``path``'s audio from ``start`` seconds, over ``length`` seconds."""
    from animate.writers import ffmpeg_exe

    res = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-vn", "-ac", "1", "-ar", str(rate), "-f",
                          "s16le", "-"], capture_output=True, check=True)
    samples = np.frombuffer(res.stdout, np.int16).astype(np.float32)[int(start * rate):int((start + length) * rate)]
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1.0 / rate)[np.argmax(spectrum)])


def test_audio_that_runs_longer_or_starts_before_the_picture(tmp_path, data_dir, reference, reference_pose):
    """Two driving files a QA pass made: (a) the 1 s dance with 2 s of audio: the header's duration (the
    audio's) doubled the frame count, the packet count was thrown away as 'interlaced', and the run failed on
    'no decodable frame from index 24'; (b) the picture starting 0.5 s into the audio: the output's sound
    was 0.5 s late, and a worker's seek landed 12 frames early."""
    pytest.importorskip("pose.extract")
    from animate.writers import ffmpeg_exe
    from pose.extract import extract_poses
    from pose.video import open_video

    tone = "aevalsrc=sin(2*PI*if(lt(t\\,0.75)\\,440\\,880)*t):s=44100:d=2"  # 440 Hz, then 880 Hz from 0.75 s
    long_audio, late = tmp_path / "long_audio.mp4", tmp_path / "late.mp4"
    clip = str(data_dir / "dance_short.mp4")
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", clip, "-f", "lavfi", "-i", tone, "-map", "0:v",
                    "-map", "1:a", "-c:v", "copy", "-c:a", "aac", str(long_audio)], check=True)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-itsoffset", "0.5", "-i", clip, "-f", "lavfi", "-i", tone,
                    "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-t", "1.5", str(late)], check=True)
    assert len(extract_poses(long_audio, detect_every=3, progress=False)) == 24
    with open_video(late, start=12) as a, open_video(clip, start=12) as b:
        assert np.abs(next(iter(a)).astype(int) - next(iter(b))).mean() < 2  # the same frame 12
    out = stamp(size=(256, 384)).animate(reference, late, tmp_path / "o.mp4", reference_pose=reference_pose,
                                         progress=False)
    with open_video(out) as video:
        assert len(list(video)) == 24
    # frame 0 is shown at 0.5 s in the source: the 880 Hz part (from 0.75 s) starts 0.25 s into the output
    assert abs(_audio_hz(out, 0.05, 0.15) - 440) < 30 and abs(_audio_hz(out, 0.35, 0.4) - 880) < 30


def test_poses_extracted_once_keep_their_video_audio(tmp_path, data_dir, reference, reference_pose):
    """The batch pattern: ``load_driving`` once, then ``animate`` each character with the PoseSequence. A QA
    pass found every such video silent; the audio now comes from the video the poses were extracted from, at
    the frames kept (a slice moves ``meta["start"]``), and not when the sequence strides over frames."""
    pytest.importorskip("pose.extract")
    from animate.writers import ffmpeg_exe, has_audio

    tone = "aevalsrc=sin(2*PI*if(lt(t\\,0.75)\\,440\\,880)*t):s=44100:d=1"  # 440 Hz, then 880 Hz from 0.75 s
    video = tmp_path / "tone.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(data_dir / "dance_short.mp4"), "-f", "lavfi", "-i",
                    tone, "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", str(video)], check=True)
    animator = stamp(size=(256, 384))
    poses = animator.load_driving(video, progress=False)
    assert poses.meta["source"] == str(video) and poses.meta["start"] == 0
    out = animator.animate(reference, poses.slice(12), tmp_path / "a.mp4", reference_pose=reference_pose,
                           progress=False)
    assert has_audio(out)  # frame 12 is 0.5 s in: the 880 Hz part starts 0.25 s into the output
    assert abs(_audio_hz(out, 0.02, 0.18) - 440) < 30 and abs(_audio_hz(out, 0.3, 0.2) - 880) < 30
    out = animator.animate(reference, poses, tmp_path / "b.mp4", start=18, reference_pose=reference_pose,
                           progress=False)
    assert abs(_audio_hz(out, 0.02, 0.2) - 880) < 30  # start= moves it too
    out = animator.animate(reference, poses.slice(0, None, 2), tmp_path / "c.mp4", reference_pose=reference_pose,
                           progress=False)
    assert not has_audio(out)
    with_config = Animator(renderer="stamp", smoothing=False, size=(256, 384), **{"output.keep_audio": False})
    assert not has_audio(with_config.animate(reference, poses, tmp_path / "d.mp4", reference_pose=reference_pose,
                                             progress=False))


def test_automatic_canvas_keeps_to_the_size_limit():
    """A 7:1 panorama at the default height made a 5376x768 video, past the 4096 px limit a given size keeps."""
    from animate.config import MAX_OUTPUT_SIDE

    assert canvas_size(7 * 768, 768, load_config(None)) == (4096, 584)
    assert canvas_size(1920, 1080, load_config(None, height=4096)) == (4096, 2304)
    assert canvas_size(768, 7 * 768, load_config(None)) == (112, 768)  # tall: the height rules, as before
    with pytest.raises(InputError, match="output.multiple_of 8192"):
        canvas_size(1000, 1000, load_config(None, **{"output.multiple_of": 8192}))
    assert max(canvas_size(12345, 17, load_config(None))) <= MAX_OUTPUT_SIDE


def test_a_hand_built_config_is_checked_when_the_animator_is_built():
    from animate.config import AnimateConfig, OutputConfig, RendererConfig

    with pytest.raises(ConfigError, match=r"AnimateConfig given: config field 'output.fps'"):
        Animator(AnimateConfig(output=OutputConfig(fps=-5, size=(256, 384))))
    with pytest.raises(ConfigError, match=r"'renderer.name' must be one of"):
        Animator(AnimateConfig(renderer=RendererConfig(name="pupet")))
    assert Animator(AnimateConfig(output=OutputConfig(fps=12.0))).config.output.fps == 12.0


def test_short_import_and_stats_of_a_failed_run(tmp_path, reference, reference_pose, driving):
    import importlib
    import sys

    import animate

    assert animate.Animator is Animator and "Animator" in dir(animate)
    with pytest.raises(AttributeError):
        animate.Nothing  # noqa: B018
    assert importlib.import_module("animate.api").Animator is Animator and "Animator" in sys.modules["animate"].__all__
    animator = stamp(size=(256, 384))
    animator.animate(reference, driving, tmp_path / "a.mp4", reference_pose=reference_pose, progress=False)
    assert animator.last_stats.frames == len(driving)
    with pytest.raises(InputError):
        animator.animate(reference, driving, tmp_path / "b.mp4", start=99, reference_pose=reference_pose,
                         progress=False)
    assert animator.last_stats is None and animator.last_poses is None


def test_preview_keeps_to_the_size_limit(tmp_path, reference, reference_pose, driving):
    """--preview tripled a size checked alone: --size 2000x2000 wrote a 6000x2000 video (12288x4096 from
    4096x4096, minutes a frame). A given size is refused before any work; an automatic canvas shrinks."""
    animator = stamp()
    with pytest.raises(InputError, match=r"three 2000x2000 canvases side by side, 6000 px wide.*--size 1360x1360"):
        animator.animate(reference, driving, tmp_path / "p.mp4", size=(2000, 2000), preview=True, progress=False)
    assert animator.last_stats is None and list(tmp_path.iterdir()) == []
    assert canvas_size(1920, 1080, load_config(None), max_width=4096 // 3) == (1360, 760)
    assert canvas_size(1920, 1080, load_config(None)) == (1368, 768)
    wide = np.concatenate([reference] * 4, axis=1)  # 2816x1216: a 1776x768 canvas alone, 5328 px as a preview
    frames = stamp().stream(wide, driving, preview=True, end=1, progress=False,
                            reference_pose=reference_pose.transformed(np.eye(2, 3), 2816, 1216))
    assert next(iter(frames)).shape[:2] == (584, 3 * 1360)


def test_gif_and_slow_frame_rates(tmp_path, reference, reference_pose, driving):
    """A QA pass wrote a 240 fps GIF that played 2.4x slow (its delays are whole hundredths of a second) and
    a 0.0001 fps video of one frame lasting hours."""
    from pose.video import GIF_MAX_FPS, VideoWriter

    animator = stamp(size=(128, 192))
    with pytest.raises(InputError, match=r"--fps\) 60 is too fast for a GIF.*at most 50 fps"):
        animator.animate(reference, driving, tmp_path / "a.gif", fps=60, reference_pose=reference_pose, progress=False)
    for slow in (0.5, 1e-9):
        with pytest.raises(InputError, match=r"from 1 to 240"):
            animator.animate(reference, driving, tmp_path / "a.mp4", fps=slow, reference_pose=reference_pose,
                             progress=False)
    with pytest.raises(ConfigError, match="output.fps"):
        Animator(fps=0.5)
    assert list(tmp_path.iterdir()) == []
    fast = driving.copy(fps=120.0)  # 6 frames at 120 fps: the GIF takes every third, at 40 fps
    out = animator.animate(reference, fast, tmp_path / "b.gif", reference_pose=reference_pose, progress=False)
    assert animator.last_stats.fps == 40.0 and animator.last_stats.frames == 2 and out.is_file()
    with pytest.raises(OutputError, match=r"at 60 fps would play slow"):
        VideoWriter(tmp_path / "c.gif", GIF_MAX_FPS + 10, (64, 64))


def test_a_bad_pose_file_fails_before_the_character_is_prepared(tmp_path, data_dir):
    """The driving pose file was read only after the reference had been detected, segmented and rigged."""
    from pose.errors import PoseFileError

    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "posedrive.pose_sequence", "frames": [')
    with pytest.raises(PoseFileError, match="bad.json"):  # not the reference's NoPersonError
        stamp(size=(128, 192)).animate(data_dir / "no_person.png", bad, tmp_path / "o.mp4", progress=False)


def test_skeleton_detector_config_still_detects_the_character(data_dir):
    """`pose.detector: skeleton` (driving by rendered skeleton videos) made every reference fail with 'no person
    detected in reference ... pass --reference-pose': the character is a picture, found by the default detector."""
    prepared = Animator(detector="skeleton", size=(256, 384)).prepare_reference(data_dir / "ref" / "musepose_ref.png")
    assert prepared.pose.has_person and prepared.pose_source == "detected"


def test_a_huge_reference_is_detected_on_a_shrunk_copy(data_dir, reference, caplog):
    """A 6000x8000 photo took 23 s and 1.9 GB: every search step resized it at full size. Above
    REFERENCE_DETECT_SIDE it is detected on a shrunk copy, and the pose comes back in its pixels."""
    import cv2

    from animate.api import REFERENCE_DETECT_SIDE

    big = cv2.resize(reference, (reference.shape[1] * 2, reference.shape[0] * 2), interpolation=cv2.INTER_CUBIC)
    assert max(big.shape[:2]) > REFERENCE_DETECT_SIDE
    animator = Animator(size=(256, 448))
    caplog.set_level("INFO", logger="animate.api")
    large, small = animator.prepare_reference(big), animator.prepare_reference(reference)
    assert "detected on a 1186x2048 copy" in caplog.text and "look soft" not in caplog.text
    caplog.clear()
    tiny = cv2.resize(reference, (88, 152), interpolation=cv2.INTER_AREA)
    animator.prepare_reference(tiny)
    assert "(88x152) is enlarged 2.9x onto the 256x448 canvas and will look soft" in caplog.text
    body = slice(0, 14)
    err = np.linalg.norm(large.pose.keypoints[body, :2] - small.pose.keypoints[body, :2], axis=1)
    assert np.nanmedian(err) < 0.01 * 448  # the same pose on the same canvas


def test_a_cut_out_file_is_read_once_for_picture_and_mask(tmp_path, reference, reference_pose, monkeypatch):
    """A 48 MP PNG was decoded twice (once for the picture, once for its transparency)."""
    import cv2

    import pose.video

    rgba = np.dstack([reference, np.zeros(reference.shape[:2], np.uint8)])
    rgba[200:1100, 150:550, 3] = 255
    path = tmp_path / "cut.png"
    cv2.imwrite(str(path), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    calls = []
    real = pose.video.decode_image
    monkeypatch.setattr(pose.video, "decode_image", lambda *a, **k: (calls.append(a[0]), real(*a, **k))[1])
    animator = stamp(size=(256, 448))
    from_file = animator.prepare_reference(path, reference_pose=reference_pose)
    from_array = animator.prepare_reference(rgba, reference_pose=reference_pose)
    assert len(calls) == 1 and from_file.mask is not None
    np.testing.assert_array_equal(from_file.mask, from_array.mask)
    np.testing.assert_array_equal(from_file.image, from_array.image)
