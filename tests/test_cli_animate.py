"""``posedrive animate`` and ``posedrive eval`` subcommands (cli_animate / cli_eval)."""

from __future__ import annotations

import argparse
import json
import os
import re
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


@pytest.mark.parametrize("flags, message", [
    (["--background", "chartreuse"], "--background chartreuse: is invalid: puppet option background='chartreuse'"),
    (["--renderer", "foo"], "--renderer foo: must be one of"),
])
def test_a_bad_flag_value_is_named_as_the_flag(tmp_path, data_dir, capsys, flags, message):
    """Not as 'keyword overrides (renderer__options__background) on package defaults: config field ...'."""
    from animate.cli import main

    rc = main(["-q", "animate", str(data_dir / "ref" / "musepose_ref.png"), str(data_dir / "dance_short.mp4"),
               "-o", str(tmp_path / "o.mp4"), *flags])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith(f"posedrive: error: {message}") and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_weights_with_the_puppet_renderer_are_pointed_out(tmp_path, data_dir, caplog):
    caplog.set_level("WARNING", logger="animate.cli_animate")
    assert run(_animate_argv(data_dir, tmp_path / "o.mp4", "--weights", str(tmp_path / "w"))) == 0
    assert "--weights" in caplog.text and "needs none" in caplog.text


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


def _animate_argv(data_dir, out, *extra) -> list[str]:
    return ["animate", str(data_dir / "ref" / "musepose_ref.png"), str(data_dir / "dance_short.mp4"), "-o", str(out),
            "--size", "128x224", "--end", "3", "--renderer", "stamp", *extra]


def test_stats_file_that_is_an_input_or_the_output_is_refused_before_any_work(tmp_path, data_dir, monkeypatch):
    """``--stats`` naming the driving video, the reference, the config, a mask, a background picture (given
    with --background or only in the config) or the ``-o`` output (a QA pass had the driving video replaced by
    a JSON): refused even with --overwrite, before any work; every file is left as it was."""
    import shutil

    from animate.api import Animator

    monkeypatch.setattr(Animator, "animate", lambda *a, **k: pytest.fail("work started"))
    drv, ref, cfg, pic = tmp_path / "drv.mp4", tmp_path / "ref.png", tmp_path / "c.yaml", tmp_path / "bg.png"
    shutil.copy(data_dir / "dance_short.mp4", drv)
    shutil.copy(data_dir / "ref" / "musepose_ref.png", ref)
    shutil.copy(ref, pic)
    cfg.write_text("smoothing:\n  enabled: false\n")
    cfg_pic = tmp_path / "c2.yaml"
    cfg_pic.write_text("renderer:\n  options:\n    background: bg.png\n")  # found beside the YAML
    out = tmp_path / "o.mp4"
    before = {p: p.read_bytes() for p in (drv, ref, cfg, cfg_pic, pic)}
    base = ["animate", str(ref), str(drv), "-o", str(out), "--overwrite", "--config", str(cfg),
            "--background", str(pic)]
    for stats in (drv, ref, cfg, pic, tmp_path / "m.png"):
        with pytest.raises(OutputError, match=r"--stats .* is the input .*choose another --stats path"):
            run([*base, "--mask", str(tmp_path / "m.png"), "--stats", str(stats)])
    with pytest.raises(OutputError, match=r"--stats .*bg.png is the input .*choose another --stats path"):
        run([*base[:6], "--config", str(cfg_pic), "--stats", str(pic)])  # before, it was replaced by the JSON
    out.write_bytes(b"old video")
    with pytest.raises(OutputError, match=r"--stats .*o.mp4 is the video output"):
        run([*base, "--stats", str(out)])
    with pytest.raises(OutputError, match=r"--stats .*f_00007.png is the video output"):
        run([*base[:4], str(tmp_path / "f_%05d.png"), *base[5:], "--stats", str(tmp_path / "f_00007.png")])
    assert {p: p.read_bytes() for p in (drv, ref, cfg, cfg_pic, pic)} == before and out.read_bytes() == b"old video"
    assert sorted(os.listdir(tmp_path)) == ["bg.png", "c.yaml", "c2.yaml", "drv.mp4", "o.mp4", "ref.png"]


def test_existing_stats_file_needs_overwrite(tmp_path, data_dir):
    pytest.importorskip("pose.extract")
    out, stats = tmp_path / "o.mp4", tmp_path / "s.json"
    stats.write_text("keep")
    with pytest.raises(OutputError, match=r"s.json already exists; pass --overwrite"):
        run(_animate_argv(data_dir, out, "--stats", str(stats)))
    assert stats.read_text() == "keep" and not out.exists()  # refused before the video was made
    assert run(_animate_argv(data_dir, out, "--stats", str(stats), "--overwrite")) == 0
    assert json.loads(stats.read_text())["frames"] == 3 and out.is_file()


def test_bad_stats_path_fails_before_rendering_and_leaves_nothing(tmp_path, data_dir, capsys):
    """A folder, or a path under a file, as ``--stats`` failed with a traceback (or late) after the video was
    written: now one line, exit 2, before any work, and no video."""
    cli = pytest.importorskip("animate.cli", exc_type=ImportError)
    (tmp_path / "folder").mkdir()
    (tmp_path / "text.png").write_text("x")
    out = tmp_path / "o.mp4"
    for stats, message in ((tmp_path / "folder", r"^posedrive: error: --stats .*folder is a folder; give a file name"),
                           (tmp_path / "text.png" / "x.json", r"^posedrive: error: --stats: cannot create folder .*text.png")):
        rc = cli.main(["-q", *_animate_argv(data_dir, out, "--stats", str(stats))])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1 and re.search(message, err), err
    assert sorted(os.listdir(tmp_path)) == ["folder", "text.png"]
    out.write_bytes(b"old")  # refused (exists) after the --stats folders were made: they are removed again
    with pytest.raises(OutputError, match="already exists"):
        run(_animate_argv(data_dir, out, "--stats", str(tmp_path / "new" / "deeper" / "s.json")))
    assert sorted(os.listdir(tmp_path)) == ["folder", "o.mp4", "text.png"] and out.read_bytes() == b"old"


def test_stats_write_failure_removes_the_video(tmp_path, data_dir, monkeypatch):
    pytest.importorskip("pose.extract")
    from types import SimpleNamespace

    def disk_full(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cli_animate, "json", SimpleNamespace(dumps=disk_full))
    with pytest.raises(OutputError, match="cannot write --stats .*No space left"):
        run(_animate_argv(data_dir, tmp_path / "o.mp4", "--stats", str(tmp_path / "s.json")))
    assert os.listdir(tmp_path) == []


def test_output_that_is_the_driving_input_is_refused_even_with_overwrite(tmp_path, data_dir):
    import shutil

    drv = tmp_path / "drv2.mp4"
    shutil.copy(data_dir / "dance_short.mp4", drv)
    before = drv.read_bytes()
    with pytest.raises(OutputError, match=r"output .*drv2.mp4 is the input .*drv2.mp4"):
        run(["animate", str(data_dir / "ref" / "musepose_ref.png"), str(drv), "-o", str(drv), "--size", "128x224",
             "--renderer", "stamp", "--overwrite"])
    assert drv.read_bytes() == before and os.listdir(tmp_path) == ["drv2.mp4"]


def test_eval_refuses_existing_report_without_overwrite(tmp_path, data_dir, capsys):
    pytest.importorskip("pose.extract")
    cli = pytest.importorskip("animate.cli", exc_type=ImportError)
    out_dir = tmp_path / "ev"
    out_dir.mkdir()
    (out_dir / "report.json").write_text("first run")
    argv = ["eval", str(data_dir / "dance_short.mp4"), "--frames", "3", "--out-dir", str(out_dir),
            "--renderer", "stamp", "--no-pck", "--height", "64"]
    rc = cli.main(["-q", *argv])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "report.json already exists; pass --overwrite" in err
    assert os.listdir(out_dir) == ["report.json"] and (out_dir / "report.json").read_text() == "first run"
    assert run([*argv, "--overwrite"]) == 0
    assert json.loads((out_dir / "report.json").read_text())["frames"] == 3


def test_eval_height_too_small_names_height(tmp_path, data_dir, capsys):
    """``--height 7`` said "a 4x6 canvas is too small ... choose a larger output size" (after extracting the
    poses): now the smallest --height that works is named, before any work."""
    cli = pytest.importorskip("animate.cli", exc_type=ImportError)
    for height, need in (("7", 128), ("127", 128)):
        rc = cli.main(["-q", "eval", str(data_dir / "dance_short.mp4"), "--frames", "3", "--out-dir",
                       str(tmp_path / "ev"), "--height", height])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1
        assert f"--height {height} is too small" in err and f"use --height {need}" in err
    rc = cli.main(["-q", "eval", str(data_dir / "dance_short.mp4"), "--out-dir", str(tmp_path / "ev"),
                   "--renderer", "stamp", "--height", "12"])
    assert rc == 2 and "use --height 14" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_sigterm_mid_render_leaves_nothing_and_exits_143(tmp_path):
    """`kill`, `docker stop` and job schedulers send SIGTERM: it left a hidden `.o.*.partial.mp4` behind (and
    exit status 143 with no message). It now unwinds like Ctrl-C."""
    import signal
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parent.parent
    out_dir = tmp_path / "term"
    proc = subprocess.Popen(
        [sys.executable, "-m", "animate.cli", "-q", "animate", str(root / "examples/assets/musepose_ref.png"),
         str(root / "examples/assets/dance.mp4"), "--size", "256x384", "-o", str(out_dir / "o.mp4")],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not list(out_dir.glob(".o.*partial*")):
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()  # still rendering: the partial file is being written
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == "posedrive: terminated; no partial output was kept"
    assert not out_dir.exists() or list(out_dir.iterdir()) == []
