"""ReferenceNet: a diffusers ``UNet2DConditionModel`` whose self-attention inputs are recorded ("write" mode).

Animate Anyone-style systems run a copy of the SD UNet once on the VAE latent of the reference image (at
timestep 0, conditioned on the CLIP image token). The input of every spatial self-attention (``attn1``, i.e. the
``norm1``-normalised hidden states of each ``BasicTransformerBlock``) is recorded in a :class:`ReferenceBank`,
keyed by the attention's module path. The denoising UNet's self-attentions then attend over
``cat([own tokens, reference tokens])`` ("read" mode, see :mod:`animate.diffusion.reference_attention`).

Recording is done by attention processors installed with ``set_attn_processor`` (no patched ``forward``); the
bank to write into is passed explicitly per call through ``cross_attention_kwargs={"reference_bank": bank}``, so
no state hangs on the modules.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import Attention

from pose.errors import ConfigError

logger = logging.getLogger(__name__)

PROCESSOR_SUFFIX = ".processor"
SELF_ATTENTION = "attn1"
MOTION_TAG = "motion_modules"


def attention_sdpa(attn: Attention, hidden_states: torch.Tensor, context: torch.Tensor | None = None,
                   attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Attention with ``F.scaled_dot_product_attention``, the semantics of diffusers' ``AttnProcessor2_0``.

    Args:
        attn: the diffusers ``Attention`` module (its ``to_q/to_k/to_v/to_out``, heads and norms are used).
        hidden_states: ``(B, N, C)`` queries.
        context: ``(B, M, C')`` keys/values source; ``None`` = self-attention on ``hidden_states``.
        attention_mask: optional mask as accepted by ``Attention.prepare_attention_mask``.

    Returns:
        ``(B, N, C)`` output (after ``to_out``, residual and rescale as configured on ``attn``).
    """
    if hidden_states.ndim != 3:
        raise ValueError(f"attention_sdpa expects (B, N, C) hidden states, got shape {tuple(hidden_states.shape)}")
    residual = hidden_states
    batch, _, _ = hidden_states.shape
    if attn.group_norm is not None:
        hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
    if context is None:
        context = hidden_states
    elif attn.norm_cross:
        context = attn.norm_encoder_hidden_states(context)
    if attention_mask is not None:
        attention_mask = attn.prepare_attention_mask(attention_mask, context.shape[1], batch)
        attention_mask = attention_mask.view(batch, attn.heads, -1, attention_mask.shape[-1])
    query = attn.to_q(hidden_states)
    key = attn.to_k(context)
    value = attn.to_v(context)
    head_dim = key.shape[-1] // attn.heads
    query = query.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
    key = key.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
    value = value.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
    if attn.norm_q is not None:
        query = attn.norm_q(query)
    if attn.norm_k is not None:
        key = attn.norm_k(key)
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, dropout_p=0.0, is_causal=False)
    out = out.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim).to(query.dtype)
    out = attn.to_out[1](attn.to_out[0](out))
    if attn.residual_connection:
        out = out + residual
    return out / attn.rescale_output_factor


@dataclass
class ReferenceBank:
    """Self-attention inputs recorded from the ReferenceNet, one entry per spatial ``attn1``.

    Attributes:
        features: module path of the attention (e.g. ``down_blocks.0.attentions.0.transformer_blocks.0.attn1``)
            -> ``(R, L, C)`` tensor: ``R`` references (usually 1), ``L = h * w`` tokens, ``C`` channels.
    """

    features: dict[str, torch.Tensor] = field(default_factory=dict)

    def store(self, name: str, hidden_states: torch.Tensor) -> None:
        """Record ``(R, L, C)`` ``hidden_states`` under the attention path ``name``."""
        self.features[name] = hidden_states.detach()

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, name: str) -> torch.Tensor:
        try:
            return self.features[name]
        except KeyError:
            raise ConfigError(
                f"reference features have no entry for '{name}'; the ReferenceNet and denoising UNet do not pair up, "
                "use weights from the same release"
            ) from None

    @property
    def names(self) -> list[str]:
        """Attention paths recorded, in call order."""
        return list(self.features)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> ReferenceBank:
        """Copy with every tensor moved to ``device`` / cast to ``dtype``."""
        return ReferenceBank({k: v.to(device=device, dtype=dtype) for k, v in self.features.items()})

    @property
    def nbytes(self) -> int:
        """Memory held by the features, bytes."""
        return sum(v.numel() * v.element_size() for v in self.features.values())


class CrossAttentionProcessor:
    """SDPA attention processor that accepts (and ignores) the reference keyword arguments.

    Installed on the layers that do not take part in reference attention (``attn2`` cross-attention), so that the
    ``reference`` / ``reference_bank`` entries of ``cross_attention_kwargs`` reach the self-attentions without
    diffusers warning about unexpected arguments.
    """

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 reference_bank: ReferenceBank | None = None, reference: object | None = None) -> torch.Tensor:
        return attention_sdpa(attn, hidden_states, encoder_hidden_states, attention_mask)


class ReferenceWriteProcessor:
    """Self-attention processor that records its input in the bank passed as ``reference_bank``.

    Args:
        name: module path of the attention this processor is installed on (the bank key).
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 reference_bank: ReferenceBank | None = None, reference: object | None = None) -> torch.Tensor:
        if reference_bank is not None:
            reference_bank.store(self.name, hidden_states)
        return attention_sdpa(attn, hidden_states, encoder_hidden_states, attention_mask)


def self_attention_paths(unet: torch.nn.Module) -> list[str]:
    """Module paths of the spatial self-attentions (``...transformer_blocks.N.attn1``) of a UNet, in order.

    Temporal (motion-module) attentions are excluded. These are the 16 paired blocks of "full" reference fusion for
    an SD 1.5 UNet (6 down, 1 mid, 9 up).
    """
    names = [n[: -len(PROCESSOR_SUFFIX)] for n in unet.attn_processors]
    return [n for n in names if n.split(".")[-1] == SELF_ATTENTION and MOTION_TAG not in n.split(".")]


def install_reference_writers(unet: UNet2DConditionModel) -> list[str]:
    """Install :class:`ReferenceWriteProcessor` on every spatial ``attn1`` of ``unet`` (in place).

    Every other attention of the UNet gets :class:`CrossAttentionProcessor`.

    Returns:
        the attention paths that will be recorded.
    """
    paths = self_attention_paths(unet)
    writers = set(paths)
    procs = {}
    for full in unet.attn_processors:
        name = full[: -len(PROCESSOR_SUFFIX)]
        procs[full] = ReferenceWriteProcessor(name) if name in writers else CrossAttentionProcessor()
    unet.set_attn_processor(procs)
    logger.debug("installed %d reference writers", len(writers))
    return paths


def has_reference_writers(unet: torch.nn.Module) -> bool:
    """True when :func:`install_reference_writers` has been applied to ``unet``."""
    return any(isinstance(p, ReferenceWriteProcessor) for p in unet.attn_processors.values())


@torch.no_grad()
def compute_reference_features(unet: UNet2DConditionModel, latents: torch.Tensor, encoder_hidden_states: torch.Tensor,
                               timestep: float = 0) -> ReferenceBank:
    """Run the ReferenceNet once and return the recorded self-attention inputs.

    Args:
        unet: the reference UNet; writers are installed if absent.
        latents: ``(R, 4, h, w)`` scaled VAE latents of the reference image(s) (distribution mean).
        encoder_hidden_states: ``(R, 1, D)`` CLIP image token(s).
        timestep: diffusion timestep at which the reference is seen (0, as in the anchors).

    Returns:
        the :class:`ReferenceBank` (one ``(R, h_l * w_l, C_l)`` tensor per spatial self-attention).
    """
    if not has_reference_writers(unet):
        install_reference_writers(unet)
    bank = ReferenceBank()
    t = torch.full((latents.shape[0],), timestep, device=latents.device, dtype=torch.long)
    unet(latents, t, encoder_hidden_states=encoder_hidden_states,
         cross_attention_kwargs={"reference_bank": bank}, return_dict=False)
    return bank
