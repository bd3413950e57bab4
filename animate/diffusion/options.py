"""Device, dtype and memory/speed options of the diffusion renderer."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from pose.errors import ConfigError

logger = logging.getLogger(__name__)

DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32, "float32": torch.float32,
    "fp16": torch.float16, "float16": torch.float16,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
}


@dataclass
class RuntimeOptions:
    """How to run the models.

    Attributes:
        device: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        dtype: ``"fp16"`` (default on CUDA), ``"bf16"`` or ``"fp32"``. fp16 on CPU falls back to fp32 with a
            warning (many CPU kernels lack fp16).
        cpu_offload: keep models on the CPU and move each to the GPU only while it runs
            (``enable_model_cpu_offload``, via accelerate); needs CUDA.
        vae_slicing: decode one frame at a time inside a chunk.
        vae_tiling: decode in overlapping spatial tiles (large outputs).
        compile: ``torch.compile`` the denoising UNet (first call slow).
    """

    device: str = "auto"
    dtype: str = "fp16"
    cpu_offload: bool = False
    vae_slicing: bool = False
    vae_tiling: bool = False
    compile: bool = False


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """The torch device for ``device``; raises :class:`ConfigError` when CUDA is requested but absent."""
    name = "auto" if device is None else str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device '{name}' is not a torch device; use auto, cpu or cuda[:N]") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device '{name}' was requested but no CUDA GPU is available; set "
                          "renderer.options.device: cpu in the config (device=\"cpu\" in Python; very slow) or run "
                          "on a machine with an NVIDIA GPU")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"device '{name}' does not exist: {torch.cuda.device_count()} CUDA GPU(s) visible")
    return dev


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """The torch dtype for ``dtype`` on ``device`` (fp16 on CPU -> fp32 with a warning)."""
    if isinstance(dtype, torch.dtype):
        out = dtype
    else:
        out = DTYPES.get(str(dtype).lower())
        if out is None:
            raise ConfigError(f"dtype '{dtype}' is unknown; use one of fp16, bf16, fp32")
    if out == torch.float16 and device.type == "cpu":
        logger.warning("fp16 is not supported on the CPU; running in fp32 (use bf16 to halve memory on CPU)")
        return torch.float32
    return out
