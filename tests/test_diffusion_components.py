"""Context windows, reference preprocessing, runtime options and the DiffusionRenderer (tiny models, CPU)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from animate.diffusion.context import ContextConfig, context_windows, window_weights
from pose.errors import ConfigError, InputError
from pose.sequence import PoseFrame, PoseSequence, empty_keypoints
from reference.preprocess import canvas_fit, fit_image, unfit_frame
from tests.conftest import DATA


def test_context_windows_cover_and_bound():
    wins = context_windows(50, ContextConfig(window=24, overlap=4))
    assert wins[0] == list(range(24)) and wins[-1] == list(range(26, 50))
    assert all(len(w) == 24 for w in wins)
    assert sorted(set(i for w in wins for i in w)) == list(range(50))
    assert context_windows(5, ContextConfig(window=24)) == [list(range(5))]
    strided = context_windows(9, ContextConfig(window=4, overlap=1, stride=2))
    assert sorted(set(i for w in strided for i in w)) == list(range(9))
    assert all(np.all(np.diff(w) == 2) for w in strided)
    tri = window_weights(5, "triangular")
    np.testing.assert_allclose(tri, [1 / 3, 2 / 3, 1, 2 / 3, 1 / 3], rtol=1e-6)
    with pytest.raises(ValueError, match="overlap"):
        context_windows(10, ContextConfig(window=4, overlap=4))


def test_fit_pads_without_distortion():
    image = cv2.imread(str(DATA / "ref/musepose_ref.png"))[:, :, ::-1].copy()  # 704x1216
    fit = canvas_fit((704, 1216), (512, 512), "pad")
    out = fit_image(image, fit)
    assert out.shape == (512, 512, 3)
    assert fit.scale == pytest.approx(512 / 1216)
    assert fit.matrix[0, 0] == fit.matrix[1, 1]  # uniform scale: no stretching
    assert out[:, :50].max() == 0 and out[:, -50:].max() == 0  # side padding
    back = unfit_frame(out, fit)
    assert back.shape == image.shape
    assert np.abs(back.astype(float) - image).mean() < 12  # only resampling loss
    crop = canvas_fit((704, 1216), (512, 512), "crop")
    assert crop.scale == pytest.approx(512 / 704)
    with pytest.raises(InputError, match="fit mode"):
        canvas_fit((1, 1), (1, 1), "stretch")


def test_options_errors():
    torch = pytest.importorskip("torch")
    from animate.diffusion.options import resolve_device, resolve_dtype

    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            resolve_device("cuda")
    assert resolve_device("cpu").type == "cpu"
    assert resolve_dtype("fp16", torch.device("cpu")) == torch.float32  # documented fallback
    assert resolve_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(ConfigError, match="dtype 'fp8'"):
        resolve_dtype("fp8", torch.device("cpu"))


def _draw(frame: PoseFrame, style: str = "openpose", size=None) -> np.ndarray:
    """Minimal stand-in for pose.render.render_pose: body joints as dots."""
    w, h = size
    img = np.zeros((h, w, 3), np.uint8)
    for x, y in frame.body[:, :2][frame.visible()[:18]]:
        cv2.circle(img, (int(x), int(y)), 2, (255, 0, 0), -1)
    return img


def _poses(n: int, w: int, h: int) -> PoseSequence:
    kps = empty_keypoints(n)
    rng = np.random.default_rng(0)
    base = rng.uniform([w * 0.3, h * 0.1], [w * 0.7, h * 0.9], size=(18, 2))
    for t in range(n):
        kps[t, :18, :2] = base + [3 * t, 0]
        kps[t, :18, 2] = 1.0
    return PoseSequence(kps, w, h, fps=24)


def test_renderer_streams_canvas_frames(monkeypatch):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from animate.diffusion.pipeline import PoseDrivePipeline
    from animate.diffusion.renderer import DiffusionRenderer
    from animate.diffusion.tiny import tiny_components
    from animate.renderer import create_renderer

    pipe = PoseDrivePipeline(**tiny_components())
    pipe.set_progress_bar_config(disable=True)
    r = create_renderer("diffusion", pipeline=pipe, pose_drawer=_draw, width=32, height=32, steps=2, window=8,
                        overlap=2, decode_chunk_size=3, seed=0)
    assert isinstance(r, DiffusionRenderer) and r.pose_style == "openpose"
    ref = cv2.resize(cv2.imread(str(DATA / "ref/anyone-3.png"))[:, :, ::-1], (40, 64)).copy()
    r.prepare(ref, PoseFrame(empty_keypoints(), 40, 64))
    poses = _poses(11, 40, 64)
    it = r.render(poses)
    first = next(it)  # a generator: frames stream out
    frames = [first] + list(it)
    assert len(frames) == 11 and all(f.shape == (64, 40, 3) and f.dtype == np.uint8 for f in frames)
    again = list(r.render(poses))
    np.testing.assert_array_equal(np.stack(frames), np.stack(again))  # seeded
    # Long videos spool skeleton frames to disk; the result must not change.
    import animate.diffusion.renderer as renderer_module

    monkeypatch.setattr(renderer_module, "MAX_IN_MEMORY_POSE_FRAMES", 4)
    np.testing.assert_array_equal(np.stack(frames), np.stack(list(r.render(poses))))
    r.strength = 0.5
    hybrid = list(r.render(poses, init_frames=[ref] * 11))
    assert np.abs(np.stack(hybrid).astype(int) - np.stack(frames)).mean() > 0.5
    with pytest.raises(InputError, match="retarget"):
        list(r.render(_poses(3, 50, 64)))
    # Hybrid mode fed by another renderer equals hybrid mode fed with that renderer's frames by hand.
    import tests.helpers  # noqa: F401  (registers the "stamp" renderer)

    h = create_renderer("diffusion", pipeline=pipe, pose_drawer=_draw, width=32, height=32, steps=2, window=8,
                        overlap=2, decode_chunk_size=3, seed=0, strength=0.5, init_renderer="stamp")
    h.prepare(ref, PoseFrame(empty_keypoints(), 40, 64))
    stamp = create_renderer("stamp")
    stamp.prepare(ref, PoseFrame(empty_keypoints(), 40, 64))
    by_hand = list(r.render(poses, init_frames=list(stamp.render(poses))))
    np.testing.assert_array_equal(np.stack(list(h.render(poses))), np.stack(by_hand))
    with pytest.raises(ConfigError, match="init_renderer"):
        create_renderer("diffusion", pipeline=pipe, init_renderer="diffusion")
    r.close()
    r.close()


@pytest.mark.parametrize("config", ["moore", "musepose"])
def test_release_styles_render_with_pose_render(config):
    pytest.importorskip("pose.render")
    pytest.importorskip("torch")
    from animate.diffusion.renderer import DiffusionRenderer

    class _Pipe:  # only vae_scale_factor is read before rendering skeletons
        vae_scale_factor = 8

    r = DiffusionRenderer(config=config, pipeline=_Pipe())
    with pytest.raises(ConfigError, match="diffusion option 'overlap' must be smaller than the window"):
        DiffusionRenderer(config=config, pipeline=_Pipe(), window=8, overlap=8)  # not at the first window
    assert r.size == ((512, 784) if config == "moore" else (768, 768))
    images = r._pose_images(_poses(2, *r.size))
    assert images.shape == (2, r.size[1], r.size[0], 3) and images.max() > 0
