"""``PoseDrivePipeline``: reference image + skeleton frames -> video, Animate Anyone-style, on diffusers.

Steps of ``__call__``:

1. check the inputs (``ValueError`` naming the bad value);
2. encode the reference once (:meth:`PoseDrivePipeline.encode_reference`): VAE latent mean, CLIP image token,
   ReferenceNet self-attention features -- or reuse a :class:`ReferenceEncoding` given by the caller;
3. set the scheduler's timesteps (truncated by ``strength`` when an ``init_video`` is given, img2img style);
4. prepare the latents: seeded noise, or the VAE latents of ``init_video`` noised to the first timestep;
5. denoise: at every step, every context window is predicted (pose features added after ``conv_in``,
   reference attention, classifier-free guidance with an unconditional half that sees neither the reference
   features nor the image token) and the overlapping predictions are blended per frame;
6. decode the latents in chunks of ``decode_chunk_size`` frames (``output_type="latent"`` skips this; the
   renderer then streams :meth:`PoseDrivePipeline.iter_decode`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image
import torch
from diffusers import AutoencoderKL, DiffusionPipeline, UNet2DConditionModel
from diffusers.schedulers import KarrasDiffusionSchedulers
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

from reference.clip_encoder import ReferenceImageEncoder
from reference.referencenet import ReferenceBank, compute_reference_features, install_reference_writers

from .context import ContextConfig, context_windows, window_weights
from .motion_unet import PoseUNetMotionModel
from .pose_guider import PoseGuider
from .reference_attention import ReferenceContext, install_reference_readers

logger = logging.getLogger(__name__)

OUTPUT_TYPES = ("np", "pt", "pil", "latent")
ImageLike = np.ndarray | PIL.Image.Image


@dataclass
class ReferenceEncoding:
    """Everything the denoising loop needs from the reference image, computed once per video.

    Attributes:
        latents: ``(1, C, h, w)`` scaled VAE latent mean of the reference.
        image_embeds: ``(1, 1, D)`` CLIP image token.
        bank: ReferenceNet self-attention inputs.
        size: ``(width, height)`` of the generation.
    """

    latents: torch.Tensor
    image_embeds: torch.Tensor
    bank: ReferenceBank
    size: tuple[int, int]


@dataclass
class PoseDrivePipelineOutput(BaseOutput):
    """Output of :class:`PoseDrivePipeline`.

    Attributes:
        frames: ``"np"``: ``(F, H, W, 3)`` float32 in [0, 1]; ``"pt"``: ``(F, 3, H, W)`` float in [0, 1];
            ``"pil"``: list of ``F`` images; ``"latent"``: ``(1, C, F, h, w)`` latents.
    """

    frames: np.ndarray | torch.Tensor | list[PIL.Image.Image]


def _as_uint8_frames(frames: Any, name: str) -> np.ndarray:
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().numpy()
    if isinstance(frames, (list, tuple)):
        frames = np.stack([np.asarray(f) for f in frames]) if len(frames) else np.zeros((0, 1, 1, 3), np.uint8)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"{name} must be F frames of (H, W, 3) RGB, got an array of shape {frames.shape}")
    if frames.dtype != np.uint8:
        if frames.min() < 0 or frames.max() > 1:
            raise ValueError(f"{name} as floats must lie in [0, 1], got range [{frames.min()}, {frames.max()}]")
        frames = np.round(frames * 255).astype(np.uint8)
    return frames


class PoseDrivePipeline(DiffusionPipeline):
    """Pose-driven character animation (ReferenceNet + PoseGuider + motion UNet).

    Args:
        vae: ``AutoencoderKL`` (``sd-vae-ft-mse``).
        image_encoder: ``CLIPVisionModelWithProjection`` (``sd-image-variations-diffusers/image_encoder``).
        feature_extractor: its ``CLIPImageProcessor``.
        reference_unet: the ReferenceNet, a ``UNet2DConditionModel``.
        denoising_unet: a :class:`PoseUNetMotionModel`.
        pose_guider: a :class:`PoseGuider`.
        scheduler: a diffusers scheduler (DDIM, v-prediction, zero-SNR, trailing spacing by default).
    """

    model_cpu_offload_seq = "image_encoder->reference_unet->pose_guider->denoising_unet->vae"
    _callback_tensor_inputs = ["latents", "noise_pred"]

    def __init__(self, vae: AutoencoderKL, image_encoder: CLIPVisionModelWithProjection,
                 feature_extractor: CLIPImageProcessor, reference_unet: UNet2DConditionModel,
                 denoising_unet: PoseUNetMotionModel, pose_guider: PoseGuider,
                 scheduler: KarrasDiffusionSchedulers) -> None:
        super().__init__()
        self.register_modules(vae=vae, image_encoder=image_encoder, feature_extractor=feature_extractor,
                              reference_unet=reference_unet, denoising_unet=denoising_unet,
                              pose_guider=pose_guider, scheduler=scheduler)
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        writers = install_reference_writers(self.reference_unet)
        install_reference_readers(self.denoising_unet, writers)

    # --- reference ---------------------------------------------------------------------------------
    @property
    def _model_dtype(self) -> torch.dtype:
        return self.denoising_unet.dtype

    @torch.no_grad()
    def encode_reference(self, reference_image: ImageLike, height: int, width: int) -> ReferenceEncoding:
        """Encode the reference once: VAE latent mean, CLIP token and ReferenceNet features.

        Args:
            reference_image: ``(height, width, 3)`` uint8 RGB (already fitted to the generation size, see
                :mod:`reference.preprocess`) or a PIL image of that size.
            height, width: generation size in pixels (multiples of the VAE factor).
        """
        image = np.asarray(reference_image.convert("RGB")) if isinstance(reference_image, PIL.Image.Image) \
            else np.asarray(reference_image)
        if image.shape != (height, width, 3) or image.dtype != np.uint8:
            raise ValueError(f"reference_image must be ({height}, {width}, 3) uint8 RGB, got {image.shape} {image.dtype}")
        device = self._execution_device
        encoder = ReferenceImageEncoder(self.image_encoder, self.feature_extractor)
        embeds = encoder.encode(image, device=device, dtype=self._model_dtype)
        pixels = torch.from_numpy(image).permute(2, 0, 1)[None].to(device=device, dtype=self.vae.dtype)
        pixels = pixels / 127.5 - 1.0
        latents = self.vae.encode(pixels).latent_dist.mean * self.vae.config.scaling_factor
        latents = latents.to(self.reference_unet.dtype)
        bank = compute_reference_features(self.reference_unet, latents, embeds.to(self.reference_unet.dtype))
        logger.debug("reference encoded: %d attention features, %.1f MB", len(bank), bank.nbytes / 2**20)
        return ReferenceEncoding(latents, embeds, bank, (width, height))

    # --- inputs ------------------------------------------------------------------------------------
    def check_inputs(self, pose_images: np.ndarray, height: int, width: int, num_inference_steps: int,
                     guidance_scale: float, strength: float, init_video: np.ndarray | None,
                     context: ContextConfig, output_type: str, decode_chunk_size: int,
                     reference_image: ImageLike | None, reference_encoding: ReferenceEncoding | None,
                     callback_on_step_end_tensor_inputs: Sequence[str] | None) -> None:
        """Validate the arguments of ``__call__``; raises ``ValueError`` naming the bad value."""
        factor = self.vae_scale_factor
        if height % factor or width % factor or height <= 0 or width <= 0:
            raise ValueError(f"height and width must be positive multiples of {factor}, got {width}x{height}")
        if pose_images.shape[1:3] != (height, width):
            raise ValueError(f"pose_images are {pose_images.shape[2]}x{pose_images.shape[1]}, expected {width}x{height}")
        if len(pose_images) == 0:
            raise ValueError("pose_images is empty; give at least one skeleton frame")
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        if guidance_scale < 0:
            raise ValueError(f"guidance_scale must be >= 0, got {guidance_scale}")
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {strength}")
        if init_video is not None and init_video.shape != pose_images.shape:
            raise ValueError(f"init_video has shape {init_video.shape}, expected the shape of pose_images "
                             f"{pose_images.shape}")
        context.validate()
        self.check_window(len(pose_images), context.window, context.stride)
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type '{output_type}' is unknown; use one of {', '.join(OUTPUT_TYPES)}")
        if decode_chunk_size < 1:
            raise ValueError(f"decode_chunk_size must be >= 1, got {decode_chunk_size}")
        if reference_image is None and reference_encoding is None:
            raise ValueError("give reference_image or reference_encoding")
        if reference_encoding is not None and reference_encoding.size != (width, height):
            raise ValueError(f"reference_encoding was made at {reference_encoding.size}, not {(width, height)}")
        bad = [k for k in callback_on_step_end_tensor_inputs or [] if k not in self._callback_tensor_inputs]
        if bad:
            raise ValueError(f"callback_on_step_end_tensor_inputs {bad} not in {self._callback_tensor_inputs}")

    def check_window(self, frames: int, window: int | None, stride: int = 1) -> None:
        """Raise ``ValueError`` when the context windows over ``frames`` frames would be longer than the motion
        modules' positional encoding (``window=None``: one pass over all frames)."""
        max_frames = self.denoising_unet.max_frames
        longest = frames if window is None else min(window, -(-frames // stride))
        if longest > max_frames:
            raise ValueError(f"a context window of {longest} frames exceeds the motion modules' max_seq_length "
                             f"{max_frames}; set window <= {max_frames}")

    # --- building blocks ---------------------------------------------------------------------------
    def get_timesteps(self, num_inference_steps: int, strength: float, device: torch.device) -> torch.Tensor:
        """Timesteps to run: all of them, or the last ``strength`` fraction (img2img-style truncation)."""
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps
        keep = min(int(round(num_inference_steps * strength)), num_inference_steps)
        start = (num_inference_steps - keep) * self.scheduler.order
        return timesteps[start:]

    @torch.no_grad()
    def encode_video(self, frames: np.ndarray, chunk: int) -> torch.Tensor:
        """``(F, H, W, 3)`` uint8 -> ``(1, C, F, h, w)`` scaled VAE latent means, encoded ``chunk`` frames at a time."""
        device = self._execution_device
        out = []
        for s in range(0, len(frames), chunk):
            x = torch.from_numpy(frames[s:s + chunk]).permute(0, 3, 1, 2).to(device=device, dtype=self.vae.dtype)
            out.append(self.vae.encode(x / 127.5 - 1.0).latent_dist.mean)
        lat = torch.cat(out) * self.vae.config.scaling_factor
        return lat.permute(1, 0, 2, 3)[None]

    def prepare_latents(self, num_frames: int, height: int, width: int, timesteps: torch.Tensor,
                        generator: torch.Generator | list[torch.Generator] | None, latents: torch.Tensor | None,
                        init_video: np.ndarray | None, decode_chunk_size: int) -> torch.Tensor:
        """Starting latents ``(1, C, F, h, w)``: noise, given ``latents``, or ``init_video`` noised to ``timesteps[0]``."""
        device, dtype = self._execution_device, self._model_dtype
        shape = (1, self.denoising_unet.config.in_channels, num_frames,
                 height // self.vae_scale_factor, width // self.vae_scale_factor)
        if latents is not None:
            if tuple(latents.shape) != shape:
                raise ValueError(f"latents have shape {tuple(latents.shape)}, expected {shape}")
            noise = latents.to(device=device, dtype=dtype)
        else:
            noise = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        if init_video is None:
            return noise * self.scheduler.init_noise_sigma
        init = self.encode_video(init_video, decode_chunk_size).to(dtype)
        if len(timesteps) == 0:
            return init
        return self.scheduler.add_noise(init, noise, timesteps[:1])

    def pose_features(self, pose_images: np.ndarray, frames: Sequence[int]) -> torch.Tensor:
        """PoseGuider features ``(n, C0, h, w)`` of the selected skeleton frames (uint8 on the CPU until needed)."""
        x = torch.from_numpy(np.ascontiguousarray(pose_images[list(frames)])).permute(0, 3, 1, 2)
        x = x.to(device=self._execution_device, dtype=self.pose_guider.dtype) / 255.0
        return self.pose_guider(x).to(self._model_dtype)

    @torch.no_grad()
    def iter_decode(self, latents: torch.Tensor, decode_chunk_size: int = 8) -> Iterator[torch.Tensor]:
        """Decode ``(1, C, F, h, w)`` latents ``decode_chunk_size`` frames at a time.

        Yields:
            ``(n, 3, H, W)`` float32 tensors in [0, 1] on the CPU.
        """
        lat = latents[0].permute(1, 0, 2, 3) / self.vae.config.scaling_factor
        for s in range(0, lat.shape[0], decode_chunk_size):
            chunk = lat[s:s + decode_chunk_size].to(device=self._execution_device, dtype=self.vae.dtype)
            images = self.vae.decode(chunk).sample
            yield (images.float() / 2 + 0.5).clamp(0, 1).cpu()

    # --- main --------------------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(self, pose_images: np.ndarray | Sequence[np.ndarray], reference_image: ImageLike | None = None,
                 height: int | None = None, width: int | None = None, num_inference_steps: int = 30,
                 guidance_scale: float = 3.5, reference_encoding: ReferenceEncoding | None = None,
                 init_video: np.ndarray | Sequence[np.ndarray] | None = None, strength: float = 1.0,
                 context_frames: int | None = 24, context_overlap: int = 4, context_stride: int = 1,
                 context_weighting: str = "uniform",
                 generator: torch.Generator | list[torch.Generator] | None = None,
                 latents: torch.Tensor | None = None, decode_chunk_size: int = 8, output_type: str = "np",
                 return_dict: bool = True,
                 callback_on_step_end: Callable[[PoseDrivePipeline, int, torch.Tensor, dict], dict] | None = None,
                 callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
                 ) -> PoseDrivePipelineOutput | tuple:
        """Generate the video.

        Args:
            pose_images: ``F`` skeleton frames ``(H, W, 3)`` uint8 RGB (or floats in [0, 1]) at the generation size.
            reference_image: ``(H, W, 3)`` uint8 RGB reference at the generation size (ignored when
                ``reference_encoding`` is given).
            height, width: generation size (default: the pose images' size); multiples of the VAE factor.
            num_inference_steps: denoising steps (default 30).
            guidance_scale: classifier-free guidance scale (default 3.5); <= 1 disables the unconditional pass.
            reference_encoding: from :meth:`encode_reference`, to encode a reference once for many calls.
            init_video: optional ``F`` frames (e.g. the CPU puppet render) to start from instead of pure noise.
            strength: with ``init_video``, how much noise is added (1 = pure noise, 0 = returns the
                ``init_video`` reconstruction); the last ``strength`` fraction of the timesteps is run.
            context_frames, context_overlap, context_stride, context_weighting: context windows
                (:class:`~animate.diffusion.context.ContextConfig`); ``context_frames=None`` = one pass.
            generator: torch generator(s) for the noise (determinism).
            latents: optional ``(1, C, F, h, w)`` noise to use instead of sampling.
            decode_chunk_size: frames per VAE encode/decode call (default 8).
            output_type: ``"np"`` (default), ``"pt"``, ``"pil"`` or ``"latent"``.
            return_dict: return a :class:`PoseDrivePipelineOutput` (default) or a tuple.
            callback_on_step_end: ``f(pipe, step, timestep, tensors) -> dict`` called after each step; the
                returned ``"latents"`` replaces the latents.
            callback_on_step_end_tensor_inputs: names of the tensors passed to the callback.

        Returns:
            :class:`PoseDrivePipelineOutput`.
        """
        # 1. inputs
        poses = _as_uint8_frames(pose_images, "pose_images")
        init = None if init_video is None else _as_uint8_frames(init_video, "init_video")
        height = poses.shape[1] if height is None else int(height)
        width = poses.shape[2] if width is None else int(width)
        context = ContextConfig(context_frames, context_overlap, context_stride, context_weighting)
        self.check_inputs(poses, height, width, num_inference_steps, guidance_scale, strength, init, context,
                          output_type, decode_chunk_size, reference_image, reference_encoding,
                          callback_on_step_end_tensor_inputs)
        device = self._execution_device
        do_cfg = guidance_scale > 1.0

        # 2. reference, once
        ref = reference_encoding or self.encode_reference(reference_image, height, width)
        bank = ref.bank.to(device=device, dtype=self._model_dtype)
        cond = ref.image_embeds.to(device=device, dtype=self._model_dtype)
        embeds = torch.cat([torch.zeros_like(cond), cond]) if do_cfg else cond
        use_ref = torch.tensor([False, True] if do_cfg else [True], device=device)

        # 3.-4. timesteps and latents
        timesteps = self.get_timesteps(num_inference_steps, strength if init is not None else 1.0, device)
        latents = self.prepare_latents(len(poses), height, width, timesteps, generator, latents, init,
                                       decode_chunk_size)
        windows = context_windows(len(poses), context)
        weights = [torch.from_numpy(window_weights(len(w), context.weighting)).to(device, torch.float32)
                   for w in windows]
        logger.debug("%d frames, %d windows, %d steps", len(poses), len(windows), len(timesteps))

        # 5. denoise
        self._num_timesteps = len(timesteps)
        with self.progress_bar(total=len(timesteps) * len(windows)) as bar:
            for i, t in enumerate(timesteps):
                pred_sum = torch.zeros_like(latents, dtype=torch.float32)
                weight_sum = torch.zeros((1, 1, latents.shape[2], 1, 1), device=device, dtype=torch.float32)
                for frames, w in zip(windows, weights):
                    lat = latents[:, :, frames]
                    model_in = torch.cat([lat, lat]) if do_cfg else lat
                    model_in = self.scheduler.scale_model_input(model_in, t)
                    ctx = ReferenceContext(bank, len(frames), use_ref)
                    pred = self.denoising_unet(model_in, t, encoder_hidden_states=embeds,
                                               pose_features=self.pose_features(poses, frames),
                                               reference=ctx, return_dict=False)[0].float()
                    if do_cfg:
                        uncond, cond_pred = pred.chunk(2)
                        pred = uncond + guidance_scale * (cond_pred - uncond)
                    pred_sum[:, :, frames] += pred * w.view(1, 1, -1, 1, 1)
                    weight_sum[:, :, frames] += w.view(1, 1, -1, 1, 1)
                    bar.update()
                noise_pred = (pred_sum / weight_sum).to(latents.dtype)
                latents = self.scheduler.step(noise_pred, t, latents, return_dict=False)[0]
                if callback_on_step_end is not None:
                    tensors = {"latents": latents, "noise_pred": noise_pred}
                    out = callback_on_step_end(self, i, t, {k: tensors[k] for k in callback_on_step_end_tensor_inputs})
                    latents = (out or {}).get("latents", latents)

        # 6. decode
        if output_type == "latent":
            frames_out: Any = latents
        else:
            video = torch.cat(list(self.iter_decode(latents, decode_chunk_size)))
            if output_type == "pt":
                frames_out = video
            else:
                frames_out = video.permute(0, 2, 3, 1).numpy()
                if output_type == "pil":
                    frames_out = [PIL.Image.fromarray(np.round(f * 255).astype(np.uint8)) for f in frames_out]
        self.maybe_free_model_hooks()
        if not return_dict:
            return (frames_out,)
        return PoseDrivePipelineOutput(frames=frames_out)
