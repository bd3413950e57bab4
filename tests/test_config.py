"""animate.config: defaults, YAML overlay, keyword overrides, and errors that name the field and the file."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from animate.config import DEFAULT_CONFIG_PATH, AnimateConfig, load_config, parse_size
from animate.diffusion.settings import CONFIG_DIR as DIFFUSION_CONFIG_DIR
from pose.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "user.yaml"
    path.write_text(text)
    return path


def test_shipped_default_yaml_equals_package_defaults():
    shipped = load_config(DEFAULT_CONFIG_PATH).to_dict()
    defaults = AnimateConfig().to_dict()
    assert shipped.pop("source") == str(DEFAULT_CONFIG_PATH)
    defaults.pop("source")
    assert shipped == defaults


def test_defaults_without_file():
    cfg = load_config(None)
    assert cfg.renderer.name == "puppet"
    assert cfg.output.size is None and cfg.output.height == 768 and cfg.output.fps is None
    assert cfg.smoothing.enabled and cfg.retarget.enabled and not cfg.preview.enabled
    assert cfg.source is None


def test_yaml_overlays_only_named_fields(tmp_path):
    path = _write(tmp_path, "output:\n  size: [512, 768]\n  fps: 12\nsmoothing:\n  enabled: false\n")
    cfg = load_config(path)
    assert cfg.output.size == (512, 768)
    assert cfg.output.fps == 12.0
    assert cfg.smoothing.enabled is False
    assert cfg.output.height == 768 and cfg.renderer.name == "puppet"  # untouched
    assert cfg.source == str(path.resolve())


def test_keyword_overrides_shortcuts_and_dotted(tmp_path):
    path = _write(tmp_path, "output:\n  fps: 12\n")
    cfg = load_config(path, size="640x960", fps=30, smoothing=False, preview=None,
                      **{"smoothing.beta": 4.0, "output__height": 512})
    assert cfg.output.size == (640, 960)
    assert cfg.output.fps == 30.0  # override beats the file
    assert cfg.smoothing.enabled is False and cfg.smoothing.beta == 4.0
    assert cfg.output.height == 512
    assert cfg.preview.enabled is False  # None = not given


def test_renderer_options_and_diffusion_paths(tmp_path):
    path = _write(tmp_path, "renderer:\n  name: diffusion\n  options: {steps: 20}\ndiffusion:\n  weights: /w\n")
    cfg = load_config(path)
    opts = cfg.renderer_options()
    assert opts == {"steps": 20, "weights_dir": "/w", "config": "moore"}  # a release name passes unchanged
    path2 = _write(tmp_path, "renderer:\n  name: diffusion\ndiffusion:\n  config: mine/release.yaml\n")
    (tmp_path / "mine").mkdir()
    shutil.copy(DIFFUSION_CONFIG_DIR / "moore.yaml", tmp_path / "mine" / "release.yaml")
    assert load_config(path2).renderer_options()["config"] == str(tmp_path.resolve() / "mine" / "release.yaml")
    assert load_config(None).renderer_options() == {}  # puppet: no diffusion options


@pytest.mark.parametrize(
    "text, field",
    [
        ("output:\n  fps: -3\n", "output.fps"),
        ("output:\n  size: [511, 768]\n", "output.size"),
        ("output:\n  size: big\n", "output.size"),
        ("output:\n  pad_color: [0, 0, 300]\n", "output.pad_color"),
        ("smoothing:\n  enabled: maybe\n", "smoothing.enabled"),
        ("renderer:\n  name: blender\n", "renderer.name"),
        ("pose:\n  max_interp_gap: -1\n", "pose.max_interp_gap"),
        ("pose:\n  detect_every: 0\n", "pose.detect_every"),
        ("pose:\n  detect_every: often\n", "pose.detect_every"),
        ("pose:\n  follow_identity: sometimes\n", "pose.follow_identity"),
        ("retarget:\n  options: {anchr: feet}\n", "retarget.options"),
        ("output:\n  fsp: 12\n", "output.fsp"),
        ("rendrer:\n  name: puppet\n", "rendrer"),
        ("output: 12\n", "output"),
        ("output:\n  fps: .inf\n", "output.fps"),
        ("output:\n  fps: .nan\n", "output.fps"),
        ("smoothing:\n  beta: .inf\n", "smoothing.beta"),
        ("output:\n  multiple_of: 1\n", "output.multiple_of"),
        ("output:\n  multiple_of: 12.0\n", "output.multiple_of"),
        ("retarget:\n  options: {anchor: hips}\n", "retarget.options.anchor"),
        ("retarget:\n  options: {root_motion: fly}\n", "retarget.options.root_motion"),
        ("retarget:\n  options: {calibration: first}\n", "retarget.options.calibration"),
        ("retarget:\n  options: {max_stretch: 0.5}\n", "retarget.options.max_stretch"),
        ("preview:\n  skeleton_style: foo\n", "preview.skeleton_style"),
        ("pose:\n  detector: yolo\n", "pose.detector"),
        ("diffusion:\n  config: nope\n", "diffusion.config"),
        ("diffusion:\n  config: missing/release.yaml\n", "diffusion.config"),
        ("renderer:\n  options: {nonsense: 1}\n", "renderer.options"),
        ("renderer:\n  options: {background: notacolour}\n", "renderer.options.background"),
        ("renderer:\n  options: {mesh_density: fine}\n", "renderer.options.mesh_density"),
    ],
)
def test_bad_values_name_field_and_file(tmp_path, text, field):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert f"'{field}'" in msg
    assert str(path.resolve()) in msg
    assert "\n" not in msg


def test_invalid_yaml_and_missing_file(tmp_path):
    path = _write(tmp_path, "output: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    top = _write(tmp_path, "- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(top)


def test_bad_override_names_the_override():
    with pytest.raises(ConfigError, match=r"keyword overrides \(fps\).*'output.fps'"):
        load_config(None, fps=0)
    with pytest.raises(ConfigError, match="unknown config field 'colour'"):
        load_config(None, colour="red")


def test_parse_size():
    assert parse_size("512x768") == (512, 768)
    with pytest.raises(ConfigError):
        parse_size("512")
    with pytest.raises(ConfigError):
        parse_size("0x10")


def test_override_adds_a_key_to_a_free_form_options_mapping():
    cfg = load_config(retarget__options__root_motion="none")
    assert cfg.retarget.options == {"root_motion": "none"}
    with pytest.raises(ConfigError, match="unknown config field 'retarget.nothing'"):
        load_config(retarget__nothing=1)


@pytest.mark.parametrize(
    "overrides, field, allowed",
    [
        ({"retarget.options": {"anchor": "hips"}}, "retarget.options.anchor", "'neck' or 'feet'"),
        ({"retarget.options": {"root_motion": "fly"}}, "retarget.options.root_motion", "auto, body, frame, none"),
        ({"preview": True, "preview.skeleton_style": "foo"}, "preview.skeleton_style", "openpose"),
        ({"renderer_options": {"nonsense": 1}}, "renderer.options", "background"),
        ({"renderer_options": {"background": "notacolour"}}, "renderer.options.background", "transparent"),
        ({"detector": "yolo"}, "pose.detector", "mediapipe, openpose"),
        ({"diffusion.config": "nope"}, "diffusion.config", "moore, musepose"),
        ({"fps": float("inf")}, "output.fps", "finite number > 0"),
        ({"fps": float("nan")}, "output.fps", "finite number > 0"),
        ({"output.multiple_of": 1}, "output.multiple_of", "even integer >= 2"),
        ({"output": 5}, "output", "section"),
    ],
)
def test_bad_overrides_rejected_at_construction(overrides, field, allowed):
    from animate.api import Animator

    with pytest.raises(ConfigError) as info:
        Animator(**overrides)  # not at the first animate(), minutes of pose extraction later
    msg = str(info.value)
    assert f"'{field}'" in msg and allowed in msg and "\n" not in msg


def test_good_option_values_pass(tmp_path):
    for name in ("body_pose_model.pth", "hand_pose_model.pth", "facenet.pth"):  # openpose needs its annotators
        (tmp_path / name).write_bytes(b"")
    cfg = load_config(renderer_options={"background": "green", "mesh_density": 32},
                      **{"retarget.options": {"anchor": "feet", "root_motion": "none", "calibration": 3},
                         "preview.skeleton_style": "musepose", "pose.detector": "openpose", "output.multiple_of": 2,
                         "pose.detector_options.annotator_dir": str(tmp_path)})
    assert cfg.renderer.options == {"background": "green", "mesh_density": 32}
    assert cfg.retarget.options["root_motion"] == "none" and cfg.output.multiple_of == 2


def test_renderer_options_checked_against_the_final_renderer(tmp_path):
    path = _write(tmp_path, "renderer:\n  options: {steps: 20}\n")  # diffusion options, puppet by default
    assert load_config(path, renderer="diffusion").renderer.options == {"steps": 20}
    with pytest.raises(ConfigError, match=r"'renderer.options'.*unknown: steps") as info:
        load_config(path)
    assert str(path.resolve()) in str(info.value)
    with pytest.raises(ConfigError, match="'renderer.options.background'") as info:  # the file is still named
        load_config(_write(tmp_path, "renderer:\n  options: {background: notacolour}\n"), fps=12)
    assert str(path.resolve()) in str(info.value)


@pytest.mark.parametrize(
    "options, field, allowed",
    [
        ({"steps": 0}, "steps", "[1, 1000]"),
        ({"steps": 2.5}, "steps", "whole number"),
        ({"overlap": 30}, "overlap", "smaller than the window (24 frames)"),
        ({"window": 16, "overlap": 16}, "overlap", "smaller than the window (16 frames)"),
        ({"window": 40}, "window", "[1, 32]"),  # moore's motion modules know 32 positions
        ({"stride": 0}, "stride", ">= 1"),
        ({"weighting": "gauss"}, "weighting", "uniform, triangular"),
        ({"guidance_scale": float("nan")}, "guidance_scale", "finite number"),
        ({"guidance_scale": -1}, "guidance_scale", ">= 0"),
        ({"strength": 1.5}, "strength", "[0, 1]"),
        ({"width": 4}, "width", "[8, 4096]"),
        ({"fit": "stretch"}, "fit", "pad, crop"),
        ({"seed": -1}, "seed", "[0, "),
        ({"decode_chunk_size": 0}, "decode_chunk_size", ">= 1"),
        ({"dtype": "int8"}, "dtype", "fp16, bf16, fp32"),
        ({"cpu_offload": "yes"}, "cpu_offload", "true or false"),
        ({"pose_style": "dots"}, "pose_style", "openpose"),
        ({"init_renderer": "diffusion"}, "init_renderer", "another renderer (puppet"),  # + test renderers
        ({"stepz": 20}, "stepz", "is unknown; use "),
        ({"config": "nope"}, "config", "moore, musepose"),
    ],
)
def test_diffusion_options_checked_when_the_config_loads(tmp_path, options, field, allowed):
    """Before: these failed after the weights had loaded (or at the first window), or not at all."""
    path = _write(tmp_path, "renderer:\n  name: diffusion\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, renderer_options=options)
    msg = str(info.value)
    assert f"'renderer.options.{field}'" in msg and allowed in msg and str(path.resolve()) in msg, msg


def test_diffusion_options_use_the_release_defaults():
    cfg = load_config(renderer="diffusion", renderer_options={"window": 40, "overlap": 8}, **{"diffusion.config": "musepose"})
    assert cfg.renderer.options == {"window": 40, "overlap": 8}  # MusePose's motion modules take 48+ frames
    with pytest.raises(ConfigError, match="'renderer.options.overlap'.*window"):
        load_config(renderer="diffusion", renderer_options={"window": 4})  # moore's default overlap is 4


def test_a_release_config_with_bad_defaults_is_refused(tmp_path):
    text = (DIFFUSION_CONFIG_DIR / "moore.yaml").read_text().replace("steps: 30", "steps: -3")
    assert "steps: -3" in text
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"'diffusion.config' is invalid: .*bad.yaml: defaults: .*'steps'"):
        load_config(**{"diffusion.config": str(tmp_path / "bad.yaml")})
    unknown = (DIFFUSION_CONFIG_DIR / "moore.yaml").read_text().replace("steps: 30", "stepz: 30")
    (tmp_path / "unknown.yaml").write_text(unknown)
    with pytest.raises(ConfigError, match="'defaults.stepz' is unknown"):
        load_config(**{"diffusion.config": str(tmp_path / "unknown.yaml")})


def test_checking_renderer_options_does_not_import_torch():
    code = ("import sys; from animate.config import load_config; "
            "load_config(renderer_options={'background': 'green'}); "
            "load_config(renderer='diffusion', renderer_options={'steps': 20, 'dtype': 'bf16', 'window': 16}); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parent.parent)


def test_section_given_as_a_mapping_is_merged():
    cfg = load_config(output={"fps": 10}, smoothing={"beta": 4.0})
    assert cfg.output.fps == 10.0 and cfg.output.height == 768  # the rest of the section kept
    assert cfg.smoothing.enabled is True and cfg.smoothing.beta == 4.0
    with pytest.raises(ConfigError, match="'output.fsp'"):
        load_config(output={"fsp": 10})


def test_animator_takes_a_yaml_path_or_a_mapping(tmp_path):
    from animate.api import Animator

    path = _write(tmp_path, "output:\n  fps: 12\n")
    animator = Animator(str(path), height=512)
    assert animator.config.source == str(path.resolve())
    assert animator.config.output.fps == 12.0 and animator.config.output.height == 512
    assert Animator(path).config.output.fps == 12.0
    assert Animator({"output": {"fps": 15}}).config.output.fps == 15.0
    with pytest.raises(ConfigError, match=r"^the config mapping: config field 'output.fps'"):
        Animator({"output": {"fps": 0}})
    with pytest.raises(TypeError, match="YAML file, a mapping of sections"):
        Animator(5)


def test_canvas_sides_are_even_whatever_the_height():
    from animate.api import canvas_size

    cfg = load_config(height=385, **{"output.multiple_of": 2})
    width, height = canvas_size(704, 1216, cfg)
    assert width % 2 == 0 and height % 2 == 0


def test_numpy_numbers_are_plain_numbers():
    import numpy as np

    cfg = load_config(None, size=(np.int64(512), np.int64(768)), fps=np.float32(12.0))
    assert cfg.output.size == (512, 768) and cfg.output.fps == 12.0
    assert load_config(None, size=np.array([256, 384])).output.size == (256, 384)
    assert isinstance(load_config(None, **{"output.height": np.int32(640)}).output.height, int)


def test_a_folder_given_as_config_is_named_as_such(tmp_path):
    with pytest.raises(ConfigError, match="is a folder; pass a YAML file"):
        load_config(tmp_path)


# ------------------------------------------------------------------------------------------------
# QA pass: detector options, YAML errors, empty sections, float sizes, parameter-named overrides, blame
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, field, allowed",
    [
        ("pose:\n  detector_options: {bogus: 1}\n", "pose.detector_options", "unknown: bogus"),
        ("pose:\n  detector_options: {crop: [0.5, 0, 1]}\n", "pose.detector_options.crop", "[x0, y0, x1, y1]"),
        ("pose:\n  detector_options: {crop: [0.5, 0, 0.2, 1]}\n", "pose.detector_options.crop", "x0 < x1"),
        ("pose:\n  detector_options: {follow: maybe}\n", "pose.detector_options.follow", "true or false"),
        ("pose:\n  detector_options: {min_detection_confidence: high}\n",
         "pose.detector_options.min_detection_confidence", "float"),
        ("pose:\n  detector_options: {max_size: big}\n", "pose.detector_options.max_size", "int | None"),
        ("pose:\n  detector_options: {static_image_mode: 1}\n", "pose.detector_options.static_image_mode", "bool"),
        ("pose:\n  detector: skeleton\n  detector_options: {static_image_mode: true}\n", "pose.detector_options",
         "unknown: static_image_mode"),
        ("pose:\n  detector: openpose\n", "pose.detector_options.annotator_dir", "body_pose_model.pth"),
        ("pose:\n  detector: openpose\n  detector_options: {annotator_dir: /nowhere}\n",
         "pose.detector_options.annotator_dir", "lacks body_pose_model.pth"),
    ],
)
def test_detector_options_checked_when_the_config_loads(tmp_path, text, field, allowed):
    """Before: accepted, and the run failed later with a message naming neither the field nor the file."""
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert f"'{field}'" in msg and allowed in msg and str(path.resolve()) in msg and "\n" not in msg, msg


def test_detector_options_given_as_overrides_are_checked():
    with pytest.raises(ConfigError, match=r"keyword overrides .*'pose.detector_options'.*unknown: bogus"):
        load_config(**{"pose.detector_options": {"bogus": 1}})
    with pytest.raises(ConfigError, match=r"'pose.detector_options.crop'"):
        load_config(pose__detector_options__crop=[0.5, 0, 1])


def test_good_detector_options_pass(tmp_path):
    for name in ("body_pose_model.pth", "hand_pose_model.pth", "facenet.pth"):
        (tmp_path / name).write_bytes(b"")
    options = {"crop": [0.5, 0, 1, 1], "max_size": None, "min_detection_confidence": 1, "static_image_mode": True}
    assert load_config(**{"pose.detector_options": options}).pose.detector_options == options
    assert load_config(pose__detector_options__follow=True).pose.detector_options == {"follow": True}
    openpose = {"annotator_dir": str(tmp_path), "crop": [0, 0, 1, 1]}
    cfg = load_config(detector="openpose", **{"pose.detector_options": openpose})
    assert cfg.pose.detector_options["annotator_dir"] == str(tmp_path)
    skeleton = load_config(detector="skeleton", pose__detector_options__hands=False)
    assert skeleton.pose.detector_options == {"hands": False}


def test_detector_options_checked_against_the_final_detector(tmp_path):
    path = _write(tmp_path, "pose:\n  detector_options: {hands: false}\n")  # skeleton's option, mediapipe by default
    assert load_config(path, detector="skeleton").pose.detector_options == {"hands": False}
    with pytest.raises(ConfigError, match=r"'pose.detector_options'.*unknown: hands"):
        load_config(path)
    annotators = tmp_path / "annotators"
    annotators.mkdir()
    for name in ("body_pose_model.pth", "hand_pose_model.pth", "facenet.pth"):
        (annotators / name).write_bytes(b"")
    openpose = _write(tmp_path, "pose:\n  detector: openpose\n")  # the folder comes from an override
    assert load_config(openpose, pose__detector_options__annotator_dir=str(annotators)).pose.detector == "openpose"


def test_checking_detector_options_creates_no_detector():
    code = ("import sys; from animate.config import load_config; "
            "load_config(pose__detector_options__crop=[0, 0, 0.5, 1], pose__detector_options__max_size=640); "
            "load_config(detector='skeleton', pose__detector_options__hands=False); "
            "bad = [m for m in ('mediapipe', 'torch', 'controlnet_aux') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parent.parent)


@pytest.mark.parametrize(
    "text, words",
    [
        ("output:\n\tfps: 12\n", ["found character '\\t' that cannot start any token", "line 2, column 1",
                                    "replace the tab with spaces"]),
        ("output: [1, 2\n", ["did not find expected ',' or ']'", "line 2, column 1", "line 1, column 9"]),
        ("output:\n  fps: 1\n  fps: 2\n", ["found duplicate key fps", "line 3, column 3"]),
    ],
)
def test_yaml_syntax_errors_give_the_problem_and_its_line(tmp_path, text, words):
    """Before: only the parser's first line ("while scanning for the next token"), no reason, no line."""
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert "not valid YAML" in msg and str(path.resolve()) in msg and "\n" not in msg, msg
    for word in words:
        assert word in msg, msg


def test_a_section_with_every_field_commented_out_is_empty(tmp_path):
    path = _write(tmp_path, "output:\n  # size: [512, 768]\n  # fps: 12\npose:\nsmoothing:\n  enabled: false\n")
    cfg = load_config(path)
    assert cfg.output == AnimateConfig().output and cfg.pose == AnimateConfig().pose
    assert cfg.smoothing.enabled is False


def test_whole_float_sizes_are_sizes(tmp_path):
    from animate.api import Animator

    size = Animator(size=(256.0, 384.0)).config.output.size
    assert size == (256, 384) and all(type(v) is int for v in size)
    assert load_config(_write(tmp_path, "output:\n  size: [256.0, 384.0]\n")).output.size == (256, 384)
    with pytest.raises(ConfigError, match=r"'output.size' must be .*whole.*got \[256.5, 384\]"):
        load_config(size=(256.5, 384))
    with pytest.raises(ConfigError, match="'output.size'"):
        load_config(size=(float("inf"), 384))


@pytest.mark.parametrize("name", ["source", "path", "tree", "origin"])
def test_overrides_named_like_parameters_are_unknown_fields(tmp_path, name):
    """Before: a bare TypeError, or silently taken (``origin``, and ``source`` with a mapping set config.source)."""
    from animate.config import config_from_dict

    path = _write(tmp_path, "output:\n  fps: 12\n")
    for config in (None, path, {"output": {"fps": 12}}):
        with pytest.raises(ConfigError, match=f"unknown config field '{name}'"):
            load_config(config, **{name: str(path)})
    hint = " [(]a config file is the first argument" if name in ("path", "source") else "; use a shortcut"
    with pytest.raises(ConfigError, match=f"unknown config field '{name}'{hint}"):
        load_config(**{name: str(path)})
    if name != "source" and name != "origin":  # config_from_dict's own parameters
        with pytest.raises(ConfigError, match=f"unknown config field '{name}'"):
            config_from_dict({"output": {"fps": 12}}, **{name: str(path)})


def test_apply_overrides_to_a_loaded_config(tmp_path):
    from animate.config import apply_overrides

    path = _write(tmp_path, "output:\n  fps: 12\n")
    cfg = apply_overrides(load_config(path), {"height": 512, "source": None})
    assert cfg.output.fps == 12.0 and cfg.output.height == 512 and cfg.source == str(path.resolve())
    for name in ("source", "origin", "config", "tree"):
        with pytest.raises(ConfigError, match=f"unknown config field '{name}'"):
            apply_overrides(cfg, {name: "x.yaml"})


def test_a_bad_value_of_the_file_is_blamed_on_the_file_despite_overrides(tmp_path):
    """Before: 'keyword overrides (fps) on FILE: ...' for a value the overrides did not touch."""
    path = _write(tmp_path, "renderer:\n  options: {mesh_density: fine}\n")
    with pytest.raises(ConfigError, match=rf"^{path.resolve()}: config field 'renderer.options.mesh_density'"):
        load_config(path, fps=12, renderer="puppet")
    bad = _write(tmp_path, "pose:\n  detector_options: {bogus: 1}\n")
    with pytest.raises(ConfigError, match=rf"^{bad.resolve()}: config field 'pose.detector_options'"):
        load_config(bad, fps=12)
    with pytest.raises(ConfigError, match=r"^keyword overrides \(renderer_options\) on .*'renderer.options.mesh_dens"):
        load_config(_write(tmp_path, "output:\n  fps: 12\n"), renderer_options={"mesh_density": "fine"})


def test_default_yaml_comments_give_the_code_defaults():
    """The comments of the smoothing fields name pose.smoothing's real per-part defaults."""
    import re

    from pose.smoothing import DEFAULT_PART_CONFIGS, OneEuroConfig

    text = DEFAULT_CONFIG_PATH.read_text()
    comments = {m[1]: m[2] for m in re.finditer(r"^  (\w+): null +# (.*)$", text, re.MULTILINE)}
    expected = {"min_cutoff": {c.min_cutoff for c in DEFAULT_PART_CONFIGS.values()},
                "beta": {c.beta for c in DEFAULT_PART_CONFIGS.values()}, "d_cutoff": {OneEuroConfig().d_cutoff}}
    for name, values in expected.items():
        after_null = comments[name].split("null =", 1)[1]
        assert {float(v) for v in re.findall(r"\d+(?:\.\d+)?", after_null)} == values, (name, comments[name])
