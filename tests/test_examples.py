"""The scripts in examples/ (avatar_from_dance, virtual_tryon, studio_batch), run in-process on tiny inputs.

Each script's ``main()`` is called with ``sys.argv`` set (so the test does not depend on its signature) and
returns the exit status. The ``stamp`` test renderer (tests.helpers) keeps rendering cheap; driving poses
come from a pose file of 3 frames of tests/data/dance_short.mp4, extracted once.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

import tests.helpers  # noqa: F401  (registers the "stamp" test renderer)
from animate.api import Animator

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"
REF = DATA / "ref"
GOOD = REF / "anyone-5.png"  # anime woman in a dress: detected
SIZE = ["--size", "256x384"]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"examples_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def scripts() -> dict[str, ModuleType]:
    return {name: _load(name) for name in ("avatar_from_dance", "virtual_tryon", "studio_batch")}


@pytest.fixture(scope="module")
def driving(tmp_path_factory) -> Path:
    """Poses of the first 3 frames of dance_short.mp4, as a pose file (no detection in the scripts)."""
    from pose.extract import extract_poses
    from pose.io import save_sequence

    path = tmp_path_factory.mktemp("driving") / "dance3.json"
    save_sequence(extract_poses(DATA / "dance_short.mp4", end=3, progress=False), path)
    return path


def run(scripts, name: str, *argv: object, monkeypatch) -> int:
    """Run ``examples/<name>.py argv...`` in-process; its exit status (a SystemExit's code counts)."""
    monkeypatch.setattr(sys, "argv", [f"{name}.py", *map(str, argv)])
    try:
        rc = scripts[name].main()
    except SystemExit as exc:
        rc = exc.code
    except KeyboardInterrupt:  # must not reach pytest (it would end the session)
        pytest.fail(f"{name}: KeyboardInterrupt escaped main()")
    return rc


def one_line_error(err: str, prog: str) -> str:
    """The single ``<prog>: error: ...`` line of ``err``; no traceback."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if f"{prog}: error:" in line]
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), err
    return lines[0]


def batch_args(chars: Path, out: Path, driving: Path, *extra: object) -> list[object]:
    return [chars, "--driving", driving, "--out-dir", out, "--renderer", "stamp", *SIZE, *extra]


def characters(folder: Path, **images: Path) -> Path:
    folder.mkdir()
    for name, src in images.items():
        shutil.copy(src, folder / name)
    return folder


# ------------------------------------------------------------------------------------------------
# the shared error reporting (animate.cli.run_reporting_errors)
# ------------------------------------------------------------------------------------------------
def test_run_reporting_errors_maps_errors_to_one_line_and_status(capsys):
    from animate.cli import run_reporting_errors
    from pose.errors import InputError

    def fail():
        raise InputError("bad input x.png; fix it")

    def interrupt():
        raise KeyboardInterrupt

    assert run_reporting_errors(lambda: None) == 0
    assert run_reporting_errors(lambda: 1) == 1
    assert run_reporting_errors(fail, prog="tool") == 2
    assert capsys.readouterr().err == "tool: error: bad input x.png; fix it\n"
    assert run_reporting_errors(interrupt, prog="tool", interrupted="stopped") == 130
    assert capsys.readouterr().err == "tool: stopped\n"
    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
        run_reporting_errors(lambda: 1 / 0)


def test_posedrive_cli_reports_errors_as_before(tmp_path, monkeypatch, capsys, driving):
    from animate.cli import main as cli_main

    assert cli_main(["-q", "animate", str(tmp_path / "missing.png"), str(driving), "-o", str(tmp_path / "o.mp4")]) == 2
    err = capsys.readouterr().err
    assert one_line_error(err, "posedrive").startswith("posedrive: error: reference ")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Animator, "animate", interrupted)
    assert cli_main(["-q", "animate", str(GOOD), str(driving), "-o", str(tmp_path / "new" / "o.mp4")]) == 130
    assert capsys.readouterr().err == "posedrive: interrupted; no partial output was kept\n"
    assert not (tmp_path / "new").exists()


# ------------------------------------------------------------------------------------------------
# bug 5: user errors and Ctrl-C are one line, not a traceback
# ------------------------------------------------------------------------------------------------
def _error_cases(tmp: Path, driving: Path) -> list[tuple[str, list[object], str]]:
    (tmp / "afile").write_text("x")
    (tmp / "bad.json").write_text('{"schema": "something else"}')
    (tmp / "badmask.png").write_bytes((DATA / "no_person.png").read_bytes()[:60])  # truncated PNG
    out = tmp / "o.mp4"
    avatar = ["--driving", driving, "-o", out, "--renderer", "stamp"]
    tryon = ["--photo", GOOD, "--driving", driving, "-o", out, "--renderer", "stamp", "--end", "3"]
    return [
        ("avatar_from_dance", ["--reference", tmp / "missing.png", *avatar], "does not exist"),
        ("avatar_from_dance", ["--reference", GOOD, "--driving", tmp / "missing.mp4", "-o", out], "missing.mp4"),
        ("avatar_from_dance", ["--reference", GOOD, *avatar, "--end", "0"], "invalid frame range"),
        ("avatar_from_dance", ["--reference", GOOD, "--driving", driving, "-o", GOOD], "is the input"),
        ("virtual_tryon", [*tryon, "--mask", tmp / "badmask.png"], "mask"),
        ("virtual_tryon", [*tryon, "--photo", DATA / "no_person.png"], "no person"),
        ("virtual_tryon", [*tryon, "--reference-pose", tmp / "bad.json"], "bad.json"),
        ("studio_batch", batch_args(tmp / "nonexistent", tmp / "b", driving), "does not exist"),
        ("studio_batch", batch_args(tmp / "afile", tmp / "b", driving), "is not a folder"),
        ("studio_batch", batch_args(REF, tmp / "afile", driving), "--out-dir"),
    ]


@pytest.mark.parametrize("case", range(10))
def test_user_errors_are_one_line_with_status_2(case, scripts, tmp_path, driving, monkeypatch, capsys):
    name, argv, words = _error_cases(tmp_path, driving)[case]
    assert run(scripts, name, *argv, monkeypatch=monkeypatch) == 2
    line = one_line_error(capsys.readouterr().err, name)
    assert words in line
    assert not (tmp_path / "o.mp4").exists() and not (tmp_path / "b").exists()


@pytest.mark.parametrize("name", ["avatar_from_dance", "virtual_tryon", "studio_batch"])
def test_ctrl_c_is_one_line_with_status_130(name, scripts, tmp_path, driving, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Animator, "animate", interrupted)
    out = tmp_path / "out"
    argv = {"avatar_from_dance": ["--reference", GOOD, "--driving", driving, "-o", out / "a.mp4"],
            "virtual_tryon": ["--photo", GOOD, "--driving", driving, "-o", out / "t.mp4"],
            "studio_batch": batch_args(characters(tmp_path / "c", **{"a.png": GOOD}), out, driving)}[name]
    assert run(scripts, name, *argv, "--renderer", "stamp", monkeypatch=monkeypatch) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and re.search(rf"^{name}: interrupted", err, re.MULTILINE), err


# ------------------------------------------------------------------------------------------------
# bug 4: --overwrite; an existing output is refused without it
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["avatar_from_dance", "virtual_tryon"])
def test_existing_output_needs_overwrite(name, scripts, tmp_path, driving, monkeypatch, capsys):
    out = tmp_path / "video.mp4"
    out.write_bytes(b"earlier run")
    ref = ["--reference", GOOD] if name == "avatar_from_dance" else ["--photo", GOOD]
    argv = [*ref, "--driving", driving, "-o", out, "--renderer", "stamp", "--end", "3"]
    assert run(scripts, name, *argv, monkeypatch=monkeypatch) == 2
    assert "--overwrite" in one_line_error(capsys.readouterr().err, name)
    assert out.read_bytes() == b"earlier run"
    assert run(scripts, name, *argv, "--overwrite", monkeypatch=monkeypatch) == 0
    assert out.stat().st_size > 1000


def test_batch_refuses_any_existing_output_before_work(scripts, tmp_path, driving, monkeypatch, capsys):
    chars = characters(tmp_path / "c", **{"a.png": GOOD, "b.png": GOOD})
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.mp4").write_bytes(b"earlier b")
    calls = []
    monkeypatch.setattr(Animator, "load_driving", lambda *a, **k: calls.append(a))
    assert run(scripts, "studio_batch", *batch_args(chars, out, driving), monkeypatch=monkeypatch) == 2
    line = one_line_error(capsys.readouterr().err, "studio_batch")
    assert str(out / "b.mp4") in line and "--overwrite" in line
    assert not calls and sorted(p.name for p in out.iterdir()) == ["b.mp4"]  # no work, a.mp4 not written

    (out / "b.mp4").unlink()
    (out / "summary.json").write_text("{}")
    assert run(scripts, "studio_batch", *batch_args(chars, out, driving), monkeypatch=monkeypatch) == 2
    assert str(out / "summary.json") in one_line_error(capsys.readouterr().err, "studio_batch")
    assert not calls and (out / "summary.json").read_text() == "{}"


# ------------------------------------------------------------------------------------------------
# studio_batch: bugs 1, 2, 3, 6
# ------------------------------------------------------------------------------------------------
def test_batch_exits_1_when_a_character_failed(scripts, tmp_path, driving, monkeypatch, caplog):
    chars = characters(tmp_path / "c", **{"good.png": GOOD, "nobody.png": DATA / "no_person.png"})
    out = tmp_path / "out"
    assert run(scripts, "studio_batch", *batch_args(chars, out, driving), monkeypatch=monkeypatch) == 1
    assert "put its pose in nobody.pose.json next to it" in caplog.text  # the batch's way, not --reference-pose
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"good.png", "nobody.png"}
    assert summary["good.png"]["frames"] == 3 and (out / "good.mp4").is_file()
    assert "no person" in summary["nobody.png"]["error"] and not (out / "nobody.mp4").exists()


def test_batch_all_rendered_exits_0_and_lists_plain_files_only(scripts, tmp_path, driving, monkeypatch):
    chars = characters(tmp_path / "c", **{"good.png": GOOD})
    (chars / "sub.png").mkdir()  # a folder named like an image is no character
    (chars / "sub.png" / "inner.png").write_bytes(GOOD.read_bytes())
    (chars / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    rc = run(scripts, "studio_batch", *batch_args(chars, out, driving), monkeypatch=monkeypatch)
    assert list(json.loads((out / "summary.json").read_text())) == ["good.png"]
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["good.mp4", "summary.json"]


def test_batch_empty_folder_is_an_error_before_any_work(scripts, tmp_path, driving, monkeypatch, capsys):
    chars = tmp_path / "c"
    (chars / "only_a_folder.png").mkdir(parents=True)
    (chars / "notes.txt").write_text("not an image")
    calls = []
    monkeypatch.setattr(Animator, "load_driving", lambda *a, **k: calls.append(a))
    out = tmp_path / "out"
    assert run(scripts, "studio_batch", *batch_args(chars, out, driving), monkeypatch=monkeypatch) == 2
    assert "no character images" in one_line_error(capsys.readouterr().err, "studio_batch")
    assert not calls and not out.exists()


def test_batch_refuses_two_images_with_one_stem(scripts, tmp_path, driving, monkeypatch, capsys):
    chars = characters(tmp_path / "c", **{"hero.png": GOOD, "hero.jpg": GOOD, "other.png": GOOD})
    out = tmp_path / "out"
    assert run(scripts, "studio_batch", *batch_args(chars, out, driving), monkeypatch=monkeypatch) == 2
    line = one_line_error(capsys.readouterr().err, "studio_batch")
    assert "hero.png" in line and "hero.jpg" in line and "rename" in line
    assert not out.exists()


def test_batch_failed_character_loses_its_earlier_video_with_overwrite(scripts, tmp_path, driving, monkeypatch):
    chars = characters(tmp_path / "c", **{"good.png": GOOD, "x.png": DATA / "no_person.png"})
    out = tmp_path / "out"
    out.mkdir()
    for name in ("good.mp4", "x.mp4", "summary.json"):  # an earlier run, when x.png still showed a person
        (out / name).write_bytes(b"earlier run")
    argv = batch_args(chars, out, driving, "--overwrite")
    assert run(scripts, "studio_batch", *argv, monkeypatch=monkeypatch) == 1
    summary = json.loads((out / "summary.json").read_text())
    assert "error" in summary["x.png"] and not (out / "x.mp4").exists()
    assert summary["good.png"]["frames"] == 3 and (out / "good.mp4").stat().st_size > 1000


def test_batch_interrupted_writes_the_summary_of_what_was_done(scripts, tmp_path, driving, monkeypatch, capsys):
    chars = characters(tmp_path / "c", **{"a.png": GOOD, "b.png": GOOD, "c.png": GOOD})
    original = Animator.animate

    def animate(self, reference, *args, **kwargs):
        if Path(reference).name == "b.png":
            raise KeyboardInterrupt
        return original(self, reference, *args, **kwargs)

    monkeypatch.setattr(Animator, "animate", animate)
    out = tmp_path / "out"
    assert run(scripts, "studio_batch", *batch_args(chars, out, driving), monkeypatch=monkeypatch) == 130
    assert "Traceback" not in capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary) == ["a.png"] and summary["a.png"]["output"] == str(out / "a.mp4")
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "summary.json"]  # no temporary file left


def test_default_avatar_twice_asks_for_overwrite(scripts, tmp_path, driving, monkeypatch, capsys):
    """The README's first command writes out/avatar.mp4 into a missing out/; the second run names --overwrite."""
    monkeypatch.chdir(tmp_path)
    argv = ["--reference", GOOD, "--driving", driving, "--renderer", "stamp"]  # default -o out/avatar.mp4
    assert run(scripts, "avatar_from_dance", *argv, monkeypatch=monkeypatch) == 0
    assert (tmp_path / "out" / "avatar.mp4").is_file()
    assert run(scripts, "avatar_from_dance", *argv, monkeypatch=monkeypatch) == 2
    assert "pass --overwrite" in one_line_error(capsys.readouterr().err, "avatar_from_dance")


# ------------------------------------------------------------------------------------------------
# QA pass: --config is not overridden by flag defaults, its errors blame the file, every reference format
# ------------------------------------------------------------------------------------------------
def test_batch_config_sets_renderer_and_size_unless_flags_are_given(scripts, tmp_path, driving, monkeypatch):
    """Before: the defaults of --renderer and --size were always passed, so the YAML's were ignored."""
    chars = characters(tmp_path / "c", **{"good.png": GOOD})
    config = tmp_path / "small.yaml"
    config.write_text("renderer:\n  name: stamp\noutput:\n  size: [128, 192]\n")
    argv = [chars, "--driving", driving, "--config", config, "--end", "3"]
    assert run(scripts, "studio_batch", *argv, "--out-dir", tmp_path / "a", monkeypatch=monkeypatch) == 0
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())["good.png"]
    assert summary["renderer"] == "stamp" and summary["size"] == [128, 192]
    assert run(scripts, "studio_batch", *argv, *SIZE, "--out-dir", tmp_path / "b", monkeypatch=monkeypatch) == 0
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["good.png"]["size"] == [256, 384]  # flag wins


def test_batch_without_config_keeps_its_documented_size(scripts, tmp_path, driving, monkeypatch):
    chars = characters(tmp_path / "c", **{"good.png": GOOD})
    argv = [chars, "--driving", driving, "--out-dir", tmp_path / "out", "--renderer", "stamp", "--end", "3"]
    assert run(scripts, "studio_batch", *argv, monkeypatch=monkeypatch) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())["good.png"]
    assert summary["size"] == [384, 640] and summary["renderer"] == "stamp"


def test_avatar_config_sets_the_renderer_unless_the_flag_is_given(scripts, tmp_path, driving, monkeypatch):
    config = tmp_path / "stamp.yaml"
    config.write_text("renderer:\n  name: stamp\noutput:\n  size: [128, 192]\n")
    used = []
    original = Animator.animate

    def animate(self, *args, **kwargs):
        used.append((self.config.renderer.name, self.config.output.size))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Animator, "animate", animate)
    argv = ["--reference", GOOD, "--driving", driving, "--config", config, "--end", "3"]
    assert run(scripts, "avatar_from_dance", *argv, "-o", tmp_path / "a.mp4", monkeypatch=monkeypatch) == 0
    assert used == [("stamp", (128, 192))]


@pytest.mark.parametrize("extra", [[], ["--background", "green"], SIZE])
def test_batch_config_error_blames_the_file(scripts, tmp_path, driving, monkeypatch, capsys, extra):
    """Before: 'keyword overrides (renderer, size) on bad.yaml: ...' although no override was given."""
    chars = characters(tmp_path / "c", **{"good.png": GOOD})
    bad = tmp_path / "bad.yaml"
    bad.write_text("renderer:\n  options: {mesh_density: fine}\n")
    argv = [chars, "--driving", driving, "--out-dir", tmp_path / "out", "--config", bad, *extra]
    assert run(scripts, "studio_batch", *argv, monkeypatch=monkeypatch) == 2
    line = one_line_error(capsys.readouterr().err, "studio_batch")
    assert line.startswith(f"studio_batch: error: {bad}: config field 'renderer.options.mesh_density'"), line
    assert "keyword overrides" not in line


def test_batch_takes_every_reference_format_of_the_readme(scripts, tmp_path):
    """Before: .bmp, .tif, .tiff and .gif references were silently skipped."""
    chars = tmp_path / "c"
    chars.mkdir()
    names = ["a.png", "b.JPG", "c.jpeg", "d.webp", "e.tif", "f.tiff", "g.bmp", "h.gif"]
    for name in [*names, "notes.txt", "clip.mp4"]:
        (chars / name).write_bytes(b"x")
    assert [p.name for p in scripts["studio_batch"].character_images(chars)] == names


def test_batch_renders_bmp_tiff_and_gif_characters(scripts, tmp_path, driving, monkeypatch):
    from PIL import Image

    chars = tmp_path / "c"
    chars.mkdir()
    image = Image.open(GOOD).convert("RGB")
    for name in ("good.bmp", "good2.tif", "good3.gif"):
        image.save(chars / name)
    out = tmp_path / "out"
    assert run(scripts, "studio_batch", *batch_args(chars, out, driving), "--end", "3", monkeypatch=monkeypatch) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(summary) == ["good.bmp", "good2.tif", "good3.gif"]
    assert all(v["frames"] == 3 for v in summary.values())


def test_batch_transparent_background_of_the_config_plans_webm_videos(scripts, tmp_path, driving, monkeypatch, capsys):
    """A YAML's transparent puppet background writes .webm videos, as --background transparent does."""
    chars = characters(tmp_path / "c", **{"a.png": GOOD})
    config = tmp_path / "alpha.yaml"
    config.write_text("renderer:\n  options: {background: transparent}\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.webm").write_bytes(b"earlier run")
    calls = []
    monkeypatch.setattr(Animator, "load_driving", lambda *a, **k: calls.append(a))
    argv = [chars, "--driving", driving, "--out-dir", out, "--config", config]
    assert run(scripts, "studio_batch", *argv, monkeypatch=monkeypatch) == 2
    line = one_line_error(capsys.readouterr().err, "studio_batch")
    assert str(out / "a.webm") in line and "--overwrite" in line and not calls
