"""``posedrive animate`` and ``posedrive eval`` subcommands (cli_animate / cli_eval)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pytest

import tests.helpers  # noqa: F401  (registers the "stamp" test renderer)
from animate import cli_animate, cli_eval
from pose.errors import ConfigError, NoPersonError, OutputError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="posedrive")
    sub = parser.add_subparsers(dest="command", required=True)
    cli_animate.add_parser(sub)
    cli_eval.add_parser(sub)
    return parser


def run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    args.progress = False
    return args.func(args)


def test_animate_parses_every_option():
    args = _parser().parse_args([
        "animate", "ref.png", "drv.mp4", "-o", "o.mp4", "--size", "512x768", "--fps", "12", "--start", "3",
        "--end", "9", "--renderer", "diffusion", "--config", "c.yaml", "--no-smoothing", "--reference-pose",
        "p.json", "--mask", "m.png", "--preview", "--overwrite", "--weights", "w/",
    ])
    assert (args.size, args.fps, args.start, args.end) == ((512, 768), 12.0, 3, 9)
    assert args.renderer == "diffusion" and args.no_smoothing and args.preview and args.overwrite
    assert args.reference_pose == "p.json" and args.mask == "m.png" and args.weights == "w/"
    assert args.func is cli_animate.run_animate


@pytest.mark.parametrize("bad", [["--size", "511x768"], ["--size", "big"], ["--fps", "0"], ["--start", "-1"]])
def test_animate_rejects_bad_flags(bad):
    with pytest.raises(SystemExit) as info:
        _parser().parse_args(["animate", "r.png", "d.mp4", "-o", "o.mp4", *bad])
    assert info.value.code == 2


def test_animate_end_to_end_with_stats(tmp_path, data_dir):
    pytest.importorskip("pose.extract")
    from pose.video import open_video

    out, stats = tmp_path / "o.mp4", tmp_path / "stats.json"
    rc = run(["animate", str(data_dir / "ref" / "musepose_ref.png"), str(data_dir / "dance_short.mp4"),
              "-o", str(out), "--size", "192x320", "--end", "4", "--renderer", "stamp", "--preview",
              "--stats", str(stats)])
    assert rc == 0
    with open_video(out) as video:
        frames = list(video)
    assert len(frames) == 4 and frames[0].shape == (320, 576, 3)  # preview: 3 panels of 192
    s = json.loads(stats.read_text())
    assert s["frames"] == 4 and s["renderer"] == "stamp" and s["size"] == [576, 320]
    # existing output without --overwrite
    with pytest.raises(OutputError, match="--overwrite"):
        run(["animate", str(data_dir / "ref" / "musepose_ref.png"), str(data_dir / "dance_short.mp4"),
             "-o", str(out), "--renderer", "stamp"])


def test_reference_without_person_message(tmp_path, data_dir):
    pytest.importorskip("pose.extract")
    with pytest.raises(NoPersonError) as info:
        run(["animate", str(data_dir / "no_person.png"), str(data_dir / "dance_short.mp4"),
             "-o", str(tmp_path / "o.mp4"), "--renderer", "stamp"])
    assert "--reference-pose" in str(info.value) and "no_person.png" in str(info.value)
    assert os.listdir(tmp_path) == []


def test_config_error_names_field_and_file(tmp_path, data_dir):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("output:\n  fps: fast\n")
    with pytest.raises(ConfigError) as info:
        run(["animate", str(data_dir / "ref" / "musepose_ref.png"), str(data_dir / "dance_short.mp4"),
             "-o", str(tmp_path / "o.mp4"), "--config", str(cfg)])
    assert "'output.fps'" in str(info.value) and "bad.yaml" in str(info.value)


def test_main_prints_one_line_and_exits_2(tmp_path, data_dir, capsys):
    cli = pytest.importorskip("animate.cli", exc_type=ImportError)
    out = tmp_path / "o.mp4"
    out.write_bytes(b"x")
    rc = cli.main(["-q", "animate", str(data_dir / "ref" / "musepose_ref.png"), str(data_dir / "dance_short.mp4"),
                   "-o", str(out), "--renderer", "stamp"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "already exists" in err


def test_eval_subcommand(tmp_path, data_dir, capsys):
    pytest.importorskip("pose.extract")
    out_dir = tmp_path / "ev"
    rc = run(["eval", str(data_dir / "dance_short.mp4"), "--frames", "4", "--out-dir", str(out_dir),
              "--renderer", "stamp", "--no-pck", "--height", "256"])
    assert rc == 0
    report = json.loads((out_dir / "report.json").read_text())
    assert report["frames"] == 4 and report["size"] == [144, 256]
    assert 0.0 < report["generated"]["ssim"] <= 1.0 and np.isfinite(report["generated"]["psnr"])
    assert "skipped" in report["lpips"]
    printed = capsys.readouterr().out
    assert "ssim" in printed and "first-frame baseline" in printed


def test_eval_ignore_option(tmp_path, data_dir, capsys):
    pytest.importorskip("pose.extract")
    out_dir = tmp_path / "ev"
    rc = run(["eval", str(data_dir / "dance_short.mp4"), "--frames", "3", "--out-dir", str(out_dir),
              "--renderer", "stamp", "--no-pck", "--height", "256", "--ignore", "0,0.875,1,1",
              "--ignore", "0.9,0,1,0.1"])
    assert rc == 0
    report = json.loads((out_dir / "report.json").read_text())
    assert report["settings"]["ignored_regions"] == [[0, 0.875, 1, 1], [0.9, 0, 1, 0.1]]
    assert "of each frame scored; ignored: 0,0.875,1,1 0.9,0,1,0.1" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        run(["eval", str(data_dir / "dance_short.mp4"), "--ignore", "0,0.9,1"])
    assert exc.value.code == 2 and "region must be X0,Y0,X1,Y1" in capsys.readouterr().err


def test_window_and_root_motion_reach_the_driving_detection_only(tmp_path, data_dir):
    """``--window`` restricts the driving video's detection, not the character's (tryon_model.png stands at
    0.46-0.83 of her image's width, across the window's edge, and is still found whole)."""
    from animate.api import Animator
    from animate.config import load_config

    ref = Path(__file__).parents[1] / "examples" / "assets" / "tryon_model.png"
    out, stats = tmp_path / "w.mp4", tmp_path / "w.json"
    rc = run(["animate", str(ref), str(data_dir / "dance_short.mp4"), "-o", str(out), "--size", "192x320",
              "--end", "6", "--renderer", "stamp", "--window", "0,0,0.7,1", "--root-motion", "none",
              "--stats", str(stats)])
    assert rc == 0 and json.loads(stats.read_text())["frames"] == 6
    cfg = load_config(pose__detector_options__crop=[0, 0, 0.7, 1], retarget__options__root_motion="none")
    with Animator(cfg) as animator:
        driving = animator.load_driving(data_dir / "dance_short.mp4", end=6)
        assert driving.meta["detector_options"]["crop"] == [0, 0, 0.7, 1]
        prepared = animator.prepare_reference(ref, size=(192, 320))
        _, _, x1, _ = prepared.pose.bbox()
        assert x1 > 0.78 * 192  # her whole body, not the part left of the window's edge
