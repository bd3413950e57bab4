"""Denoising UNet: diffusers ``UNetMotionModel`` (AnimateDiff motion modules) + pose features + reference attention.

:class:`PoseUNetMotionModel` is a ``UNetMotionModel`` whose ``conv_in`` is a :class:`PoseConditionedConv2d`: an
``nn.Conv2d`` (same parameter names, so checkpoints load unchanged) that adds the PoseGuider features to its output,
as Animate Anyone does (``sample = conv_in(sample) + pose_features``). The features are an explicit ``forward``
argument; the model hands them to ``conv_in`` inside a ``with`` block that clears them on exit, so nothing outlives
the call. Everything else is diffusers' own forward. Reference attention goes through attention processors
(:mod:`animate.diffusion.reference_attention`) with the :class:`ReferenceContext` as ``cross_attention_kwargs``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

import torch
from diffusers import UNetMotionModel
from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D, UNetMotionOutput
from torch import nn

from .reference_attention import ReferenceContext


class PoseConditionedConv2d(nn.Conv2d):
    """``conv_in`` that adds a residual (the pose features) to its output while :meth:`adding` is active."""

    _residual: torch.Tensor | None = None

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> PoseConditionedConv2d:
        """Same geometry and parameters as ``conv``."""
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                  dilation=conv.dilation, groups=conv.groups, bias=conv.bias is not None,
                  device=conv.weight.device, dtype=conv.weight.dtype)
        new.load_state_dict(conv.state_dict())
        return new

    @contextlib.contextmanager
    def adding(self, residual: torch.Tensor | None) -> Iterator[None]:
        """Within the block, ``forward`` returns ``conv(x) + residual``; ``residual`` is ``(N, C_out, h, w)``."""
        self._residual = residual
        try:
            yield
        finally:
            self._residual = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        if self._residual is None:
            return out
        if self._residual.shape != out.shape:
            raise ValueError(f"pose features of shape {tuple(self._residual.shape)} do not match conv_in output "
                             f"{tuple(out.shape)}; render the skeletons at the generation size")
        return out + self._residual.to(out.dtype)


class FrameGroupNorm(nn.GroupNorm):
    """``GroupNorm`` applied to each frame of a ``(B, C, F, H, W)`` video separately (other inputs: plain GroupNorm).

    AnimateDiff, Moore-AnimateAnyone and MusePose normalise the motion-module input per frame (``(b f) c h w``); their
    checkpoints were trained that way. diffusers' ``AnimateDiffTransformer3D`` normalises the 5-D tensor jointly over
    all frames, which changes the output (about 7 % of the residual with random weights). Same parameters (``weight``,
    ``bias``), so checkpoints load unchanged.
    """

    @classmethod
    def from_norm(cls, norm: nn.GroupNorm) -> FrameGroupNorm:
        """Same groups, channels, eps and parameters as ``norm``."""
        new = cls(norm.num_groups, norm.num_channels, eps=norm.eps, affine=norm.affine,
                  device=norm.weight.device if norm.affine else None, dtype=norm.weight.dtype if norm.affine else None)
        new.load_state_dict(norm.state_dict(), assign=True)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5:
            return super().forward(x)
        b, c, f, h, w = x.shape
        y = super().forward(x.transpose(1, 2).reshape(b * f, c, h, w))
        return y.reshape(b, f, c, h, w).transpose(1, 2)


class PoseUNetMotionModel(UNetMotionModel):
    """``UNetMotionModel`` taking pose features and a reference context (see module docstring).

    The constructor and config are exactly ``UNetMotionModel``'s (``save_pretrained`` / ``from_pretrained`` and
    ``from_unet2d`` work unchanged); ``conv_in`` is swapped for a :class:`PoseConditionedConv2d` and each motion
    module's input ``norm`` for a :class:`FrameGroupNorm` (per-frame, as the released motion modules were trained).
    """

    @functools.wraps(UNetMotionModel.__init__)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # functools.wraps keeps UNetMotionModel's signature visible to ConfigMixin (it reads __init__'s
        # parameters to build the model from a config), so the config is registered once, by the parent.
        super().__init__(*args, **kwargs)
        self.conv_in = PoseConditionedConv2d.from_conv(self.conv_in)
        for module in list(self.modules()):
            if isinstance(module, AnimateDiffTransformer3D) and type(module.norm) is nn.GroupNorm:
                module.norm = FrameGroupNorm.from_norm(module.norm)

    @property
    def max_frames(self) -> int:
        """Longest frame window the motion modules' positional encoding supports (``motion_max_seq_length``)."""
        return int(self.config.motion_max_seq_length)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor | float, encoder_hidden_states: torch.Tensor,
                pose_features: torch.Tensor | None = None, reference: ReferenceContext | None = None,
                cross_attention_kwargs: dict[str, Any] | None = None, return_dict: bool = True,
                **kwargs: Any) -> UNetMotionOutput | tuple[torch.Tensor]:
        """Predict the denoising target for a batch of videos.

        Args:
            sample: ``(B, C, F, h, w)`` noisy latents.
            timestep: scalar or ``(B,)`` timestep.
            encoder_hidden_states: ``(B, 1, D)`` image tokens (repeated over frames here) or ``(B * F, 1, D)``.
            pose_features: PoseGuider output ``(F, C0, h, w)`` (shared by the ``B`` videos, e.g. both
                classifier-free guidance halves) or ``(B * F, C0, h, w)``; ``None`` = no pose.
            reference: reference features and per-video flags; ``None`` = plain self-attention everywhere.
            cross_attention_kwargs: extra processor kwargs (``reference`` is added to it).
            return_dict: return a ``UNetMotionOutput`` (default) or a tuple.
            **kwargs: passed to ``UNetMotionModel.forward``.

        Returns:
            ``UNetMotionOutput`` with ``sample`` ``(B, C, F, h, w)``.
        """
        b, _, f = sample.shape[:3]
        if f > self.max_frames:
            raise ValueError(f"{f} frames exceed the motion modules' max_seq_length {self.max_frames}; "
                             "use context windows no longer than that")
        if encoder_hidden_states.shape[0] == b and f > 1:
            encoder_hidden_states = encoder_hidden_states.repeat_interleave(f, dim=0)
        if pose_features is not None and pose_features.shape[0] == f and b > 1:
            pose_features = pose_features.repeat(b, 1, 1, 1)
        cak = dict(cross_attention_kwargs or {})
        if reference is not None:
            cak["reference"] = reference
        with self.conv_in.adding(pose_features):
            return super().forward(sample, timestep, encoder_hidden_states, cross_attention_kwargs=cak or None,
                                   return_dict=return_dict, **kwargs)
