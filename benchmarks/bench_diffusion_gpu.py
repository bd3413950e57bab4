"""GPU benchmark of the diffusion pipeline at real SD 1.5 sizes with random weights (no download needed).

Usage: python benchmarks/bench_diffusion_gpu.py [--width 512] [--height 768] [--frames 24] [--window 24]
                                                [--steps 20] [--dtype fp16]
Prints seconds per frame and peak VRAM. Refuses to run without a CUDA GPU.
Architecture: SD 1.5 UNet (320/640/1280/1280, cross-attention 768) for both UNets, AnimateDiff motion modules
(8 heads, max_len 32), sd-vae-ft-mse VAE, CLIP ViT-L/14 image encoder with 768-d projection, PoseGuider (16/32/96/256).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

import numpy as np
import torch

logger = logging.getLogger("bench_diffusion_gpu")

SD15_UNET = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                 block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768, attention_head_dim=8,
                 down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                 up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
SD_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512),
              down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
              layers_per_block=2, sample_size=512)
CLIP_L14 = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                image_size=224, patch_size=14, projection_dim=768)
MOTION = dict(motion_layers_per_block=2, motion_num_attention_heads=8, motion_norm_num_groups=32,
              motion_max_seq_length=32, use_motion_mid_block=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--height", type=int, default=768)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--window", type=int, default=24)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--dtype", default="fp16", choices=["fp16", "bf16", "fp32"])
    ap.add_argument("--decode-chunk-size", type=int, default=8)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not torch.cuda.is_available():
        logger.error("bench_diffusion_gpu: no CUDA GPU available; run benchmarks/bench_diffusion_cpu.py instead")
        return 2

    from diffusers import AutoencoderKL, DDIMScheduler, MotionAdapter, UNet2DConditionModel
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    from animate.diffusion.motion_unet import PoseUNetMotionModel
    from animate.diffusion.options import DTYPES
    from animate.diffusion.pipeline import PoseDrivePipeline
    from animate.diffusion.pose_guider import PoseGuider
    from animate.diffusion.tiny import DEFAULT_SCHEDULER_CONFIG

    dtype, device = DTYPES[args.dtype], torch.device("cuda")
    torch.manual_seed(0)
    unet2d = UNet2DConditionModel(**SD15_UNET)
    denoising = PoseUNetMotionModel.from_unet2d(unet2d, MotionAdapter(block_out_channels=SD15_UNET["block_out_channels"], **MOTION))
    pipe = PoseDrivePipeline(
        vae=AutoencoderKL(**SD_VAE), image_encoder=CLIPVisionModelWithProjection(CLIPVisionConfig(**CLIP_L14)),
        feature_extractor=CLIPImageProcessor(), reference_unet=unet2d, denoising_unet=denoising,
        pose_guider=PoseGuider(), scheduler=DDIMScheduler(**DEFAULT_SCHEDULER_CONFIG))
    pipe.to(device=device, dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 256, (args.height, args.width, 3), dtype=np.uint8)
    poses = rng.integers(0, 256, (args.frames, args.height, args.width, 3), dtype=np.uint8)
    pipe(poses[:2], ref, num_inference_steps=1, context_frames=args.window)  # warm-up
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    pipe(poses, ref, num_inference_steps=args.steps, context_frames=args.window,
         decode_chunk_size=args.decode_chunk_size, generator=torch.Generator(device).manual_seed(0))
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    result = dict(device=torch.cuda.get_device_name(), dtype=args.dtype, size=[args.width, args.height],
                  frames=args.frames, window=args.window, steps=args.steps, seconds=round(dt, 2),
                  seconds_per_frame=round(dt / args.frames, 3),
                  peak_vram_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2))
    logger.info(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
