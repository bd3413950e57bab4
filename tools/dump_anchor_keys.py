"""Write key manifests (``key -> shape``) of the anchors' released checkpoint files from the anchors' own model code.

The released ``reference_unet.pth`` / ``denoising_unet.pth`` / ``motion_module.pth`` / ``pose_guider.pth``
(Moore-AnimateAnyone, MusePose) and AnimateDiff's ``mm_sd_v15_v2.ckpt`` are raw ``torch.save(model.state_dict())``
files, so their key names and shapes are fixed by the model classes that saved them and the SD 1.5 UNet config.
This script builds those classes -- imported from a local checkout of the anchor repository, never copied -- on the
``meta`` device (nothing is allocated), reproduces what each training script saves, and writes one JSON manifest per
file. ``tests/test_diffusion_weights.py`` feeds the manifests through posedrive's converters and checks them against
posedrive's models built at the real config, which proves strict loading of the real files succeeds.

The anchors pin old diffusers releases; run this with them first on ``PYTHONPATH`` (``transformers`` is hidden from
them, it is not needed to build a UNet)::

    pip install --no-deps --target /tmp/d024 diffusers==0.24.0 huggingface_hub==0.20.3
    pip install --no-deps --target /tmp/d011 diffusers==0.11.1 huggingface_hub==0.20.3
    PYTHONPATH=/tmp/d024 python tools/dump_anchor_keys.py moore --golden --repo Moore-AnimateAnyone \\
        --unet-config sd-image-variations-diffusers/unet/config.json --out tests/data/keys
    PYTHONPATH=/tmp/d024 python tools/dump_anchor_keys.py musepose --repo MusePose --unet-config ... --out ...
    PYTHONPATH=/tmp/d011 python tools/dump_anchor_keys.py animatediff --repo AnimateDiff-at-1904a01 --unet-config ... \\
        --out ...

(AnimateDiff at commit ``1904a01`` "v2 inference", the code that wrote ``mm_sd_v15_v2.ckpt``: later commits made the
``pe`` buffers non-persistent.)
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger("dump_anchor_keys")

# What each anchor's training/inference code passes (read from the anchors' configs and scripts).
POSE_GUIDER_ARGS = {"conditioning_embedding_channels": 320, "block_out_channels": (16, 32, 96, 256)}
BLOCKS_3D = {"down_block_types": ["CrossAttnDownBlock3D"] * 3 + ["DownBlock3D"],
             "up_block_types": ["UpBlock3D"] + ["CrossAttnUpBlock3D"] * 3,
             "mid_block_type": "UNetMidBlock3DCrossAttn"}
STAGE1_KWARGS = {"use_motion_module": False, "unet_use_temporal_attention": False}  # train_stage_1.py
MOTION_SUBSTRING = "motion_module"  # train_stage_2.py keeps keys containing this
ANCHORS = {
    # name: (package prefix of the model code, inference yaml with unet_additional_kwargs)
    "moore": ("src.models", "configs/inference/inference_v2.yaml"),
    "musepose": ("musepose.models", "configs/inference_v2.yaml"),
    "animatediff": ("animatediff.models", "configs/inference/inference-v2.yaml"),
}


class _HideModules:
    """Meta-path wrapper that makes some top-level packages unimportable (the anchors' old diffusers would import
    the installed, much newer ``transformers`` and fail)."""

    def __init__(self, finder: Any, hidden: tuple[str, ...]) -> None:
        self.finder, self.hidden = finder, hidden

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name.split(".")[0] in self.hidden:
            return None
        return self.finder.find_spec(name, path, target)

    def __getattr__(self, item: str) -> Any:
        return getattr(self.finder, item)


def _hide(*names: str) -> None:
    sys.meta_path[:] = [_HideModules(f, names) if hasattr(f, "find_spec") else f for f in sys.meta_path]


def _shapes(module: Any) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def _unet_kwargs(repo: Path, yaml_rel: str) -> dict[str, Any]:
    from omegaconf import OmegaConf

    return dict(OmegaConf.to_container(OmegaConf.load(repo / yaml_rel))["unet_additional_kwargs"])


def dump(anchor: str, repo: Path, unet_config_path: Path) -> dict[str, dict[str, Any]]:
    """Manifests of one anchor's released files.

    Args:
        anchor: ``moore``, ``musepose`` or ``animatediff``.
        repo: local checkout of that anchor's repository (its model code is imported from there).
        unet_config_path: the SD 1.5 / sd-image-variations ``unet/config.json``.

    Returns:
        file name -> ``{"keys": {key: shape}, ...metadata}``.
    """
    import torch

    prefix, yaml_rel = ANCHORS[anchor]
    sys.path.insert(0, str(repo))
    unet_cfg = json.loads(unet_config_path.read_text())
    kwargs = _unet_kwargs(repo, yaml_rel)
    unet3d = importlib.import_module(f"{prefix}.unet" if anchor == "animatediff" else f"{prefix}.unet_3d")
    cfg3d = {k: v for k, v in unet_cfg.items() if not k.startswith("_")} | BLOCKS_3D
    if anchor == "animatediff":  # its UNet3DConditionModel has no mid_block_type argument
        cfg3d.pop("mid_block_type")
    build3d: Callable[[dict], Any] = lambda extra: unet3d.UNet3DConditionModel.from_config(cfg3d, **extra)

    out: dict[str, dict[str, Any]] = {}
    with torch.device("meta"):
        motion_model = build3d(kwargs)
        motion = {k: v for k, v in _shapes(motion_model).items() if MOTION_SUBSTRING in k}
        max_len = kwargs["motion_module_kwargs"].get("temporal_position_encoding_max_len")
        name = "mm_sd_v15_v2.ckpt" if anchor == "animatediff" else "motion_module.pth"
        out[name] = {"keys": motion, "temporal_position_encoding_max_len": max_len,
                     "motion_module_mid_block": kwargs.get("motion_module_mid_block")}
        if anchor != "animatediff":
            unet2d = importlib.import_module(f"{prefix}.unet_2d_condition")
            guider = importlib.import_module(f"{prefix}.pose_guider")
            out["reference_unet.pth"] = {"keys": _shapes(unet2d.UNet2DConditionModel.from_config(unet_cfg))}
            out["denoising_unet.pth"] = {"keys": _shapes(build3d(STAGE1_KWARGS))}
            out["pose_guider.pth"] = {"keys": _shapes(guider.PoseGuider(**POSE_GUIDER_ARGS))}
    return out


# Small motion module whose output, computed by the anchor's own code, pins the forward semantics (not only the keys).
GOLDEN = {"channels": 32, "heads": 8, "frames": 6, "height": 2, "width": 3, "max_len": 32}


def deterministic_tensor(shape: tuple[int, ...], index: int, scale: float, offset: float = 0.0):
    """``offset + scale * sin(0.7 * arange + index)`` in float64, cast to float32 (bit-identical in any process)."""
    import torch

    n = 1
    for d in shape:
        n *= d
    values = torch.sin(torch.arange(n, dtype=torch.float64) * 0.7 + index) * scale + offset
    return values.reshape(shape).float()


def golden_weights(shapes: dict[str, tuple[int, ...]]) -> dict:
    """Deterministic weights for AnimateDiff-named motion-module keys (``pe`` buffers skipped): norms ~1, biases
    small, matrices scaled by ``1/sqrt(fan_in)``."""
    out = {}
    for i, key in enumerate(sorted(k for k in shapes if not k.endswith(".pe"))):
        shape = tuple(shapes[key])
        if len(shape) == 1:
            is_norm = "norm" in key.rsplit(".", 2)[-2]
            out[key] = deterministic_tensor(shape, i, 0.1, 1.0 if is_norm and key.endswith("weight") else 0.0)
        else:
            out[key] = deterministic_tensor(shape, i, 1.0 / shape[1] ** 0.5)
    return out


def golden_input():
    """``(1, C, F, H, W)`` input whose frames differ in scale (so per-frame and joint normalisation differ)."""
    import torch

    g = GOLDEN
    x = deterministic_tensor((1, g["channels"], g["frames"], g["height"], g["width"]), 0, 1.0)
    return x * (1.0 + torch.arange(g["frames"], dtype=torch.float32)).view(1, 1, -1, 1, 1)


def golden_motion_output(anchor: str, repo: Path) -> dict[str, Any]:
    """Output of the anchor's ``VanillaTemporalModule`` with :func:`golden_weights` on :func:`golden_input`."""
    import torch

    prefix, yaml_rel = ANCHORS[anchor]
    sys.path.insert(0, str(repo))
    mm = importlib.import_module(f"{prefix}.motion_module")
    kwargs = dict(_unet_kwargs(repo, yaml_rel)["motion_module_kwargs"])
    kwargs.update(num_attention_heads=GOLDEN["heads"], temporal_position_encoding_max_len=GOLDEN["max_len"])
    module = mm.get_motion_module(GOLDEN["channels"], "Vanilla", kwargs).eval()
    state = module.state_dict()
    state.update(golden_weights({k: tuple(v.shape) for k, v in state.items()}))
    module.load_state_dict(state, strict=True)
    with torch.no_grad():
        y = module(golden_input(), None, None)
    return {"file": "golden motion module", "anchor": anchor, **GOLDEN, "motion_module_kwargs": kwargs,
            "keys": {k: list(v.shape) for k, v in module.state_dict().items()},
            "output": [round(float(v), 7) for v in y.flatten()]}


def format_manifest(manifest: dict[str, Any]) -> str:
    """JSON text with the metadata first and one ``"key": [shape]`` per line (small, diff-friendly)."""
    head = {k: v for k, v in manifest.items() if k != "keys"}
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
    keys = [f"    {json.dumps(k)}: {json.dumps(v)}" for k, v in manifest["keys"].items()]
    return "{\n" + "\n".join(lines) + '\n  "keys": {\n' + ",\n".join(keys) + "\n  }\n}\n"


def main(argv: list[str] | None = None) -> int:
    """CLI: ``dump_anchor_keys.py ANCHOR --repo DIR --unet-config FILE --out DIR``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("anchor", choices=sorted(ANCHORS))
    parser.add_argument("--repo", type=Path, required=True, help="local checkout of the anchor repository")
    parser.add_argument("--unet-config", type=Path, required=True, help="SD 1.5 unet/config.json")
    parser.add_argument("--out", type=Path, required=True, help="folder for <anchor>_<file>.json")
    parser.add_argument("--source", default="", help="repository URL and commit, recorded in the manifests")
    parser.add_argument("--golden", action="store_true",
                        help="also write <anchor>_motion_golden.json: a small motion module's output")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    _hide("transformers")
    import diffusers

    args.out.mkdir(parents=True, exist_ok=True)
    for fname, manifest in dump(args.anchor, args.repo.resolve(), args.unet_config).items():
        manifest = {"file": fname, "anchor": args.anchor, "source": args.source,
                    "produced_with": f"diffusers {diffusers.__version__}, tools/dump_anchor_keys.py",
                    "unet_config": args.unet_config.name, **manifest}
        path = args.out / f"{args.anchor}_{fname.split('.')[0]}.json"
        path.write_text(format_manifest(manifest))
        logger.info("%s: %d keys -> %s", fname, len(manifest["keys"]), path)
    if args.golden:
        golden = golden_motion_output(args.anchor, args.repo.resolve())
        golden = {"source": args.source, "produced_with": f"diffusers {diffusers.__version__}", **golden}
        path = args.out / f"{args.anchor}_motion_golden.json"
        path.write_text(format_manifest(golden))
        logger.info("golden motion output (%d values) -> %s", len(golden["output"]), path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
