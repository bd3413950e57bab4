"""Weight conversion, strict loading, safe unpickling and directory checks (tiny synthetic files)."""

from __future__ import annotations

import json
import os

import pytest

torch = pytest.importorskip("torch")

from animate.diffusion import weights as W  # noqa: E402
from animate.diffusion.tiny import (  # noqa: E402
    TINY_CLIP_CONFIG, TINY_MOTION_CONFIG, TINY_POSE_GUIDER_CONFIG, TINY_UNET_CONFIG, TINY_VAE_CONFIG, tiny_components,
)
from pose.errors import WeightsError  # noqa: E402

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


def test_cli_weights_check(comps, tmp_path, capsys):
    import argparse

    from animate import cli_weights

    parser = argparse.ArgumentParser(prog="posedrive")
    cli_weights.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["weights", "check", str(tmp_path)])
    assert args.func(args) == 1  # empty directory: incomplete
    out = capsys.readouterr().out
    assert out.count("MISSING") == 7 and "get it from: https://huggingface.co/stabilityai/sd-vae-ft-mse" in out
