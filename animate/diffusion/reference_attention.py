"""Reference attention, "read" mode: the denoising UNet's self-attentions also attend to the reference.

Each spatial self-attention (``attn1``) of the denoising UNet is paired with the ReferenceNet self-attention of the
same module path (16 pairs for SD 1.5, "full" fusion). Its keys/values become ``cat([own tokens, reference
tokens])``; the reference tokens ``(R, L, C)`` of one video are broadcast over its frames. Rows of the batch whose
``use_reference`` flag is False (the unconditional half of classifier-free guidance) use plain self-attention.

The per-call inputs travel in a :class:`ReferenceContext` passed as ``cross_attention_kwargs={"reference": ctx}``;
the processors hold nothing but their module path.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.models.attention_processor import Attention

from pose.errors import ConfigError
from reference.referencenet import (
    PROCESSOR_SUFFIX,
    CrossAttentionProcessor,
    ReferenceBank,
    attention_sdpa,
    self_attention_paths,
)


@dataclass
class ReferenceContext:
    """What the read processors need for one UNet call.

    Attributes:
        bank: reference features from :func:`reference.referencenet.compute_reference_features`; each entry is
            ``(R, L, C)`` with ``R`` = 1 (shared by every video of the batch) or ``R`` = ``B``.
        num_frames: frames ``F`` per video in this call (the UNet batch is ``B * F`` rows, video-major).
        use_reference: ``(B,)`` bool, which videos of the batch attend to the reference (False = unconditional).
    """

    bank: ReferenceBank
    num_frames: int
    use_reference: torch.Tensor

    def row_mask(self, rows: int) -> torch.Tensor:
        """``(rows,)`` bool mask over the ``B * F`` UNet rows."""
        mask = self.use_reference.to(torch.bool).repeat_interleave(self.num_frames)
        if mask.numel() != rows:
            raise ValueError(
                f"reference context covers {mask.numel()} rows ({self.use_reference.numel()} videos x "
                f"{self.num_frames} frames) but the UNet batch has {rows}"
            )
        return mask

    def features_for(self, name: str, rows: torch.Tensor) -> torch.Tensor:
        """Reference tokens for the selected rows: ``(rows.sum(), L, C)``."""
        feats = self.bank[name]
        n_videos = self.use_reference.numel()
        if feats.shape[0] == 1:
            return feats.expand(int(rows.sum()), -1, -1)
        if feats.shape[0] != n_videos:
            raise ValueError(f"reference features for '{name}' have batch {feats.shape[0]}, expected 1 or {n_videos}")
        per_row = feats.repeat_interleave(self.num_frames, dim=0)
        return per_row[rows.to(per_row.device)]


class ReferenceReadProcessor:
    """Self-attention over ``cat([own tokens, reference tokens])`` (see module docstring).

    Args:
        name: module path of the attention; the :class:`ReferenceBank` key it reads.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 reference: ReferenceContext | None = None, reference_bank: ReferenceBank | None = None) -> torch.Tensor:
        if reference is None:
            return attention_sdpa(attn, hidden_states, encoder_hidden_states, attention_mask)
        rows = reference.row_mask(hidden_states.shape[0]).to(hidden_states.device)
        n_ref = int(rows.sum())
        if n_ref == 0:
            return attention_sdpa(attn, hidden_states)
        ref = reference.features_for(self.name, rows).to(hidden_states.dtype)
        if n_ref == rows.numel():
            return attention_sdpa(attn, hidden_states, torch.cat([hidden_states, ref], dim=1))
        out = torch.empty_like(hidden_states)
        h_ref = hidden_states[rows]
        out[rows] = attention_sdpa(attn, h_ref, torch.cat([h_ref, ref], dim=1))
        out[~rows] = attention_sdpa(attn, hidden_states[~rows])
        return out


def install_reference_readers(unet: torch.nn.Module, writer_paths: list[str]) -> list[str]:
    """Install :class:`ReferenceReadProcessor` on the spatial self-attentions of ``unet`` (in place).

    Temporal (motion-module) attentions keep their processors; cross-attentions get
    :class:`~reference.referencenet.CrossAttentionProcessor`.

    Args:
        unet: the denoising UNet.
        writer_paths: attention paths the ReferenceNet records (:func:`install_reference_writers`).

    Returns:
        the reader paths.

    Raises:
        ConfigError: the reader and writer counts or paths differ (the two UNets do not pair up).
    """
    readers = self_attention_paths(unet)
    if len(readers) != len(writer_paths):
        raise ConfigError(
            f"denoising UNet has {len(readers)} self-attention blocks but the ReferenceNet records {len(writer_paths)}; "
            "both UNets must come from the same architecture config"
        )
    unpaired = sorted(set(readers) - set(writer_paths))
    if unpaired:
        raise ConfigError(f"self-attention '{unpaired[0]}' of the denoising UNet has no ReferenceNet partner; "
                          "both UNets must come from the same architecture config")
    reader_set = set(readers)
    procs = {}
    for full, proc in unet.attn_processors.items():
        name = full[: -len(PROCESSOR_SUFFIX)]
        if name in reader_set:
            procs[full] = ReferenceReadProcessor(name)
        elif "motion_modules" in name.split("."):
            procs[full] = proc
        else:
            procs[full] = CrossAttentionProcessor()
    unet.set_attn_processor(procs)
    return readers
