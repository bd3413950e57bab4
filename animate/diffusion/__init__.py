"""GPU renderer: Animate Anyone-style diffusion (ReferenceNet + PoseGuider + motion UNet), built on diffusers.

Import the submodules you need; importing this package does not import torch.
"""
