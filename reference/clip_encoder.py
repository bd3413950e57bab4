"""CLIP image encoder of the reference: one cross-attention token per image.

As in the anchors, the reference image is resized to the processor's square crop size (224 for the
``sd-image-variations-diffusers/image_encoder``), normalised by ``CLIPImageProcessor`` and encoded by
``CLIPVisionModelWithProjection``; ``image_embeds`` ``(R, D)`` become the ``(R, 1, D)`` ``encoder_hidden_states``
of both UNets. The unconditional (classifier-free guidance) token is all zeros.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from PIL import Image
from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

from pose.errors import InputError

logger = logging.getLogger(__name__)


def _crop_side(processor: CLIPImageProcessor) -> int:
    crop = getattr(processor, "crop_size", None) or {}
    if isinstance(crop, dict):
        side = crop.get("height") or crop.get("shortest_edge")
    else:
        side = getattr(crop, "height", None)
    if not side:
        size = processor.size if isinstance(processor.size, dict) else {}
        side = size.get("shortest_edge") or size.get("height")
    if not side:
        raise InputError("CLIP image processor config has no crop_size/size; fix preprocessor_config.json")
    return int(side)


class ReferenceImageEncoder:
    """Encode reference images into CLIP image tokens.

    Args:
        model: the CLIP vision tower with projection.
        processor: its image processor; ``None`` = ``CLIPImageProcessor()`` defaults (224, CLIP mean/std),
            what Moore-AnimateAnyone uses.
    """

    def __init__(self, model: CLIPVisionModelWithProjection, processor: CLIPImageProcessor | None = None) -> None:
        self.model = model
        self.processor = processor if processor is not None else CLIPImageProcessor()

    @property
    def embed_dim(self) -> int:
        """Size ``D`` of one image token."""
        return int(self.model.config.projection_dim)

    def pixel_values(self, images: np.ndarray | list[np.ndarray]) -> torch.Tensor:
        """Preprocess ``(H, W, 3)`` uint8 RGB image(s) into ``(R, 3, S, S)`` float32 pixel values.

        Each image is resized (not cropped) to ``S x S`` first, ``S`` being the processor's crop size, so the
        whole character is seen, as in the anchors.
        """
        if isinstance(images, np.ndarray) and images.ndim == 3:
            images = [images]
        side = _crop_side(self.processor)
        pil = []
        for im in images:
            im = np.asarray(im)
            if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
                raise InputError(f"reference image must be (H, W, 3) uint8 RGB, got {im.shape} {im.dtype}")
            pil.append(Image.fromarray(im).resize((side, side), Image.BICUBIC))
        return self.processor(images=pil, return_tensors="pt").pixel_values

    @torch.no_grad()
    def encode(self, images: np.ndarray | list[np.ndarray], device: torch.device | str | None = None,
               dtype: torch.dtype | None = None) -> torch.Tensor:
        """Image token(s) of the reference(s).

        Args:
            images: one ``(H, W, 3)`` uint8 RGB image or a list of them.
            device, dtype: of the returned tensor (default: the model's).

        Returns:
            ``(R, 1, D)`` ``image_embeds``.
        """
        pv = self.pixel_values(images).to(device=self.model.device, dtype=self.model.dtype)
        embeds = self.model(pixel_values=pv).image_embeds
        return embeds.unsqueeze(1).to(device=device or embeds.device, dtype=dtype or embeds.dtype)
