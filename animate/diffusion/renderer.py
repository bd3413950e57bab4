"""``DiffusionRenderer``: the :class:`~animate.renderer.Renderer` of the GPU path (name ``"diffusion"``).

``prepare`` fits the reference to the release's generation size (aspect kept, padded or cropped, see
:mod:`reference.preprocess`) and encodes it once (VAE latent mean, ReferenceNet features, CLIP token). ``render``
maps the driving poses with the same transform, draws them in the release's skeleton style, denoises with context
windows and yields uint8 RGB frames on the caller's canvas, decoding the latents chunk by chunk.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch

from animate.renderer import Renderer
from pose.errors import ConfigError, InputError
from pose.sequence import PoseFrame, PoseSequence
from reference.preprocess import CanvasFit, canvas_fit, fit_image, round_to_multiple, unfit_frame

from .options import RuntimeOptions, resolve_device, resolve_dtype
from .pipeline import PoseDrivePipeline, ReferenceEncoding
from .settings import DiffusionConfig, check_runtime_options, generation_settings, load_diffusion_config
from .weights import load_components

# Above this many frames, per-frame images (skeletons, hybrid-mode init frames) are spooled to a temporary
# file instead of RAM, so memory stays bounded for videos of any length.
MAX_IN_MEMORY_POSE_FRAMES = 256


def _frame_buffer(n: int, height: int, width: int, spool: contextlib.ExitStack | None) -> np.ndarray:
    """``(n, height, width, 3)`` uint8 buffer: in RAM for short videos, a disk-backed memmap for long ones.

    The memmap's temporary file is closed (and so deleted) when ``spool`` closes; without a ``spool`` the
    buffer is always in RAM.
    """
    shape = (n, height, width, 3)
    if spool is None or n <= MAX_IN_MEMORY_POSE_FRAMES:
        return np.empty(shape, np.uint8)
    tmp = spool.enter_context(tempfile.TemporaryFile(prefix="posedrive-frames-"))
    return np.memmap(tmp, dtype=np.uint8, mode="w+", shape=shape)

logger = logging.getLogger(__name__)

PoseDrawer = Callable[..., np.ndarray]


def _default_pose_drawer() -> PoseDrawer:
    try:
        from pose.render import render_pose
    except ImportError as exc:
        raise ConfigError(f"pose.render is unavailable ({exc}); install posedrive completely") from None
    return render_pose


class DiffusionRenderer(Renderer):
    """Animate Anyone-style diffusion renderer.

    Args:
        weights_dir: directory laid out as in ``docs/WEIGHTS.md`` (not needed when ``pipeline`` is given).
        config: release config name (``"moore"``, ``"musepose"``) or YAML path.
        device: ``"auto"``, ``"cuda"``, ``"cuda:N"`` or ``"cpu"``; a requested but absent GPU is an error.
        dtype: ``"fp16"`` (default), ``"bf16"`` or ``"fp32"`` (fp16 on CPU falls back to fp32 with a warning).
        steps, guidance_scale, window, overlap, stride, weighting: generation settings (default: the config's).
        width, height: generation size (default: the config's; rounded to multiples of 8).
        fit: ``"pad"`` or ``"crop"`` when the canvas aspect differs from the generation size.
        seed: noise seed (same seed, same video; default: the config's, else 0).
        strength: hybrid mode, how much of ``init_frames`` (``render(..., init_frames=...)``) is re-noised; 1 = ignore
            (default: the config's, else 1).
        init_renderer: hybrid mode without hand-made init frames: name of a renderer (``"puppet"``) whose output for
            the same reference and poses becomes ``init_frames`` whenever ``strength < 1``.
        decode_chunk_size: frames per VAE decode call.
        cpu_offload, vae_slicing, vae_tiling, compile: memory/speed options (:class:`RuntimeOptions`).
        pose_style: skeleton drawing style (default: the config's ``pose_style``).
        pipeline: a ready :class:`PoseDrivePipeline` (tests, custom models); ``weights_dir`` is then ignored.
        pose_drawer: ``f(frame, style=..., size=(W, H)) -> (H, W, 3) uint8`` (default ``pose.render.render_pose``).
    """

    name = "diffusion"

    def __init__(self, weights_dir: str | None = None, config: str | DiffusionConfig = "moore", device: str = "auto",
                 dtype: str = "fp16", steps: int | None = None, guidance_scale: float | None = None,
                 window: int | None = None, overlap: int | None = None, stride: int | None = None,
                 weighting: str | None = None, width: int | None = None, height: int | None = None,
                 fit: str | None = None, seed: int | None = None, strength: float | None = None,
                 decode_chunk_size: int | None = None,
                 cpu_offload: bool = False, vae_slicing: bool = False, vae_tiling: bool = False,
                 compile: bool = False, pose_style: str | None = None, pipeline: PoseDrivePipeline | None = None,
                 pose_drawer: PoseDrawer | None = None, init_renderer: str | None = None) -> None:
        self.config = load_diffusion_config(config)
        check_runtime_options({"dtype": dtype, "device": device, "cpu_offload": cpu_offload,
                               "vae_slicing": vae_slicing, "vae_tiling": vae_tiling, "compile": compile,
                               "pose_style": pose_style, "init_renderer": init_renderer})
        self.settings = generation_settings(
            self.config, steps=steps, guidance_scale=guidance_scale, window=window, overlap=overlap, stride=stride,
            weighting=weighting, width=width, height=height, fit=fit, seed=seed, strength=strength,
            decode_chunk_size=decode_chunk_size)
        g = self.settings
        self.options = RuntimeOptions(device, dtype, cpu_offload, vae_slicing, vae_tiling, compile)
        self.steps, self.guidance_scale, self.seed, self.strength = g.steps, g.guidance_scale, g.seed, g.strength
        self.window, self.overlap, self.stride, self.weighting = g.window, g.overlap, g.stride, g.weighting
        self.fit_mode, self.size, self.decode_chunk_size = g.fit, (g.width, g.height), g.decode_chunk_size
        self.pose_style = pose_style or self.config.pose_style
        self._draw = pose_drawer
        self._init_renderer: Renderer | None = None
        if init_renderer is not None:
            from animate.renderer import create_renderer

            self._init_renderer = create_renderer(init_renderer)
        self._fit: CanvasFit | None = None
        self._encoding: ReferenceEncoding | None = None
        self.pipe = pipeline if pipeline is not None else self._build(weights_dir)
        factor = self.pipe.vae_scale_factor
        self.size = (round_to_multiple(self.size[0], factor), round_to_multiple(self.size[1], factor))

    def _build(self, weights_dir: str | None) -> PoseDrivePipeline:
        if weights_dir is None:
            raise ConfigError("the diffusion renderer needs a weights folder laid out as in docs/WEIGHTS.md: pass "
                              "--weights DIR (Python: Animator(renderer=\"diffusion\", weights=DIR))")
        opts = self.options
        device = resolve_device(opts.device)
        dtype = resolve_dtype(opts.dtype, device)
        if opts.cpu_offload and device.type != "cuda":  # before minutes of loading weights
            raise ConfigError("cpu_offload needs a CUDA device; set renderer.options.cpu_offload: false in the "
                              "config, or run on a GPU")
        pipe = PoseDrivePipeline(**load_components(weights_dir, self.config, dtype=dtype))
        if opts.cpu_offload:
            pipe.enable_model_cpu_offload(device=device)
        else:
            pipe.to(device)
        if opts.vae_slicing:
            pipe.vae.enable_slicing()
        if opts.vae_tiling:
            pipe.vae.enable_tiling()
        if opts.compile:
            pipe.denoising_unet = torch.compile(pipe.denoising_unet)
        return pipe

    # --- Renderer API -------------------------------------------------------------------------------
    def prepare(self, reference: np.ndarray, reference_pose: PoseFrame, mask: np.ndarray | None = None) -> None:
        """Fit the reference to the generation size and encode it once (``mask`` is not used by this renderer)."""
        reference = np.asarray(reference)
        if reference.ndim != 3 or reference.shape[2] != 3 or reference.dtype != np.uint8:
            raise InputError(f"reference image must be (H, W, 3) uint8 RGB, got {reference.shape} {reference.dtype}")
        canvas = (reference.shape[1], reference.shape[0])
        self._fit = canvas_fit(canvas, self.size, self.fit_mode)
        fitted = fit_image(reference, self._fit)
        self._encoding = self.pipe.encode_reference(fitted, self.size[1], self.size[0])
        if self._init_renderer is not None:
            self._init_renderer.prepare(reference, reference_pose, mask)
        elif mask is not None:
            logger.debug("diffusion renderer ignores the character mask")

    def _pose_images(self, poses: PoseSequence, spool: contextlib.ExitStack | None = None) -> np.ndarray:
        """Skeleton frames of ``poses`` at the generation size.

        Long videos spool them to a temporary file (a disk-backed memmap registered on ``spool``) so RAM
        stays bounded whatever the length; the pipeline only reads one window at a time.
        """
        draw = self._draw or _default_pose_drawer()
        out = _frame_buffer(len(poses), self.size[1], self.size[0], spool)
        for i, frame in enumerate(poses):
            out[i] = draw(frame, style=self.pose_style, size=self.size)
        return out

    def render(self, poses: PoseSequence, init_frames: Iterable[np.ndarray] | None = None) -> Iterator[np.ndarray]:
        """Yield one ``(H, W, 3)`` uint8 RGB frame per pose, on the reference's canvas.

        Args:
            poses: driving poses on the reference canvas.
            init_frames: optional frames (e.g. the puppet renderer's output, canvas size) to start from, re-noised
                to the constructor's ``strength`` (hybrid mode).
        """
        if self._fit is None or self._encoding is None:
            raise InputError("call prepare(reference, reference_pose) before render()")
        canvas = self._fit.src_size
        if (poses.width, poses.height) != canvas:
            raise InputError(f"poses are on a {poses.width}x{poses.height} canvas but the reference is "
                             f"{canvas[0]}x{canvas[1]}; retarget them onto the reference first")
        if len(poses) == 0:
            return
        if init_frames is None and self._init_renderer is not None and self.strength < 1.0:
            init_frames = self._init_renderer.render(poses)
        mapped = poses.transformed(self._fit.matrix, *self.size)
        with contextlib.ExitStack() as spool:
            yield from self._render_mapped(mapped, init_frames, spool)

    def _render_mapped(self, mapped: PoseSequence, init_frames: Iterable[np.ndarray] | None,
                       spool: contextlib.ExitStack) -> Iterator[np.ndarray]:
        pose_images = self._pose_images(mapped, spool)
        init = None
        if init_frames is not None and self.strength < 1.0:
            init = _frame_buffer(len(mapped), self.size[1], self.size[0], spool)
            count = 0
            for count, frame in enumerate(init_frames, 1):
                if count > len(init):
                    break
                init[count - 1] = fit_image(np.asarray(frame), self._fit)
            if count != len(init):
                raise InputError(f"hybrid mode needs one init frame per pose: got {count} for {len(init)} poses")
        generator = torch.Generator(device="cpu").manual_seed(self.seed)
        try:
            self.pipe.check_window(len(pose_images), self.window, self.stride)
        except ValueError as exc:  # a window longer than the motion modules' positions (window: null)
            raise ConfigError(f"diffusion renderer: {exc}") from None
        latents = self.pipe(pose_images, reference_encoding=self._encoding, height=self.size[1], width=self.size[0],
                            num_inference_steps=self.steps, guidance_scale=self.guidance_scale, init_video=init,
                            strength=self.strength, context_frames=self.window, context_overlap=self.overlap,
                            context_stride=self.stride, context_weighting=self.weighting, generator=generator,
                            decode_chunk_size=self.decode_chunk_size, output_type="latent").frames
        for chunk in self.pipe.iter_decode(latents, self.decode_chunk_size):
            for image in chunk.permute(0, 2, 3, 1).numpy():
                yield unfit_frame(np.round(image * 255).astype(np.uint8), self._fit)

    def close(self) -> None:
        """Drop the models and the reference encoding (safe to call twice)."""
        self._encoding = None
        self.pipe = None  # type: ignore[assignment]
        if self._init_renderer is not None:
            self._init_renderer.close()
            self._init_renderer = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def describe(self) -> dict[str, Any]:
        """Settings in effect (for logs and reports)."""
        return dict(config=self.config.name, size=self.size, steps=self.steps, guidance_scale=self.guidance_scale,
                    window=self.window, overlap=self.overlap, stride=self.stride, weighting=self.weighting,
                    fit=self.fit_mode, seed=self.seed, strength=self.strength, pose_style=self.pose_style)
