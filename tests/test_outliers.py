"""Rejecting detections whose body size jumps (pose.outliers), on real poses and a real half-hidden dancer."""

from __future__ import annotations

import re

import numpy as np
import pytest

from animate.cli import main as cli_main
from animate.config import load_config
from pose import layout
from pose.errors import ConfigError
from pose.extract import extract_poses
from pose.outliers import implausible_frames, relative_scales
from pose.sequence import FrameStatus
from pose.video import VideoWriter, open_video


def _scaled(kps: np.ndarray, factor: float) -> np.ndarray:
    """``kps`` scaled by ``factor`` about the neck (scores unchanged)."""
    out = kps.copy()
    neck = kps[layout.B["neck"], :2]
    out[:, :2] = neck + factor * (kps[:, :2] - neck)
    return out


def test_real_dance_is_steady(dance_short_poses):
    kps = dance_short_poses.keypoints
    scales = relative_scales(kps, np.ones(len(kps), bool))
    assert np.all(np.abs(scales - 1.0) < 0.1)
    assert not implausible_frames(kps, np.ones(len(kps), bool), dance_short_poses.fps).any()


def test_collapsed_frame_is_rejected_and_a_zoom_is_kept(dance_short_poses):
    kps = dance_short_poses.keypoints.copy()
    every = np.ones(len(kps), bool)
    collapsed = kps.copy()
    collapsed[12] = _scaled(kps[12], 0.45)
    assert np.flatnonzero(implausible_frames(collapsed, every, 24.0)).tolist() == [12]
    grown = kps.copy()
    grown[12] = _scaled(kps[12], 1.8)
    assert np.flatnonzero(implausible_frames(grown, every, 24.0)).tolist() == [12]
    # the dancer walks towards the camera: 1.8x larger in one second, never a jump
    zoom = np.stack([_scaled(k, 1.0 + 0.8 * t / (len(kps) - 1)) for t, k in enumerate(kps)])
    assert not implausible_frames(zoom, every, 24.0).any()
    # a frame the detector did not find is neither judged nor compared with
    missed = every.copy()
    missed[12] = False
    assert not implausible_frames(collapsed, missed, 24.0).any()


def test_frames_that_cannot_be_judged_are_kept(dance_short_poses):
    kps = dance_short_poses.keypoints.copy()
    kps[12] = _scaled(kps[12], 0.4)
    kps[12, :, 2] = 0.0
    kps[12, [layout.B["neck"], layout.B["right_shoulder"], layout.B["left_shoulder"]], 2] = 0.9  # 2 bones
    every = np.ones(len(kps), bool)
    assert np.isnan(relative_scales(kps, every)[12])
    assert not implausible_frames(kps, every, 24.0).any()
    few = _scaled(kps[:4], 1.0)  # 3 neighbours only
    few[1] = _scaled(few[1], 0.4)
    assert not implausible_frames(few, np.ones(4, bool), 24.0).any()
    with pytest.raises(ConfigError, match="max_jump"):
        implausible_frames(kps, every, 24.0, max_jump=1.0)


@pytest.fixture(scope="module")
def half_hidden_clip(tmp_path_factory, data_dir):
    """tests/data/dance_short.mp4 with the left 220 of 360 columns painted over in frames 8-15: only her
    left arm and side show, and mediapipe returns a collapsed skeleton for several of them."""
    path = tmp_path_factory.mktemp("outliers") / "half_hidden.mp4"
    with open_video(data_dir / "dance_short.mp4") as src, VideoWriter(path, 24, (360, 640)) as out:
        for i, frame in enumerate(src):
            if 8 <= i < 16:
                frame = frame.copy()
                frame[:, :220] = frame[0, 0]
            out.write(frame)
    return path


def test_half_hidden_dancer_is_held_not_collapsed(half_hidden_clip):
    common = {"detect_every": 1, "workers": 1, "smoothing": None, "progress": False}
    raw = extract_poses(half_hidden_clip, fill_gaps=False, max_scale_jump=None, **common)
    scales = relative_scales(raw.keypoints, raw.status == FrameStatus.DETECTED)
    collapsed = np.flatnonzero(scales < 0.6)
    assert len(collapsed) >= 2 and set(collapsed) <= set(range(8, 16))  # the failure this module is for

    seq = extract_poses(half_hidden_clip, **common)
    assert set(collapsed) <= set(seq.meta["rejected_frames"]) <= set(range(8, 16))
    assert seq.meta["max_scale_jump"] == 1.6
    assert np.all(seq.status[collapsed] != FrameStatus.DETECTED)
    # the filled frames have the dancer's size of the frames around them
    filled = relative_scales(seq.keypoints, np.ones(len(seq), bool))
    assert np.all(np.abs(filled[np.isfinite(filled)] - 1.0) < 0.25)


def test_max_scale_jump_in_config_and_cli(tmp_path, half_hidden_clip, capsys):
    yaml = tmp_path / "c.yaml"
    yaml.write_text("pose:\n  max_scale_jump: null\n")
    assert load_config(yaml).pose.max_scale_jump is None
    yaml.write_text("pose:\n  max_scale_jump: 1.0\n")
    with pytest.raises(ConfigError, match=r"pose\.max_scale_jump.*> 1"):
        load_config(yaml)
    out = tmp_path / "p.npz"
    assert cli_main(["pose", "extract", str(half_hidden_clip), "-o", str(out), "--max-scale-jump", "0",
                     "--detect-every", "1", "--no-smoothing"]) == 0
    from pose.io import load_sequence

    assert load_sequence(out).meta["rejected_frames"] == []
    assert cli_main(["pose", "extract", str(half_hidden_clip), "-o", str(out), "--overwrite",
                     "--detect-every", "1"]) == 0
    capsys.readouterr()
    assert cli_main(["pose", "show", str(out)]) == 0
    assert re.search(r"rejected: +\d+ implausible detections \(frames 1\d", capsys.readouterr().out)
    with pytest.raises(SystemExit):
        cli_main(["pose", "extract", str(half_hidden_clip), "-o", str(out), "--max-scale-jump", "0.5"])
