"""A dancer too small in a wide video for mediapipe's person detector (pose.person_search), on the real
dance clip shrunk into a 1280x720 scene, and the window detector behind it."""

from __future__ import annotations

import itertools
import logging
import re

import cv2
import numpy as np
import pytest

from pose import layout
from pose.detectors.base import CroppedDetector, Detector, create_detector
from pose.errors import DetectorError, NoPersonError
from pose.extract import extract_poses
from pose.person_search import FollowingDetector, _starts, spread_order
from pose.sequence import PoseFrame
from pose.video import VideoWriter, open_video

SCALE = 0.3  # the 640 px tall clip becomes 192 px tall: the dancer is about 27 % of the frame's height
TOP, LEFT = 264, 600


@pytest.fixture(scope="module")
def wide_stage(tmp_path_factory, data_dir):
    """tests/data/dance_short.mp4 shrunk into a 1280x720 frame (edges repeated), and the clip's own poses
    mapped into it."""
    path = tmp_path_factory.mktemp("stage") / "stage.mp4"
    size = (round(360 * SCALE), round(640 * SCALE))
    with open_video(data_dir / "dance_short.mp4") as src, VideoWriter(path, 24, (1280, 720)) as out:
        for frame in src:
            small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
            out.write(cv2.copyMakeBorder(small, TOP, 720 - TOP - size[1], LEFT, 1280 - LEFT - size[0],
                                         cv2.BORDER_REPLICATE))
    truth = extract_poses(data_dir / "dance_short.mp4", detect_every=1, workers=1, fill_gaps=False,
                          smoothing=None, progress=False)
    return path, truth.transformed(np.array([[SCALE, 0, LEFT], [0, SCALE, TOP]]), 1280, 720)


def test_small_dancer_is_found_in_a_window(wide_stage, capsys):
    path, truth = wide_stage
    with pytest.raises(NoPersonError):  # what the detector alone sees
        extract_poses(path, detect_every=1, workers=1, progress=False, find_small_person=False)
    seq = extract_poses(path, detect_every=2, workers=2, fill_gaps=False, smoothing=None, progress=False)
    assert seq.detection_rate() == 1.0 and (seq.width, seq.height) == (1280, 720)
    x0, y0, x1, y1 = seq.meta["detector_options"]["crop"]
    assert x1 - x0 < 0.5 and y1 - y0 < 0.8 and x0 < LEFT / 1280 and y0 < TOP / 720
    from animate.cli import main as cli_main
    from pose.io import save_sequence

    save_sequence(seq, path.with_suffix(".json"))
    capsys.readouterr()
    assert cli_main(["pose", "show", str(path.with_suffix(".json"))]) == 0
    assert "a small person found by a search, detected inside it" in capsys.readouterr().out
    body = slice(0, 14)  # nose, neck, arms, legs
    err = np.linalg.norm(seq.keypoints[:, body, :2] - truth.keypoints[:, body, :2], axis=-1)
    assert np.nanmedian(err) < 0.015 * 640 * SCALE


def test_small_dancer_crossing_the_frame_is_followed(tmp_path, data_dir, wide_stage):
    """The same dancer moving from the left edge to the right edge within the second: a window around every
    place she was found would be the whole frame; she is followed from keyframe to keyframe instead."""
    _, truth_mid = wide_stage
    path = tmp_path / "crossing.mp4"
    w, h = round(360 * SCALE), round(640 * SCALE)
    lefts = np.linspace(0, 1280 - w, 24).astype(int)
    with open_video(data_dir / "dance_short.mp4") as src, VideoWriter(path, 24, (1280, 720)) as out:
        for frame, left in zip(src, lefts):
            small = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
            out.write(cv2.copyMakeBorder(small, TOP, 720 - TOP - h, left, 1280 - left - w, cv2.BORDER_REPLICATE))
    seq = extract_poses(path, detect_every=2, workers=2, fill_gaps=False, smoothing=None, progress=False)
    assert seq.meta["detector_options"].get("follow") is True and "crop" not in seq.meta["detector_options"]
    assert seq.detection_rate() == 1.0
    truth = truth_mid.keypoints[:, :14, :2] + np.stack([lefts - LEFT, np.zeros(24)], axis=1)[:, None, :]
    err = np.linalg.norm(seq.keypoints[:, :14, :2] - truth, axis=-1)
    assert np.nanmedian(err) < 0.015 * 640 * SCALE


class _Centre(Detector):
    """Puts the nose and neck at fixed spots of whatever image it gets; remembers the image size."""

    name = "centre"

    def __call__(self, rgb):
        self.seen = rgb.shape[:2]
        kps = np.zeros((layout.NUM_KEYPOINTS, 3), np.float32)
        kps[0] = (rgb.shape[1] / 2, rgb.shape[0] / 2, 1.0)
        kps[1] = (0.0, 0.0, 1.0)
        return PoseFrame(kps, rgb.shape[1], rgb.shape[0])


def test_cropped_detector_maps_back_to_the_whole_image():
    det = CroppedDetector(_Centre(), (0.25, 0.5, 0.75, 1.0))
    found = det(np.zeros((200, 400, 3), np.uint8))
    assert det.inner.seen == (100, 200) and (found.width, found.height) == (400, 200)
    assert found.keypoints[0, :2].tolist() == [200.0, 150.0] and found.keypoints[1, :2].tolist() == [100.0, 100.0]
    with pytest.raises(DetectorError, match="crop"):
        CroppedDetector(_Centre(), (0.5, 0.0, 0.4, 1.0))
    with pytest.raises(DetectorError, match="crop"):
        create_detector("mediapipe", crop=[0, 0, 1])
    with create_detector("mediapipe", static_image_mode=True, crop=[0.1, 0.2, 0.6, 0.9]) as wrapped:
        assert isinstance(wrapped, CroppedDetector) and wrapped.options()["crop"] == [0.1, 0.2, 0.6, 0.9]
    with create_detector("mediapipe", follow=True) as following:
        assert isinstance(following, FollowingDetector) and following.tracks_across_frames
        assert following.options()["follow"] is True and following.options()["static_image_mode"] is True


@pytest.mark.parametrize("length, side", [(100, 100), (100, 40), (1280, 432), (7, 3)])
def test_tiles_cover_the_axis_with_half_overlap(length, side):
    starts = _starts(length, side)
    covered = np.zeros(length, bool)
    for s in starts:
        covered[s:s + side] = True
    assert covered.all() and starts[0] == 0 and starts[-1] + side == max(length, side)
    assert all(0 < b - a <= max(1, side // 2) for a, b in itertools.pairwise(starts))


def test_a_dancer_who_enters_late_is_not_searched_for_again(tmp_path, data_dir, caplog):
    """Missing from most frames but not small (she walks in late): the search finds her at her full size
    and no second pass runs."""
    path = tmp_path / "late.mp4"
    with open_video(data_dir / "dance_short.mp4") as src, VideoWriter(path, 24, (360, 640)) as out:
        for i, frame in enumerate(src):
            out.write(frame if i >= 16 else np.full_like(frame, 120))
    caplog.set_level(logging.INFO, logger="pose.person_search")
    seq = extract_poses(path, detect_every=1, workers=1, fill_gaps=False, smoothing=None, progress=False)
    assert seq.detection_rate() == pytest.approx(8 / 24)
    assert re.search(r"found the person in [1-9] of \d searched frames", caplog.text)  # the search ran ...
    assert not {"crop", "follow"} & set(seq.meta["detector_options"])  # ... and saw no small person
    assert "detecting again" not in caplog.text


def test_search_order_meets_a_late_dancer_early():
    assert spread_order([0, 5, 9, 14, 18, 23]) == [14, 0, 23, 5, 9, 18]
    assert sorted(spread_order(list(range(7)))) == list(range(7)) and spread_order([]) == []


def test_pck_of_a_small_dancer_uses_the_window_that_found_her(wide_stage):
    """The evaluator re-detects poses on generated frames; for a small dancer it needs the detection window
    the driving extraction used (the real clip stands in for a perfect generator here)."""
    from animate.evaluation import compare_videos

    path, _ = wide_stage
    seq = extract_poses(path, detect_every=1, workers=1, progress=False)
    window = {"crop": seq.meta["detector_options"]["crop"]}
    common = {"driving_poses": seq, "baseline": False, "warp": False, "progress": False, "height": 360}
    assert compare_videos(path, path, detector_options=window, **common)["generated"]["pck"] > 0.95
    assert compare_videos(path, path, **common)["generated"]["pck"] < 0.1  # the whole frame: nobody found


def test_an_arm_on_a_tile_is_not_a_dancer(tmp_path, data_dir, caplog):
    """A QA pass drove a character with frames of ``no_person.png`` (a hand): the search "found" a whole
    person on a tile in every frame, and the run wrote a crumpled animation with every frame counted as
    detected. A tile's pose now needs a confident upright torso, as for the reference."""
    import shutil

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(6):
        shutil.copy(data_dir / "no_person.png", frames / f"f_{i}.png")
    caplog.set_level(logging.INFO, logger="pose.person_search")
    with pytest.raises(NoPersonError, match="no person detected in any of the 6 frames"):
        extract_poses(frames, workers=1, progress=False)
    assert "found the person" not in caplog.text
    with pytest.raises(NoPersonError):
        extract_poses(data_dir / "no_person.png", workers=1, progress=False)
