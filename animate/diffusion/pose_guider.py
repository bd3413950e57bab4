"""PoseGuider: a small conv encoder from a rendered skeleton image to the denoising UNet's ``conv_in`` space.

Layout of Animate Anyone's pose guider (and of ControlNet's ``controlnet_cond_embedding``), so the released
``pose_guider.pth`` loads with its own key names: ``conv_in`` (3x3, ``conditioning_channels`` ->
``block_out_channels[0]``); for each pair of consecutive channel counts, ``blocks.2i`` (3x3, channels kept) and
``blocks.2i+1`` (3x3, stride 2, channels changed); SiLU after every conv but the last; zero-initialised 3x3
``conv_out`` -> ``conditioning_embedding_channels``. With the default channels (16, 32, 96, 256) the output is at
1/8 of the input resolution, the latent grid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

KERNEL = 3
PAD = 1
DOWN_STRIDE = 2


class PoseGuider(ModelMixin, ConfigMixin):
    """Skeleton image -> latent-resolution features added to ``conv_in(noisy latents)``.

    Args:
        conditioning_embedding_channels: output channels, the UNet's ``block_out_channels[0]`` (320 for SD 1.5).
        conditioning_channels: input channels (3, RGB skeleton image in [0, 1]).
        block_out_channels: channel counts of the stages; ``len - 1`` stride-2 convs, so the output is
            ``2 ** (len - 1)`` times smaller than the input (default (16, 32, 96, 256): 1/8).
    """

    @register_to_config
    def __init__(self, conditioning_embedding_channels: int = 320, conditioning_channels: int = 3,
                 block_out_channels: tuple[int, ...] = (16, 32, 96, 256)) -> None:
        super().__init__()
        chans = list(block_out_channels)
        self.conv_in = nn.Conv2d(conditioning_channels, chans[0], KERNEL, padding=PAD)
        self.blocks = nn.ModuleList()
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            self.blocks.append(nn.Conv2d(c_in, c_in, KERNEL, padding=PAD))
            self.blocks.append(nn.Conv2d(c_in, c_out, KERNEL, padding=PAD, stride=DOWN_STRIDE))
        self.conv_out = nn.Conv2d(chans[-1], conditioning_embedding_channels, KERNEL, padding=PAD)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    @property
    def downscale(self) -> int:
        """Input size / output size."""
        return DOWN_STRIDE ** (len(self.config.block_out_channels) - 1)

    def forward(self, conditioning: torch.Tensor) -> torch.Tensor:
        """Encode skeleton images.

        Args:
            conditioning: ``(N, 3, H, W)`` skeleton images in [0, 1] (frames flattened into ``N``), or
                ``(B, 3, F, H, W)`` video (encoded per frame, returned as ``(B, C, F, h, w)``).

        Returns:
            ``(N, conditioning_embedding_channels, H / downscale, W / downscale)`` (or the 5-D video layout).
        """
        video = conditioning.ndim == 5
        if video:
            b, c, f, h, w = conditioning.shape
            conditioning = conditioning.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
        x = F.silu(self.conv_in(conditioning))
        for block in self.blocks:
            x = F.silu(block(x))
        x = self.conv_out(x)
        if video:
            x = x.reshape(b, f, *x.shape[1:]).permute(0, 2, 1, 3, 4)
        return x
