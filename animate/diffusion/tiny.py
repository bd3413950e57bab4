"""Tiny randomly initialised components with the real architectures, for tests and the CPU benchmark.

Sizes are chosen so a whole 2-step generation runs in well under a second on one CPU core; every network is the
same class as in production (diffusers ``UNet2DConditionModel`` / ``UNetMotionModel`` / ``AutoencoderKL``,
transformers ``CLIPVisionModelWithProjection``), only narrower.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import AutoencoderKL, DDIMScheduler, MotionAdapter, UNet2DConditionModel
from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

from .motion_unet import PoseUNetMotionModel
from .pose_guider import PoseGuider

TINY_EMBED_DIM = 8
TINY_IMAGE_SIZE = 32  # CLIP input side

# Config dicts, also written as JSON by tests that build fake weight directories.
TINY_UNET_CONFIG: dict[str, Any] = dict(
    sample_size=16, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(8, 16),
    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=TINY_EMBED_DIM, attention_head_dim=2, norm_num_groups=2,
)
TINY_MOTION_CONFIG: dict[str, Any] = dict(
    block_out_channels=(8, 16), motion_layers_per_block=2, motion_num_attention_heads=2, motion_norm_num_groups=2,
    motion_max_seq_length=8, use_motion_mid_block=True,
)
TINY_VAE_CONFIG: dict[str, Any] = dict(
    in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16), norm_num_groups=2,
    down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"), up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
    layers_per_block=1, sample_size=32,
)
TINY_POSE_GUIDER_CONFIG: dict[str, Any] = dict(conditioning_embedding_channels=8, block_out_channels=(4, 8))
TINY_CLIP_CONFIG: dict[str, Any] = dict(
    hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2, image_size=TINY_IMAGE_SIZE,
    patch_size=8, projection_dim=TINY_EMBED_DIM,
)
DEFAULT_SCHEDULER_CONFIG: dict[str, Any] = dict(
    num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
    prediction_type="v_prediction", rescale_betas_zero_snr=True, timestep_spacing="trailing", steps_offset=1,
    clip_sample=False, set_alpha_to_one=True,
)


def tiny_components(seed: int = 0, perturb_pose_guider: bool = True) -> dict[str, Any]:
    """Keyword arguments for :class:`animate.diffusion.pipeline.PoseDrivePipeline` with tiny random weights.

    Args:
        seed: ``torch.manual_seed`` used before building each network (deterministic weights).
        perturb_pose_guider: give the zero-initialised ``conv_out`` small random weights so that pose changes
            the output (a freshly initialised guider contributes nothing, as in training).
    """
    torch.manual_seed(seed)
    unet2d = UNet2DConditionModel(**TINY_UNET_CONFIG)
    torch.manual_seed(seed)
    reference_unet = UNet2DConditionModel(**TINY_UNET_CONFIG)
    torch.manual_seed(seed + 1)
    adapter = MotionAdapter(**TINY_MOTION_CONFIG)
    # AnimateDiff zero-initialises proj_out; random here so the motion modules do mix frames.
    denoising_unet = PoseUNetMotionModel.from_unet2d(unet2d, adapter)
    torch.manual_seed(seed + 2)
    vae = AutoencoderKL(**TINY_VAE_CONFIG)
    torch.manual_seed(seed + 3)
    pose_guider = PoseGuider(**TINY_POSE_GUIDER_CONFIG)
    if perturb_pose_guider:
        torch.nn.init.normal_(pose_guider.conv_out.weight, std=0.5)
    torch.manual_seed(seed + 4)
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(**TINY_CLIP_CONFIG))
    feature_extractor = CLIPImageProcessor(
        size={"shortest_edge": TINY_IMAGE_SIZE}, crop_size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE})
    scheduler = DDIMScheduler(**DEFAULT_SCHEDULER_CONFIG)
    for m in (denoising_unet, reference_unet, vae, pose_guider, image_encoder):
        m.eval()
    return dict(vae=vae, image_encoder=image_encoder, feature_extractor=feature_extractor,
                reference_unet=reference_unet, denoising_unet=denoising_unet, pose_guider=pose_guider,
                scheduler=scheduler)
