"""Weight conversion, strict loading, safe unpickling and directory checks.

Two kinds of files: tiny synthetic releases (values round-trip), and shape-only replicas of the anchors' REAL
released checkpoints at the real SD 1.5 size, written from the key manifests in ``tests/data/keys`` (produced from the
anchors' own model code by ``tools/dump_anchor_keys.py``). A replica holds ``meta`` tensors (no data, ~1 KB per
file) except the ``pos_encoder.pe`` tables, which are written as the sinusoid the real files hold; it goes through
the same ``torch.load(weights_only=True)`` -> converter -> strict ``load_state_dict`` path as the real file.
"""

from __future__ import annotations

import json
import math
import os
import re
import zipfile
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from animate.diffusion import weights as W
from animate.diffusion.tiny import (
    TINY_CLIP_CONFIG,
    TINY_MOTION_CONFIG,
    TINY_POSE_GUIDER_CONFIG,
    TINY_UNET_CONFIG,
    TINY_VAE_CONFIG,
    tiny_components,
)
from pose.errors import ConfigError, WeightsError

# Real key names of the released files (Moore-AnimateAnyone / AnimateDiff mm_sd_v15_v2), written out by hand.
REAL_MOTION_KEYS = {
    "down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.0.to_q.weight":
        "down_blocks.0.motion_modules.0.transformer_blocks.0.attn1.to_q.weight",
    "down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.1.to_out.0.bias":
        "down_blocks.0.motion_modules.0.transformer_blocks.0.attn2.to_out.0.bias",
    "up_blocks.3.motion_modules.2.temporal_transformer.transformer_blocks.0.norms.0.weight":
        "up_blocks.3.motion_modules.2.transformer_blocks.0.norm1.weight",
    "mid_block.motion_modules.0.temporal_transformer.transformer_blocks.0.ff_norm.bias":
        "mid_block.motion_modules.0.transformer_blocks.0.norm3.bias",
    "down_blocks.1.motion_modules.1.temporal_transformer.transformer_blocks.0.ff.net.0.proj.weight":
        "down_blocks.1.motion_modules.1.transformer_blocks.0.ff.net.0.proj.weight",
    "down_blocks.2.motion_modules.0.temporal_transformer.proj_in.weight": "down_blocks.2.motion_modules.0.proj_in.weight",
    "up_blocks.1.motion_modules.0.temporal_transformer.norm.bias": "up_blocks.1.motion_modules.0.norm.bias",
}
REAL_POSE_GUIDER_KEYS = {"conv_in.weight", "conv_in.bias", "conv_out.weight", "conv_out.bias"} | {
    f"blocks.{i}.{p}" for i in range(6) for p in ("weight", "bias")}


@pytest.fixture(scope="module")
def comps() -> dict:
    torch.set_num_threads(1)
    return tiny_components()


def test_real_key_names_convert():
    state = {k: torch.zeros(2) for k in REAL_MOTION_KEYS}
    pe = "down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.0.pos_encoder.pe"
    state[pe] = W.sinusoidal_table(32, 320)
    out = W.animatediff_to_diffusers(state, "motion_module.pth")
    assert out.keys() == set(REAL_MOTION_KEYS.values())  # every key mapped, pe accounted for (validated, dropped)
    state[pe] = torch.randn(1, 32, 320)
    with pytest.raises(WeightsError, match="sinusoidal"):
        W.animatediff_to_diffusers(state, "motion_module.pth")


def test_pose_guider_real_keys():
    from animate.diffusion.pose_guider import PoseGuider

    g = PoseGuider()
    assert set(g.state_dict()) == REAL_POSE_GUIDER_KEYS
    assert tuple(g.blocks[5].weight.shape) == (256, 96, 3, 3) and g.blocks[5].stride == (2, 2)
    assert float(g.conv_out.weight.detach().abs().sum()) == 0.0
    with torch.no_grad():
        out = g(torch.rand(2, 3, 64, 48))
    assert tuple(out.shape) == (2, 320, 8, 6) and float(out.abs().max()) == 0.0


def _write_release(root, comps, motion_pe=8, drop_motion_key=False):
    """A fake weights directory in the Moore layout, with the tiny models' weights in the anchors' formats."""
    (root / "stable-diffusion-v1-5" / "unet").mkdir(parents=True)
    (root / "stable-diffusion-v1-5" / "unet" / "config.json").write_text(json.dumps(TINY_UNET_CONFIG))
    comps["vae"].save_pretrained(root / "sd-vae-ft-mse")
    comps["image_encoder"].save_pretrained(root / "image_encoder")
    ref = {k: v for k, v in comps["reference_unet"].state_dict().items() if not k.startswith(("conv_norm_out", "conv_out"))}
    torch.save(ref, root / "reference_unet.pth")
    full = comps["denoising_unet"].state_dict()
    torch.save({k: v for k, v in full.items() if "motion_modules" not in k}, root / "denoising_unet.pth")
    motion = W.diffusers_to_animatediff(full, pe_length=motion_pe)
    if drop_motion_key:
        motion.pop(sorted(k for k in motion if k.endswith("to_q.weight"))[0])
    torch.save(motion, root / "motion_module.pth")
    torch.save(comps["pose_guider"].state_dict(), root / "pose_guider.pth")


def _config(tmp_path):
    cfg = W.load_diffusion_config("moore")
    cfg.pose_guider = dict(TINY_POSE_GUIDER_CONFIG)
    cfg.motion = {k: v for k, v in TINY_MOTION_CONFIG.items() if k != "block_out_channels"}
    return cfg


def test_load_release_round_trip(comps, tmp_path):
    _write_release(tmp_path, comps, motion_pe=32)  # pe tables longer than the config's max_len: rebuilt
    loaded = W.load_components(tmp_path, _config(tmp_path))
    for name in ("reference_unet", "denoising_unet", "pose_guider"):
        want, got = comps[name].state_dict(), loaded[name].state_dict()
        for k, v in got.items():
            if name == "reference_unet" and k.startswith(("conv_norm_out", "conv_out")):
                continue
            torch.testing.assert_close(v, want[k], msg=f"{name}.{k}")
    assert loaded["denoising_unet"].max_frames == TINY_MOTION_CONFIG["motion_max_seq_length"]
    sched = loaded["scheduler"].config
    assert sched.prediction_type == "v_prediction" and sched.rescale_betas_zero_snr and sched.timestep_spacing == "trailing"
    assert sched.beta_schedule == "scaled_linear" and sched.steps_offset == 1 and not sched.clip_sample


def test_missing_motion_key_is_an_error(comps, tmp_path):
    _write_release(tmp_path, comps, drop_motion_key=True)
    with pytest.raises(WeightsError, match=r"motion_module\.pth: 1 missing keys: down_blocks\.0\.motion_modules"):
        W.load_components(tmp_path, _config(tmp_path))


def test_unexpected_key_is_an_error(comps, tmp_path):
    _write_release(tmp_path, comps)
    sd = W.read_state_dict(tmp_path / "pose_guider.pth")
    sd["blocks.6.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "pose_guider.pth")
    with pytest.raises(WeightsError, match=r"pose_guider\.pth: 1 unexpected keys: blocks\.6\.weight"):
        W.load_pose_guider(tmp_path / "pose_guider.pth", TINY_POSE_GUIDER_CONFIG)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_malicious_pickle_refused(tmp_path):
    path = tmp_path / "pose_guider.pth"
    torch.save({"conv_in.weight": torch.zeros(1), "x": _Evil()}, path)
    with pytest.raises(WeightsError, match="refused"):
        W.read_state_dict(path)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="junk.pth"):
        W.read_state_dict(tmp_path / "junk.pth")


def test_check_weights_dir(comps, tmp_path):
    cfg = _config(tmp_path)
    _write_release(tmp_path, comps)
    report = W.check_weights_dir(tmp_path, cfg)
    assert report.complete, report.format()
    (tmp_path / "motion_module.pth").unlink()
    sd = W.read_state_dict(tmp_path / "pose_guider.pth")
    sd["conv_out.weight"] = torch.zeros(8, 8, 1, 1)
    torch.save(sd, tmp_path / "pose_guider.pth")
    report = W.check_weights_dir(tmp_path, cfg)
    status = {e.component: e.status for e in report.entries}
    assert not report.complete
    assert status == {"vae": "ok", "image_encoder": "ok", "unet_config": "ok", "reference_unet": "ok",
                      "denoising_unet": "ok", "motion_module": "missing", "pose_guider": "wrong"}
    text = report.format()
    assert "conv_out.weight: got (8, 8, 1, 1) expected (8, 8, 3, 3)" in text
    assert "huggingface.co/patrolli/AnimateAnyone" in text and "incomplete: 1 missing, 1 wrong" in text


def test_files_are_not_ok_while_the_unet_config_is_missing(comps, tmp_path):
    """Without the UNet config a checkpoint's keys cannot be checked: it is 'unchecked', never 'ok'."""
    cfg = _config(tmp_path)
    _write_release(tmp_path, comps)
    torch.save({"foo.weight": torch.zeros(3)}, tmp_path / "denoising_unet.pth")  # garbage
    unet_config = tmp_path / cfg.weights["unet_config"]
    (unet_config if unet_config.suffix == ".json" else unet_config / "config.json").unlink()
    report = W.check_weights_dir(tmp_path, cfg)
    status = {e.component: e.status for e in report.entries}
    assert status["unet_config"] == "missing" and status["denoising_unet"] == "unchecked", report.format()
    assert not report.complete and "unchecked" in report.format().splitlines()[-1]
    for bad in (tmp_path / "nowhere", tmp_path / "denoising_unet.pth"):
        with pytest.raises(WeightsError, match="weights directory .*(does not exist|is a file)"):
            W.check_weights_dir(bad, cfg)


def test_cli_weights_check(comps, tmp_path, capsys):
    import argparse

    from animate import cli_weights

    parser = argparse.ArgumentParser(prog="posedrive")
    cli_weights.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["weights", "check", str(tmp_path)])
    assert args.func(args) == 1  # empty directory: incomplete
    out = capsys.readouterr().out
    assert out.count("MISSING") == 7 and "get it from: https://huggingface.co/stabilityai/sd-vae-ft-mse" in out


# --- what the check reads, and that it agrees with loading ------------------------------------------------------
FOLDER_FILES = {"vae": ("sd-vae-ft-mse", "diffusion_pytorch_model"), "image_encoder": ("image_encoder", "model")}


class _Marker:
    """A pickled object that would create ``path`` if it were ever unpickled unsafely."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch '{self.path}'",))


def _break_folder(root: Path, component: str, how: str, marker: Path) -> Path:
    """Damage the ``component`` folder of a tiny release the way a bad download does; returns the folder."""
    from safetensors.torch import load_file

    folder = root / FOLDER_FILES[component][0]
    weights = folder / ("model.safetensors" if component == "image_encoder" else
                        "diffusion_pytorch_model.safetensors")
    if how == "truncated":
        data = weights.read_bytes()
        weights.write_bytes(data[: len(data) // 2])
    elif how == "refused pickle":  # the .bin the loaders fall back to, holding a malicious object
        state = load_file(str(weights))
        weights.unlink()
        state["extra"] = _Marker(marker)
        torch.save(state, folder / ("pytorch_model.bin" if component == "image_encoder" else
                                    "diffusion_pytorch_model.bin"))
    else:  # "empty config": from_pretrained builds the library's default model, whose shapes differ
        (folder / "config.json").write_text("{}")
    return folder


@pytest.mark.parametrize("component", ["vae", "image_encoder"])
@pytest.mark.parametrize("how, reason", [("truncated", "not a valid safetensors file"),
                                         ("refused pickle", "refused, the pickle holds more than tensors"),
                                         ("empty config", "does not match the .* that config.json describes")])
def test_broken_vae_and_image_encoder_are_wrong_and_refused(comps, tmp_path, component, how, reason):
    """A truncated file, a refused pickle or a config.json of another model is WRONG in the check and one line
    when loading (was: 'complete', then an OSError / UnpicklingError / RuntimeError traceback from from_pretrained)."""
    root, marker = tmp_path / "weights", tmp_path / "pwned"
    root.mkdir()
    cfg = _config(tmp_path)
    _write_release(root, comps)
    folder = _break_folder(root, component, how, marker)

    report = W.check_weights_dir(root, cfg)
    entry = {e.component: e for e in report.entries}[component]
    assert entry.status == "wrong" and re.search(reason, entry.detail), report.format()
    assert not report.complete and all(e.status == "ok" for e in report.entries if e.component != component)
    with pytest.raises(WeightsError, match=reason) as info:
        W.load_components(root, cfg)
    message = str(info.value)
    assert str(folder) in message and "\n" not in message
    assert "download" in message or "official source" in message
    assert not marker.exists()  # the pickle was refused, never run


def test_folders_load_as_the_loaders_read_them(comps, tmp_path):
    """What diffusers / transformers accept is not reported WRONG: old VAE attention names (sd-vae-ft-mse), a
    legacy ``position_ids`` entry in the image encoder's pytorch_model.bin, .bin instead of .safetensors."""
    from safetensors.torch import load_file, save_file

    cfg = _config(tmp_path)
    _write_release(tmp_path, comps)
    vae = tmp_path / "sd-vae-ft-mse" / "diffusion_pytorch_model.safetensors"
    state = load_file(str(vae))
    old_names = {".to_q.": ".query.", ".to_k.": ".key.", ".to_v.": ".value.", ".to_out.0.": ".proj_attn."}
    renamed = {}
    for k, v in state.items():
        for new, old in old_names.items():
            k = k.replace(new, old) if ".attentions." in k else k
        renamed[k] = v
    assert any(".query." in k for k in renamed)
    save_file(renamed, str(vae))
    encoder = tmp_path / "image_encoder"
    state = load_file(str(encoder / "model.safetensors"))
    state["vision_model.embeddings.position_ids"] = torch.arange(17).unsqueeze(0)
    (encoder / "model.safetensors").unlink()
    torch.save(state, encoder / "pytorch_model.bin")

    report = W.check_weights_dir(tmp_path, cfg)
    assert report.complete, report.format()
    loaded = W.load_components(tmp_path, cfg)
    for name in ("vae", "image_encoder"):
        want, got = comps[name].state_dict(), loaded[name].state_dict()
        for k, v in want.items():
            torch.testing.assert_close(got[k], v, msg=f"{name}.{k}")


def test_folder_check_reads_headers_not_tensors(comps, tmp_path, monkeypatch):
    """The vae / image_encoder check reads safetensors headers only (real files are 335 MB and 1.2 GB)."""
    import safetensors.torch

    cfg = _config(tmp_path)
    _write_release(tmp_path, comps)

    def no_full_read(*args, **kwargs):
        raise AssertionError("a whole safetensors file was read")

    monkeypatch.setattr(safetensors.torch, "load_file", no_full_read)
    report = W.check_weights_dir(tmp_path, cfg)
    status = {e.component: (e.status, e.detail) for e in report.entries}
    assert status["vae"] == ("ok", "124 tensors") and status["image_encoder"][0] == "ok", report.format()
    shapes = W.read_shapes(tmp_path / "sd-vae-ft-mse" / "diffusion_pytorch_model.safetensors")
    assert shapes["encoder.conv_in.weight"] == tuple(comps["vae"].encoder.conv_in.weight.shape)


def test_load_failures_are_one_line(comps, tmp_path, monkeypatch):
    """Whatever from_pretrained raises on a folder the check let through becomes a WeightsError naming it."""
    from diffusers import AutoencoderKL

    cfg = _config(tmp_path)
    _write_release(tmp_path, comps)

    def fail(*args, **kwargs):
        raise OSError("Unable to load weights from checkpoint file\nsecond line")

    monkeypatch.setattr(AutoencoderKL, "from_pretrained", fail)
    with pytest.raises(WeightsError, match=r"sd-vae-ft-mse: the vae folder cannot be loaded \(OSError\)") as info:
        W.load_components(tmp_path, cfg)
    assert "\n" not in str(info.value) and "download the folder again" in str(info.value)


def test_bad_preprocessor_config_is_wrong(comps, tmp_path):
    cfg = _config(tmp_path)
    _write_release(tmp_path, comps)
    (tmp_path / "image_encoder" / "preprocessor_config.json").write_text("{not json")
    report = W.check_weights_dir(tmp_path, cfg)
    assert {e.component: e.status for e in report.entries}["image_encoder"] == "wrong", report.format()
    with pytest.raises(WeightsError, match=r"preprocessor_config\.json: not a JSON object"):
        W.load_components(tmp_path, cfg)


def test_legacy_format_checkpoint_is_ok(comps, tmp_path):
    """A checkpoint in PyTorch's legacy (non-zip) format cannot be memory-mapped: the check reads it whole, and
    agrees with loading (was: WRONG 'truncated or not a checkpoint')."""
    cfg = _config(tmp_path)
    _write_release(tmp_path, comps)
    path = tmp_path / "pose_guider.pth"
    torch.save(W.read_state_dict(path), path, _use_new_zipfile_serialization=False)
    assert not zipfile.is_zipfile(path)
    assert W.read_shapes(path) == {k: tuple(v.shape) for k, v in comps["pose_guider"].state_dict().items()}
    report = W.check_weights_dir(tmp_path, cfg)
    assert report.complete, report.format()
    loaded = W.load_components(tmp_path, cfg)
    torch.testing.assert_close(loaded["pose_guider"].conv_out.weight, comps["pose_guider"].conv_out.weight)
    path.write_bytes(path.read_bytes()[:100])  # a truncated legacy file is still an error
    assert {e.component: e.status for e in W.check_weights_dir(tmp_path, cfg).entries}["pose_guider"] == "wrong"


def _release_yaml(path: Path, **motion) -> Path:
    """The Moore release config with the tiny models' sizes (as a user's custom YAML), ``motion`` entries replaced
    (``None`` removes one)."""
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(OmegaConf.load(W.load_diffusion_config("moore").path))
    raw["pose_guider"] = {k: list(v) if isinstance(v, tuple) else v for k, v in TINY_POSE_GUIDER_CONFIG.items()}
    raw["motion"] = {k: v for k, v in TINY_MOTION_CONFIG.items() if k != "block_out_channels"}
    raw["defaults"].update(window=4, overlap=1)  # within the tiny motion module's 8 frames
    for key, value in motion.items():
        if value is None:
            raw["motion"].pop(key)
        else:
            raw["motion"][key] = value
    OmegaConf.save(OmegaConf.create(raw), path)
    return path


@pytest.mark.parametrize("motion, field", [
    (dict(motion_num_attention_heads=3), "motion_num_attention_heads"),  # 8 channels: RuntimeError in diffusers
    (dict(motion_layers_per_blok=2, motion_layers_per_block=None), "motion_layers_per_blok"),  # typo: TypeError
    (dict(motion_norm_num_groups=3), "motion_norm_num_groups"),
    (dict(motion_layers_per_block=1), "motion_layers_per_block"),  # the UNet has 2 layers per block
    (dict(use_motion_mid_block="no"), "use_motion_mid_block"),  # a string: diffusers would take it as true
    (dict(motion_num_attention_heads=0), "motion_num_attention_heads"),  # ZeroDivisionError in diffusers
])
def test_bad_motion_config_is_a_config_error(comps, tmp_path, capsys, motion, field):
    """A wrong ``motion:`` value in a custom YAML names the file and the field, exit 2 (was: a RuntimeError traceback,
    or WRONG 'unet_config ... cannot build a UNet from it', blaming the downloaded config.json)."""
    from animate import cli

    root = tmp_path / "weights"
    root.mkdir()
    _write_release(root, comps)
    yaml_path = _release_yaml(tmp_path / "custom.yaml", **motion)
    capsys.readouterr()
    assert cli.main(["weights", "check", str(root), "--config", str(yaml_path)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("posedrive: error: ") and "\n" not in err and "Traceback" not in captured.err
    assert f"{yaml_path}: field 'motion.{field}'" in err and "unet_config" not in captured.out
    with pytest.raises(ConfigError, match=re.escape(f"field 'motion.{field}'")):
        W.load_components(root, yaml_path)


def test_check_motion_config_fields():
    W.check_motion_config({"motion_max_seq_length": 32, "motion_num_attention_heads": [8, 8, 8, 8]}, "m.yaml")
    for motion, field in (({"motion_max_seq_length": -3}, "motion_max_seq_length"),
                          ({"motion_layers_per_block": 2.5}, "motion_layers_per_block"),
                          ({"block_out_channels": [8, 16]}, "block_out_channels")):
        with pytest.raises(ConfigError, match=re.escape(f"m.yaml: field 'motion.{field}'")):
            W.check_motion_config(motion, "m.yaml")
    with pytest.raises(ConfigError, match=r"'motion\.motion_num_attention_heads' lists 3 values for the UNet's 2"):
        W.check_motion_config({"motion_num_attention_heads": [2, 2, 2]}, "m.yaml", TINY_UNET_CONFIG)


def test_motion_build_failure_names_the_motion_section(tmp_path, monkeypatch):
    """A motion section that passes the field checks but still does not build blames 'motion', not the UNet."""

    def fail(*args, **kwargs):
        raise RuntimeError("The expanded size of the tensor (157) must match the existing size (158)")

    monkeypatch.setattr("animate.diffusion.motion_unet.PoseUNetMotionModel.from_unet2d", fail)
    with pytest.raises(ConfigError, match=r"custom\.yaml: field 'motion' does not fit the UNet config \(RuntimeError"):
        W.denoising_unet_from_config(TINY_UNET_CONFIG, _config(tmp_path).motion, empty=True, source="custom.yaml")


def test_report_columns_line_up():
    """Every status fits its column: 'UNCHECKED' (9 letters) is followed by a space like the others."""
    entries = [W.WeightsEntry(c, Path(c), s) for c, s in (("vae", "ok"), ("image_encoder", "missing"),
                                                           ("unet_config", "wrong"), ("reference_unet", "unchecked"))]
    lines = W.WeightsReport(Path("w"), "moore", entries).format().splitlines()[1:-1]
    assert "UNCHECKED reference_unet" in "\n".join(lines)
    starts = {line.index(e.component) for line, e in zip(lines, entries)}
    assert len(starts) == 1 and all(line[next(iter(starts)) - 1] == " " for line in lines)


def test_weights_path_that_is_not_a_folder(tmp_path, monkeypatch):
    """A file, a Hugging Face repo id and a missing folder each get a message saying what to give instead."""
    cfg = _config(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pose_guider.pth").write_bytes(b"x")
    cases = {"pose_guider.pth": r"is a file; give the folder that holds the weights",
             "patrolli/AnimateAnyone": r"Hugging Face repo id: posedrive never downloads, so download the files into "
                                       r"a folder laid out as in docs/WEIGHTS\.md",
             str(tmp_path / "nowhere"): r"does not exist; create it as described in docs/WEIGHTS\.md"}
    for path, message in cases.items():
        for run in (W.load_components, W.check_weights_dir):
            with pytest.raises(WeightsError, match=f"weights directory {re.escape(path)} .*{message}"):
                run(path, cfg)


def test_cli_config_file_without_yaml_suffix(tmp_path, capsys):
    """An existing config file without a suffix is named as such (was: "diffusion config '...' not found")."""
    from animate import cli

    config = _release_yaml(tmp_path / "custom.yaml").rename(tmp_path / "custom")
    capsys.readouterr()
    assert cli.main(["weights", "check", str(tmp_path), "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"posedrive: error: --config {config}: a release config must be a .yaml file; rename it to "
                   "custom.yaml, or give a release name (moore, musepose)")
    assert cli.main(["weights", "check", str(tmp_path), "--config", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_cpu_offload_without_cuda_names_the_config_option(comps, tmp_path, monkeypatch):
    import animate.diffusion.renderer as renderer_module
    from animate.diffusion.renderer import DiffusionRenderer

    _write_release(tmp_path, comps)
    monkeypatch.setattr(renderer_module, "load_components", lambda *a, **k: pytest.fail("weights loaded first"))
    with pytest.raises(ConfigError, match=r"set renderer\.options\.cpu_offload: false") as info:
        DiffusionRenderer(weights_dir=str(tmp_path), config=_config(tmp_path), device="cpu", dtype="fp32",
                          window=4, overlap=1, cpu_offload=True)
    assert "--cpu-offload" not in str(info.value)


def test_release_config_file_without_suffix_is_named(tmp_path):
    """A release YAML saved without its suffix was "not found" (read as a release name)."""
    from animate.config import load_config
    from animate.diffusion.settings import CONFIG_DIR, load_diffusion_config

    plain = tmp_path / "myrelease"
    plain.write_text((CONFIG_DIR / "moore.yaml").read_text())
    with pytest.raises(ConfigError, match=r"myrelease is a file without the \.yaml suffix; rename it"):
        load_diffusion_config(str(plain))
    with pytest.raises(ConfigError, match="'diffusion.config' is invalid: .*without the .yaml suffix"):
        load_config(**{"diffusion.config": str(plain)})
    assert load_diffusion_config("moore").name == "moore"


# --- the anchors' real released files (manifests in tests/data/keys) ---------------------------------------------
KEYS = Path(__file__).parent / "data" / "keys"
PE_SUFFIX = ".pos_encoder.pe"
SD15_UNET_PARAMS = 859_520_964  # published parameter count of the SD 1.5 UNet
# Published sizes of the fp32 files (huggingface.co/patrolli/AnimateAnyone): 3.44 GB, 1.82 GB, 4.35 MB.
RELEASED_SIZES = {"moore_denoising_unet": 3.44e9, "moore_reference_unet": 3.44e9, "moore_motion_module": 1.82e9,
                  "moore_pose_guider": 4.35e6}
MANIFESTS = {"moore": "sd15_unet_config.json", "musepose": "sd_image_variations_unet_config.json"}
FILES = ("reference_unet", "denoising_unet", "pose_guider", "motion_module")


def _manifest(name: str) -> dict:
    return json.loads((KEYS / f"{name}.json").read_text())


def _keys(name: str) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v) for k, v in _manifest(name)["keys"].items()}


def _replica(keys: dict[str, tuple[int, ...]]) -> dict:
    """Shape-only state dict: meta tensors, and the sinusoidal table for each ``pe`` buffer (as the files hold)."""
    tables: dict = {}
    out = {}
    for k, shape in keys.items():
        if k.endswith(".pe"):
            out[k] = tables.setdefault(shape, W.sinusoidal_table(shape[1], shape[2]))
        else:
            out[k] = torch.empty(shape, device="meta")
    return out


def _write_real_release(root: Path, release: str, motion: str | None = None) -> W.DiffusionConfig:
    """Replicas of one release's four files plus its UNet config, in that release's layout; returns its config."""
    cfg = W.load_diffusion_config(release)
    paths = {c: root / cfg.weights[c] for c in W.COMPONENTS}
    for p in paths.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    paths["unet_config"].write_text((KEYS / MANIFESTS[release]).read_text())
    for name in FILES:
        source = motion if (name == "motion_module" and motion) else f"{release}_{name}"
        torch.save(_replica(_keys(source)), paths[name])
    _write_tiny_folders(paths["vae"], paths["image_encoder"])
    return cfg


def _write_tiny_folders(vae: Path, image_encoder: Path) -> None:
    """Complete (tiny) ``sd-vae-ft-mse`` and ``image_encoder`` folders: check_weights_dir reads their configs and
    weights headers, and these two are not replicated from manifests (their size does not depend on the release)."""
    from diffusers import AutoencoderKL
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    AutoencoderKL(**TINY_VAE_CONFIG).save_pretrained(vae)
    CLIPVisionModelWithProjection(CLIPVisionConfig(**TINY_CLIP_CONFIG)).save_pretrained(image_encoder)


def _numel(module_or_shapes) -> int:
    shapes = module_or_shapes.values() if isinstance(module_or_shapes, dict) else \
        [p.shape for p in module_or_shapes.parameters()]
    return sum(math.prod(s) for s in shapes)


def test_real_manifests_are_the_published_files():
    """The manifests' sizes equal the published file sizes, and their layout facts hold."""
    for name, size in RELEASED_SIZES.items():
        assert abs(_numel(_keys(name)) * 4 - size) / size < 0.005, name  # fp32, rounded to 3 digits on the hub
    ref, den = _keys("moore_reference_unet"), _keys("moore_denoising_unet")
    assert len(den) == 686 and _numel(den) == SD15_UNET_PARAMS
    assert set(den) - set(ref) == {"conv_norm_out.weight", "conv_norm_out.bias", "conv_out.weight", "conv_out.bias"}
    assert not set(ref) - set(den) and all(ref[k] == den[k] for k in ref)
    moore, muse, ad = _keys("moore_motion_module"), _keys("musepose_motion_module"), _keys("animatediff_mm_sd_v15_v2")
    assert moore == ad and len(moore) == 588  # Moore's motion module has exactly mm_sd_v15_v2's layout
    assert set(muse) == set(moore)
    differ = {k for k in moore if moore[k] != muse[k]}
    assert differ and all(k.endswith(PE_SUFFIX) for k in differ)  # only the pe tables differ: 32 vs 128 frames
    assert {moore[k][1] for k in differ} == {32} and {muse[k][1] for k in differ} == {128}
    assert _manifest("musepose_motion_module")["temporal_position_encoding_max_len"] == 128
    modules = {k.split(".temporal_transformer.")[0] for k in moore}
    assert len(modules) == 21 and "mid_block.motion_modules.0" in modules  # 4x2 down, mid, 4x3 up
    assert sum(k.endswith(PE_SUFFIX) for k in moore) == 2 * len(modules)
    for part in FILES[:3]:
        assert _keys(f"moore_{part}") == _keys(f"musepose_{part}"), part


@pytest.mark.parametrize("release", sorted(MANIFESTS))
def test_real_release_loads_strictly(release, tmp_path):
    """Replicas of the real files load strictly into posedrive's models built at the real config."""
    cfg = _write_real_release(tmp_path, release)
    paths = {c: tmp_path / cfg.weights[c] for c in W.COMPONENTS}
    unet_cfg = json.loads(paths["unet_config"].read_text())

    ref = W.load_reference_unet(paths["reference_unet"], unet_cfg)
    assert _numel(ref) == SD15_UNET_PARAMS  # 682 keys loaded + conv_norm_out/conv_out zero-filled
    assert float(ref.conv_out.weight.detach().abs().sum()) == 0.0 and tuple(ref.conv_out.weight.shape) == (4, 320, 3, 3)

    den = W.load_denoising_unet(paths["denoising_unet"], paths["motion_module"], unet_cfg, cfg.motion)
    motion_params = _numel({k: s for k, s in _keys(f"{release}_motion_module").items() if not k.endswith(PE_SUFFIX)})
    assert _numel(den) == SD15_UNET_PARAMS + motion_params
    assert den.max_frames == _manifest(f"{release}_motion_module")["temporal_position_encoding_max_len"]
    pe = den.mid_block.motion_modules[0].transformer_blocks[0].pos_embed.pe
    torch.testing.assert_close(pe, W.sinusoidal_table(den.max_frames, 1280))
    assert tuple(den.down_blocks[0].motion_modules[0].transformer_blocks[0].attn1.to_q.weight.shape) == (320, 320)

    guider = W.load_pose_guider(paths["pose_guider"], cfg.pose_guider)
    assert _numel(guider) == _numel(_keys(f"{release}_pose_guider")) and guider.downscale == 8

    report = W.check_weights_dir(tmp_path, cfg)
    assert report.complete, report.format()
    assert {e.component: e.detail for e in report.entries}["motion_module"] == "546 tensors"  # 588 - 42 pe tables


def test_animatediff_v2_motion_module_loads(tmp_path):
    """AnimateDiff's mm_sd_v15_v2.ckpt (32-frame pe) loads into MusePose's 128-frame model; v1 is a clear error."""
    cfg = _write_real_release(tmp_path, "musepose", motion="animatediff_mm_sd_v15_v2")
    paths = {c: tmp_path / cfg.weights[c] for c in W.COMPONENTS}
    den = W.load_denoising_unet(paths["denoising_unet"], paths["motion_module"],
                                json.loads(paths["unet_config"].read_text()), cfg.motion)
    assert den.max_frames == 128  # pe rebuilt from the config, as MusePose does after dropping the stored tables

    # AnimateDiff v1 (mm_sd_v15.ckpt) has no mid-block motion module: a clear error, not a silent partial load.
    expected = {k: tuple(v.shape) for k, v in den.state_dict().items()
                if "motion_modules" in k and not k.endswith(".pos_embed.pe")}
    v1 = {k: v for k, v in _keys("animatediff_mm_sd_v15_v2").items() if not k.startswith("mid_block.")}
    converted = W.animatediff_to_diffusers(_replica(v1), "mm_sd_v15.ckpt")
    with pytest.raises(WeightsError, match=r"mm_sd_v15\.ckpt: 26 missing keys: mid_block\.motion_modules\.0\."):
        W.check_state(expected, {k: tuple(v.shape) for k, v in converted.items()}, "mm_sd_v15.ckpt")


def test_diffusers_motion_adapter_folder_loads(tmp_path):
    """A ``MotionAdapter.save_pretrained`` folder (hub ``animatediff-motion-adapter-v1-5-2``) with its pos_embed.pe."""
    from accelerate import init_empty_weights
    from diffusers import MotionAdapter

    cfg = _write_real_release(tmp_path, "moore")
    unet_cfg = json.loads((tmp_path / cfg.weights["unet_config"]).read_text())
    with init_empty_weights():
        adapter = MotionAdapter(block_out_channels=tuple(unet_cfg["block_out_channels"]), **cfg.motion)
    state = _replica({k: tuple(v.shape) for k, v in adapter.state_dict().items()})
    assert sum(k.endswith(".pos_embed.pe") for k in state) == 21
    folder = tmp_path / "motion_adapter"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(dict(adapter.config)))
    torch.save(state, folder / "diffusion_pytorch_model.bin")
    den = W.load_denoising_unet(tmp_path / cfg.weights["denoising_unet"], folder, unet_cfg, cfg.motion)
    assert den.max_frames == 32 and _numel(den) == SD15_UNET_PARAMS + _numel(
        {k: s for k, s in _keys("moore_motion_module").items() if not k.endswith(PE_SUFFIX)})


def test_real_motion_keys_round_trip():
    """Every real AnimateDiff key converts, and the inverse conversion gives back exactly the real names."""
    real = _keys("animatediff_mm_sd_v15_v2")
    converted = W.animatediff_to_diffusers(_replica(real), "mm_sd_v15_v2.ckpt")
    assert len(converted) == len(real) - sum(k.endswith(PE_SUFFIX) for k in real)
    assert all(".temporal_transformer." not in k and ".attention_blocks." not in k for k in converted)
    with torch.device("meta"):
        pe = {k.replace(".attn1.to_q.weight", ".pos_embed.pe"): torch.empty(1, 32, v.shape[0])
              for k, v in converted.items() if k.endswith(".attn1.to_q.weight")}
    back = W.diffusers_to_animatediff({**converted, **pe})
    assert {k: tuple(v.shape) for k, v in back.items()} == real


def _dump_tool():
    """``tools/dump_anchor_keys.py`` (stdlib imports only): its deterministic golden weights and input."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "tools" / "dump_anchor_keys.py"
    spec = importlib.util.spec_from_file_location("dump_anchor_keys", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_motion_module_forward_matches_anchor():
    """Converted weights in posedrive's motion module give the output Moore's own code computed (per-frame norm)."""
    from diffusers import MotionAdapter, UNet2DConditionModel

    from animate.diffusion.motion_unet import FrameGroupNorm, PoseUNetMotionModel

    tool, golden = _dump_tool(), _manifest("moore_motion_golden")
    c, f, heads = golden["channels"], golden["frames"], golden["heads"]
    weights = tool.golden_weights({k: tuple(v) for k, v in golden["keys"].items()})
    prefix = "down_blocks.0.motion_modules.0."
    state = {prefix + k: v for k, v in weights.items()}
    state.update({prefix + k: W.sinusoidal_table(v[1], v[2]) for k, v in golden["keys"].items() if k.endswith(".pe")})
    converted = {k[len(prefix):]: v for k, v in W.animatediff_to_diffusers(state, "golden").items()}

    channels = (c, 2 * c)
    unet2d = UNet2DConditionModel(block_out_channels=channels, layers_per_block=1, norm_num_groups=c, sample_size=8,
                                  down_block_types=("DownBlock2D",) * 2, up_block_types=("UpBlock2D",) * 2,
                                  cross_attention_dim=8)
    adapter = MotionAdapter(block_out_channels=channels, motion_layers_per_block=1, motion_num_attention_heads=heads,
                            motion_norm_num_groups=c, motion_max_seq_length=golden["max_len"], use_motion_mid_block=False)
    module = PoseUNetMotionModel.from_unet2d(unet2d, adapter).down_blocks[0].motion_modules[0].eval()
    assert isinstance(module.norm, FrameGroupNorm)
    own_pe = {k: v for k, v in module.state_dict().items() if k.endswith(".pe")}
    module.load_state_dict({**converted, **own_pe}, strict=True)

    x = tool.golden_input()
    expected = torch.tensor(golden["output"]).reshape(x.shape)

    def run() -> torch.Tensor:
        with torch.no_grad():
            y = module(x.transpose(1, 2).reshape(f, c, *x.shape[3:]), num_frames=f)
        return y.reshape(1, f, c, *x.shape[3:]).transpose(1, 2)

    torch.testing.assert_close(run(), expected, atol=1e-4, rtol=1e-4)
    plain = torch.nn.GroupNorm(module.norm.num_groups, c, eps=module.norm.eps)
    plain.load_state_dict(module.norm.state_dict())
    module.norm = plain  # diffusers' own joint-over-frames normalisation: measurably not the anchors' model
    joint_error = float((run() - expected).abs().max())
    assert joint_error > 0.05, joint_error


def test_missing_files_are_listed_together_before_anything_loads(comps, tmp_path, monkeypatch):
    """With pose_guider.pth and motion_module.pth gone, loading read the VAE, CLIP and the reference UNet
    (gigabytes with the real files) and then named only the motion module."""
    import diffusers

    _write_release(tmp_path, comps)
    (tmp_path / "pose_guider.pth").unlink()
    (tmp_path / "motion_module.pth").unlink()
    monkeypatch.setattr(diffusers.AutoencoderKL, "from_pretrained",
                        classmethod(lambda *a, **k: pytest.fail("loaded before the check")))
    with pytest.raises(W.MissingWeightsError, match=r"lacks 2 of its files: pose_guider .*; motion_module .*weights check"):
        W.load_components(tmp_path, _config(tmp_path))
    import shutil

    shutil.rmtree(tmp_path / "sd-vae-ft-mse")  # a missing folder too, named in the same round (was a second run)
    with pytest.raises(W.MissingWeightsError, match=r"lacks 3 of its files: .*; vae folder \(.*sd-vae-ft-mse\)"):
        W.load_components(tmp_path, _config(tmp_path))


def test_release_defaults_are_what_runs_and_one_pass_windows_are_refused(tmp_path):
    """A release YAML's defaults.seed and defaults.strength passed the config check but the renderer ran
    with seed 0 and strength 1; window: null passed and failed with a traceback after the weights loaded."""
    from animate.config import load_config
    from animate.diffusion.renderer import DiffusionRenderer
    from animate.diffusion.settings import CONFIG_DIR

    class _Pipe:  # only vae_scale_factor is read when the renderer is built
        vae_scale_factor = 8

    text = (CONFIG_DIR / "moore.yaml").read_text()
    own = tmp_path / "own.yaml"
    own.write_text(text.replace("  steps: 30", "  steps: 30\n  seed: 7\n  strength: 0.5"))
    r = DiffusionRenderer(config=str(own), pipeline=_Pipe())
    assert (r.seed, r.strength) == (7, 0.5)
    assert DiffusionRenderer(config=str(own), pipeline=_Pipe(), seed=3).seed == 3
    null = tmp_path / "null.yaml"
    null.write_text(text.replace("window: 24", "window: null"))
    with pytest.raises(ConfigError, match=r"null.yaml: defaults: diffusion option 'window' must be a number of "
                                          r"frames in \[1, 32\]"):
        load_config(**{"diffusion.config": str(null)})


def test_strength_without_init_renderer_is_refused_in_a_config():
    """renderer.options.strength: 0.3 was accepted and did nothing (a config run has no init frames)."""
    from animate.config import load_config

    with pytest.raises(ConfigError, match=r"'renderer.options.strength'.*0.3 < 1 needs init_renderer: puppet"):
        load_config(renderer="diffusion", renderer_options={"strength": 0.3})
    cfg = load_config(renderer="diffusion", renderer_options={"strength": 0.3, "init_renderer": "puppet"})
    assert cfg.renderer.options["strength"] == 0.3


def test_no_gpu_message_names_the_config_option():
    from animate.diffusion.options import resolve_device

    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    with pytest.raises(ConfigError, match=r"renderer\.options\.device: cpu") as info:
        resolve_device("cuda")
    assert "--device" not in str(info.value)
