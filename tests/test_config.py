"""animate.config: defaults, YAML overlay, keyword overrides, and errors that name the field and the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from animate.config import DEFAULT_CONFIG_PATH, AnimateConfig, load_config, parse_size
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
