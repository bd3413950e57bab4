"""PoseDrivePipeline on tiny random components (CPU, 2 steps)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from animate.diffusion.motion_unet import PoseUNetMotionModel
from animate.diffusion.pipeline import PoseDrivePipeline
from animate.diffusion.reference_attention import ReferenceContext, install_reference_readers
from animate.diffusion.tiny import tiny_components
from pose.errors import ConfigError
from tests.conftest import DATA

SIZE = 32
STEPS = 2


def _image(path, frames: int | None = None) -> np.ndarray:
    import cv2

    im = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    return cv2.resize(im, (SIZE, SIZE), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def pipe() -> PoseDrivePipeline:
    torch.set_num_threads(1)  # tiny tensors: threading only adds contention on shared CI cores
    p = PoseDrivePipeline(**tiny_components())
    p.set_progress_bar_config(disable=True)
    return p


@pytest.fixture(scope="module")
def inputs() -> dict:
    import cv2

    ref = _image(DATA / "ref/musepose_ref.png")
    ref2 = _image(DATA / "ref/anyone-2.png")
    cap = cv2.VideoCapture(str(DATA / "skeleton/anyone-video-1_kps_short.mp4"))
    frames = []
    while len(frames) < 6:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(cv2.resize(cv2.cvtColor(f, cv2.COLOR_BGR2RGB), (SIZE, SIZE), interpolation=cv2.INTER_AREA))
    cap.release()
    return dict(ref=ref, ref2=ref2, poses=np.stack(frames))


def _run(pipe, poses, ref, seed=0, **kw):
    return pipe(poses, ref, num_inference_steps=STEPS, generator=torch.Generator().manual_seed(seed), **kw).frames


def test_shapes_and_determinism(pipe, inputs):
    a = _run(pipe, inputs["poses"], inputs["ref"])
    b = _run(pipe, inputs["poses"], inputs["ref"])
    assert a.shape == (6, SIZE, SIZE, 3) and a.dtype == np.float32
    assert 0.0 <= a.min() and a.max() <= 1.0
    np.testing.assert_array_equal(a, b)
    c = _run(pipe, inputs["poses"], inputs["ref"], seed=1)
    assert np.abs(a - c).mean() > 1e-3


def test_output_types(pipe, inputs):
    pt = _run(pipe, inputs["poses"][:2], inputs["ref"], output_type="pt")
    assert tuple(pt.shape) == (2, 3, SIZE, SIZE)
    pil = _run(pipe, inputs["poses"][:2], inputs["ref"], output_type="pil")
    assert len(pil) == 2 and pil[0].size == (SIZE, SIZE)
    lat = _run(pipe, inputs["poses"][:2], inputs["ref"], output_type="latent")
    assert tuple(lat.shape) == (1, 4, 2, SIZE // 2, SIZE // 2)
    dec = torch.cat(list(pipe.iter_decode(lat, decode_chunk_size=1)))
    np.testing.assert_allclose(dec.numpy(), pt.numpy(), atol=1e-5)


def test_reference_and_pose_change_output(pipe, inputs):
    base = _run(pipe, inputs["poses"], inputs["ref"])
    other_ref = _run(pipe, inputs["poses"], inputs["ref2"])
    other_pose = _run(pipe, np.zeros_like(inputs["poses"]), inputs["ref"])
    assert np.abs(base - other_ref).mean() > 1e-3
    assert np.abs(base - other_pose).mean() > 1e-3


def test_unconditional_half_ignores_reference(pipe, inputs):
    enc_a = pipe.encode_reference(inputs["ref"], SIZE, SIZE)
    enc_b = pipe.encode_reference(inputs["ref2"], SIZE, SIZE)
    assert len(enc_a.bank) == 6  # tiny UNet: 2 down + 1 mid + 3 up spatial self-attentions
    torch.manual_seed(0)
    sample = torch.randn(2, 4, 3, SIZE // 2, SIZE // 2)
    pf = pipe.pose_features(inputs["poses"], [0, 1, 2])
    out = []
    for enc in (enc_a, enc_b):
        emb = torch.cat([torch.zeros_like(enc.image_embeds), enc.image_embeds])
        ctx = ReferenceContext(enc.bank, 3, torch.tensor([False, True]))
        with torch.no_grad():
            out.append(pipe.denoising_unet(sample, 500, emb, pose_features=pf, reference=ctx).sample)
    torch.testing.assert_close(out[0][0], out[1][0])  # uncond: same whatever the reference
    assert (out[0][1] - out[1][1]).abs().mean() > 1e-4  # cond: depends on it


def test_context_windows(pipe, inputs):
    poses = inputs["poses"]
    one_pass = _run(pipe, poses, inputs["ref"], context_frames=None)
    fits = _run(pipe, poses, inputs["ref"], context_frames=8, context_overlap=2)
    np.testing.assert_array_equal(one_pass, fits)
    windowed = _run(pipe, poses, inputs["ref"], context_frames=4, context_overlap=2, context_weighting="triangular")
    assert windowed.shape == one_pass.shape and np.abs(windowed - one_pass).mean() > 0


def test_longer_than_positional_encoding(pipe, inputs):
    max_len = pipe.denoising_unet.max_frames  # 8 in the tiny config
    poses = np.concatenate([inputs["poses"]] * 4)[: max_len * 2 + 3]
    out = _run(pipe, poses, inputs["ref"], context_frames=max_len, context_overlap=2, output_type="latent")
    assert out.shape[2] == len(poses)
    with pytest.raises(ValueError, match="max_seq_length"):
        _run(pipe, poses, inputs["ref"], context_frames=max_len + 1)
    with pytest.raises(ValueError, match="max_seq_length"):
        _run(pipe, poses, inputs["ref"], context_frames=None)


def test_check_inputs(pipe, inputs):
    with pytest.raises(ValueError, match="strength"):
        _run(pipe, inputs["poses"], inputs["ref"], strength=1.5, init_video=inputs["poses"])
    with pytest.raises(ValueError, match="output_type 'jpg'"):
        _run(pipe, inputs["poses"], inputs["ref"], output_type="jpg")
    with pytest.raises(ValueError, match="multiples of 2"):
        pipe(inputs["poses"][:, :31], inputs["ref"][:31], num_inference_steps=1)
    with pytest.raises(ValueError, match="context overlap"):
        _run(pipe, inputs["poses"], inputs["ref"], context_frames=4, context_overlap=4)


def test_hybrid_init_video(pipe, inputs):
    init = np.repeat(inputs["ref"][None], len(inputs["poses"]), axis=0)
    recon = _run(pipe, inputs["poses"], inputs["ref"], init_video=init, strength=0.0)
    direct = torch.cat(list(pipe.iter_decode(pipe.encode_video(init, 4)))).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(recon, direct, atol=1e-5)  # strength 0: no step, the init video's reconstruction
    half = _run(pipe, inputs["poses"], inputs["ref"], init_video=init, strength=0.5)
    full = _run(pipe, inputs["poses"], inputs["ref"], init_video=init, strength=1.0)
    noise = _run(pipe, inputs["poses"], inputs["ref"])
    other_init = np.repeat(inputs["ref2"][None], len(inputs["poses"]), axis=0)
    half_other = _run(pipe, inputs["poses"], inputs["ref"], init_video=other_init, strength=0.5)
    assert np.abs(half - half_other).mean() > 1e-3  # strength 0.5: the init video shapes the result
    timesteps = pipe.get_timesteps(STEPS, 0.5, torch.device("cpu"))
    start = pipe.prepare_latents(len(init), SIZE, SIZE, timesteps, torch.Generator().manual_seed(0), None, init, 4)
    clean = pipe.encode_video(init, 4)
    alpha = pipe.scheduler.alphas_cumprod[int(timesteps[0])]
    eps = torch.randn(start.shape, generator=torch.Generator().manual_seed(0))
    assert 0.1 < float(alpha) < 0.9  # a genuinely intermediate timestep
    torch.testing.assert_close(start, alpha.sqrt() * clean + (1 - alpha).sqrt() * eps)  # img2img noising
    np.testing.assert_allclose(full, noise, atol=1e-4)  # strength 1 with zero-SNR: pure noise, init ignored
    seen = []
    _run(pipe, inputs["poses"], inputs["ref"], init_video=init, strength=0.5,
         callback_on_step_end=lambda p, i, t, d: seen.append(int(t)) or d)
    assert len(seen) == 1  # 2 steps x strength 0.5


def test_reader_writer_mismatch_raises():
    c = tiny_components()
    with pytest.raises(ConfigError, match="self-attention blocks"):
        install_reference_readers(c["denoising_unet"], ["down_blocks.0.attentions.0.transformer_blocks.0.attn1"])


def test_save_load_round_trip(pipe, inputs, tmp_path):
    a = _run(pipe, inputs["poses"][:3], inputs["ref"])
    pipe.denoising_unet.save_pretrained(tmp_path / "unet")
    pipe.pose_guider.save_pretrained(tmp_path / "guider")
    assert (tmp_path / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    from animate.diffusion.pose_guider import PoseGuider

    c = dict(tiny_components(seed=5))  # different random weights, replaced by the loaded ones
    c["denoising_unet"] = PoseUNetMotionModel.from_pretrained(tmp_path / "unet")
    c["pose_guider"] = PoseGuider.from_pretrained(tmp_path / "guider")
    for k in ("vae", "image_encoder", "reference_unet"):
        c[k] = getattr(pipe, k)
    p2 = PoseDrivePipeline(**c)
    p2.set_progress_bar_config(disable=True)
    assert isinstance(p2.denoising_unet, PoseUNetMotionModel)
    np.testing.assert_array_equal(a, _run(p2, inputs["poses"][:3], inputs["ref"]))
