"""Weights: configs, safe loading, key conversion and checking of the released checkpoints.

Supported files (layout in ``docs/WEIGHTS.md``, paths per release in ``configs/diffusion/*.yaml``):

* ``denoising_unet.pth`` / ``reference_unet.pth`` (Moore-AnimateAnyone, MusePose): raw state dicts with diffusers
  ``UNet2DConditionModel`` key names. The reference file lacks ``conv_norm_out`` / ``conv_out`` (the ReferenceNet's
  output is never used): exactly those keys are allowed to be missing and are zero-filled; anything else missing
  or unexpected is a :class:`~pose.errors.WeightsError` naming the file and the first keys.
* ``motion_module.pth`` (Moore, MusePose) and AnimateDiff ``mm_sd_v15_v2.ckpt``: AnimateDiff key names, converted
  to diffusers ``UNetMotionModel`` names by :func:`animatediff_to_diffusers`. Every key is accounted for: the two
  ``attention_blocks.{0,1}.pos_encoder.pe`` buffers of a transformer block are checked to be the standard
  sinusoidal table (any length) and then dropped -- diffusers keeps one ``pos_embed.pe`` per block, rebuilt from
  the config's ``motion_max_seq_length`` (what MusePose does with its longer windows). A diffusers ``MotionAdapter``
  folder (e.g. ``animatediff-motion-adapter-v1-5-2``) is accepted too; its ``pos_embed.pe`` tables are handled alike.
* ``pose_guider.pth``: :class:`~animate.diffusion.pose_guider.PoseGuider` keys (``conv_in``, ``blocks.N``, ``conv_out``).
* diffusers folders (``config.json`` + weights): ``sd-vae-ft-mse``, ``image_encoder``, an SD 1.5 ``unet`` (its
  2-D weights can replace ``denoising_unet.pth``), and our own models saved with ``save_pretrained``.
* Key names and shapes of all these files at the real SD 1.5 size are pinned by manifests in ``tests/data/keys``
  (dumped from the anchors' own model code); the tests load shape-only replicas of them strictly.

Pickles are read only with ``torch.load(weights_only=True, map_location="cpu")``; anything else in a pickle is
refused with a :class:`~pose.errors.WeightsError`.

:func:`check_weights_dir` (``posedrive weights check``) reads what loading reads, but only key names and shapes:
safetensors headers, memory-mapped pickles (PyTorch's legacy non-zip format, which cannot be memory-mapped, is read
whole). The ``vae`` / ``image_encoder`` folders are compared with the model their ``config.json`` builds (on the
meta device), and :func:`load_components` runs the same folder check first, so the two agree.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import pickle
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pose.errors import ConfigError, WeightsError

from .settings import COMPONENTS, DiffusionConfig, load_diffusion_config

logger = logging.getLogger(__name__)

FILE_COMPONENTS = ("reference_unet", "denoising_unet", "pose_guider", "motion_module")
REFERENCE_OPTIONAL_PREFIXES = ("conv_norm_out.", "conv_out.")
SHOW_KEYS = 3
PE_TOLERANCE = 1e-3
WEIGHT_FILES = ("diffusion_pytorch_model.safetensors", "model.safetensors", "diffusion_pytorch_model.bin",
                "pytorch_model.bin")
#: Weights files ``from_pretrained`` looks for in a folder, in its order (the first present one is read).
DIFFUSERS_WEIGHT_FILES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
TRANSFORMERS_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
FOLDER_WEIGHT_FILES = {"image_encoder": TRANSFORMERS_WEIGHT_FILES}  # any other folder: diffusers
#: Folders loaded with ``from_pretrained``, and the class that loads each (checked against its config.json).
PRETRAINED_CLASSES = {"vae": "AutoencoderKL", "image_encoder": "CLIPVisionModelWithProjection"}
#: ``motion`` fields that must be positive whole numbers (or one per UNet block).
MOTION_COUNTS = ("motion_layers_per_block", "motion_num_attention_heads", "motion_norm_num_groups",
                 "motion_max_seq_length", "motion_mid_block_layers_per_block",
                 "motion_transformer_layers_per_mid_block")
# A "owner/name" that is not a local path: what a Hugging Face repo id looks like.
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
STATE_DICT_WRAPPERS = ("state_dict", "module")

# AnimateDiff -> diffusers name pieces (order matters: applied left to right).
_MOTION_RENAMES = ((".temporal_transformer.", "."), (".attention_blocks.0.", ".attn1."),
                   (".attention_blocks.1.", ".attn2."), (".norms.0.", ".norm1."), (".norms.1.", ".norm2."),
                   (".ff_norm.", ".norm3."))
_PE_SUFFIX = ".pos_encoder.pe"
_PE_KEY = ".pos_embed.pe"


class MissingWeightsError(WeightsError):
    """A weights file or folder (or a folder's ``config.json`` / weights file) is not there at all."""


# --- configuration ---------------------------------------------------------------------------------
def build_scheduler(config: DiffusionConfig):
    """The diffusers scheduler named by ``config.scheduler["class"]`` with the remaining entries as its config."""
    import diffusers

    settings = dict(config.scheduler)
    cls = getattr(diffusers, str(settings.pop("class")), None)
    if cls is None or not hasattr(cls, "from_config"):
        raise ConfigError(f"{config.path}: field 'scheduler.class' is not a diffusers scheduler")
    return cls.from_config(settings)


# --- safe reading ----------------------------------------------------------------------------------
def read_state_dict(path: str | Path, mmap: bool = False) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a pickled ``.pth``/``.ckpt``/``.bin`` (``weights_only``).

    Args:
        path: the file, or a diffusers/transformers folder holding one of :data:`WEIGHT_FILES`.
        mmap: memory-map pickles instead of reading them (cheap key/shape inspection).

    Returns:
        flat ``name -> tensor`` mapping on the CPU (a wrapping ``state_dict``/``module`` entry is unwrapped).
    """
    path = _weights_file(Path(path))
    if not path.is_file():
        raise WeightsError(f"{path}: file not found; see docs/WEIGHTS.md for where to get it")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:  # safetensors raises SafetensorError / OSError
            raise WeightsError(f"{path}: not a valid safetensors file ({exc}); download it again") from None
    if mmap and not zipfile.is_zipfile(path):
        # PyTorch's legacy (non-zip) format cannot be memory-mapped: read it whole (a truncated zip lands here too
        # and fails below as truncated).
        logger.debug("%s is not in PyTorch's zip format; reading it without mmap", path)
        mmap = False
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        # torch names what it refused on a line of its own ("Trying to load unsupported GLOBAL posix.system ...",
        # "Unsupported operand 248"), between its general advice.
        first = next((line for line in lines if "unsupported" in line.lower() and not line.startswith("Please")),
                     lines[-1] if lines else "unsafe content")
        first = first[:120]
        raise WeightsError(f"{path}: refused, the pickle holds more than tensors ({first}); "
                           "only plain state dicts are loaded -- get the file from its official source") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise WeightsError(f"{path}: cannot read as a PyTorch checkpoint ({exc.__class__.__name__}); "
                           "the file is truncated or not a checkpoint, download it again") from None
    for wrapper in STATE_DICT_WRAPPERS:
        if isinstance(obj, dict) and set(obj) == {wrapper} and isinstance(obj[wrapper], dict) or isinstance(obj, dict) and wrapper in obj and isinstance(obj[wrapper], dict) and \
                not any(isinstance(v, torch.Tensor) for v in obj.values()):
            obj = obj[wrapper]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path}: not a state dict of tensors; use the released .pth file")
    return obj


def _weights_file(path: Path) -> Path:
    """``path``, or for a folder the first of :data:`WEIGHT_FILES` in it (a :class:`WeightsError` without one)."""
    if not path.is_dir():
        return path
    found = next((path / n for n in WEIGHT_FILES if (path / n).is_file()), None)
    if found is None:
        raise WeightsError(f"{path}: no weights file ({', '.join(WEIGHT_FILES)}); download the folder again")
    return found


def read_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """``key -> shape`` of a weights file, reading as little of it as its format allows.

    A ``.safetensors`` file's header is read (``safe_open`` also checks that the header's offsets cover the file
    exactly, so a truncated or padded file is an error) and no tensor data; a pickle is memory-mapped with
    ``torch.load(weights_only=True)`` (PyTorch's legacy non-zip format is read whole), so a pickle holding anything
    but tensors is refused exactly as when loading.

    Args:
        path: the file, or a folder holding one of :data:`WEIGHT_FILES`.

    Raises:
        WeightsError: the file is missing, unreadable, truncated, a refused pickle or not a state dict.
    """
    path = _weights_file(Path(path))
    if path.suffix != ".safetensors":
        return _shapes(read_state_dict(path, mmap=True))
    if not path.is_file():
        raise WeightsError(f"{path}: file not found; see docs/WEIGHTS.md for where to get it")
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else exc.__class__.__name__
        raise WeightsError(f"{path}: not a valid safetensors file ({reason}); it is truncated or corrupt, "
                           "download it again") from None


def _keys_text(keys: list[str]) -> str:
    extra = f" (+{len(keys) - SHOW_KEYS} more)" if len(keys) > SHOW_KEYS else ""
    return ", ".join(keys[:SHOW_KEYS]) + extra


def compare_state(expected: Mapping[str, tuple[int, ...]], got: Mapping[str, tuple[int, ...]],
                  optional: tuple[str, ...] = ()) -> tuple[list[str], list[str], list[str]]:
    """Differences between two ``key -> shape`` maps.

    Returns:
        ``(missing, unexpected, wrong_shape)`` sorted key lists; keys starting with an ``optional`` prefix may be
        missing. ``wrong_shape`` entries read ``key: got (..) expected (..)``.
    """
    missing = sorted(k for k in expected if k not in got and not k.startswith(optional))
    unexpected = sorted(k for k in got if k not in expected)
    wrong = sorted(f"{k}: got {tuple(got[k])} expected {tuple(expected[k])}" for k in expected
                   if k in got and tuple(got[k]) != tuple(expected[k]))
    return missing, unexpected, wrong


def check_state(expected: Mapping[str, tuple[int, ...]], got: Mapping[str, tuple[int, ...]], source: str | Path,
                optional: tuple[str, ...] = ()) -> None:
    """Raise :class:`WeightsError` naming ``source`` and the first keys when ``got`` does not match ``expected``."""
    missing, unexpected, wrong = compare_state(expected, got, optional)
    if missing:
        raise WeightsError(f"{source}: {len(missing)} missing keys: {_keys_text(missing)}; "
                           "the file is incomplete or belongs to another model")
    if unexpected:
        raise WeightsError(f"{source}: {len(unexpected)} unexpected keys: {_keys_text(unexpected)}; "
                           "the file belongs to another model or config")
    if wrong:
        raise WeightsError(f"{source}: {len(wrong)} tensors of the wrong shape: {_keys_text(wrong)}; "
                           "check the UNet config / release config matches the file")


def _shapes(sd: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in sd.items()}


# --- motion module conversion ----------------------------------------------------------------------
def sinusoidal_table(length: int, dim: int) -> torch.Tensor:
    """``(1, length, dim)`` sinusoidal positional table (AnimateDiff's and diffusers' formula)."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(1, length, dim)
    pe[0, :, 0::2] = torch.sin(position * div)
    pe[0, :, 1::2] = torch.cos(position * div)
    return pe


def animatediff_to_diffusers(state: Mapping[str, torch.Tensor], source: str | Path = "motion module"
                             ) -> dict[str, torch.Tensor]:
    """Convert AnimateDiff-format motion-module keys to diffusers ``UNetMotionModel`` keys.

    ``down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.0.to_q.weight`` ->
    ``down_blocks.0.motion_modules.0.transformer_blocks.0.attn1.to_q.weight``; ``norms.0/1`` -> ``norm1/2``,
    ``ff_norm`` -> ``norm3``, ``attention_blocks.1`` -> ``attn2``; ``proj_in``, ``proj_out``, ``norm``, ``ff`` keep
    their names. Position tables -- AnimateDiff's ``pos_encoder.pe`` (two per transformer block) and diffusers'
    ``pos_embed.pe`` (one per block, present in ``MotionAdapter.save_pretrained`` folders) -- are validated
    (sinusoidal, ``(1, L, C)``, any ``L``) and dropped: the model rebuilds them from its ``motion_max_seq_length``.
    Other keys already in diffusers form pass through unchanged.

    Raises:
        WeightsError: a key has no ``motion_modules`` part, or a ``pe`` buffer is not the sinusoidal table.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if "motion_modules" not in key.split("."):
            raise WeightsError(f"{source}: key '{key}' is not a motion-module key; give the motion_module file")
        if key.endswith((_PE_SUFFIX, _PE_KEY)):
            if value.ndim != 3 or value.shape[0] != 1:
                raise WeightsError(f"{source}: '{key}' has shape {tuple(value.shape)}, expected (1, max_len, channels)")
            ref = sinusoidal_table(value.shape[1], value.shape[2])
            if not torch.allclose(value.float(), ref, atol=PE_TOLERANCE):
                raise WeightsError(f"{source}: '{key}' is not the sinusoidal position table; "
                                   "learned position encodings are not supported")
            continue
        new = "." + key + "."
        for old, rep in _MOTION_RENAMES:
            new = new.replace(old, rep)
        out[new[1:-1]] = value
    return out


def diffusers_to_animatediff(state: Mapping[str, torch.Tensor], pe_length: int | None = None) -> dict[str, torch.Tensor]:
    """Inverse of :func:`animatediff_to_diffusers` (for tests and export).

    Args:
        state: diffusers motion keys (only keys with ``motion_modules`` are kept).
        pe_length: length of the ``pos_encoder.pe`` tables written for both attention blocks (default: the length
            of each ``pos_embed.pe``; ``0`` = write none).
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        parts = key.split(".")
        if "motion_modules" not in parts:
            continue
        i = parts.index("motion_modules") + 2  # after "motion_modules.N"
        head, tail = ".".join(parts[:i]), ".".join(parts[i:])
        if tail.endswith(_PE_KEY[1:]):
            length = value.shape[1] if pe_length is None else pe_length
            if length:
                block = tail[: -len(_PE_KEY)]
                for a in (0, 1):
                    out[f"{head}.temporal_transformer.{block}.attention_blocks.{a}.pos_encoder.pe"] = \
                        sinusoidal_table(length, value.shape[2])
            continue
        tail = "." + tail + "."
        for new, old in ((".attn1.", ".attention_blocks.0."), (".attn2.", ".attention_blocks.1."),
                         (".norm1.", ".norms.0."), (".norm2.", ".norms.1."), (".norm3.", ".ff_norm.")):
            tail = tail.replace(new, old)
        out[f"{head}.temporal_transformer.{tail[1:-1]}"] = value
    return out


# --- building models -------------------------------------------------------------------------------
def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise WeightsError(f"{path}: {what} not found; see docs/WEIGHTS.md")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise WeightsError(f"{path}: {what} is not valid JSON; download it again") from None


def _unet_config(path: Path) -> dict[str, Any]:
    return _read_json(path if path.suffix == ".json" else path / "config.json", "UNet config")


def _empty(builder):
    from accelerate import init_empty_weights

    with init_empty_weights():
        return builder()


def reference_unet_from_config(unet_config: Mapping[str, Any], empty: bool = False):
    """A ``UNet2DConditionModel`` from a config dict (parameters on the meta device when ``empty``)."""
    from diffusers import UNet2DConditionModel

    build = lambda: UNet2DConditionModel.from_config(dict(unet_config))
    return _empty(build) if empty else build()


def _per_block(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_motion_config(motion: Mapping[str, Any], source: str | Path = "release config",
                        unet_config: Mapping[str, Any] | None = None) -> None:
    """Check a release config's ``motion`` section (``MotionAdapter`` arguments) before any model is built.

    Args:
        motion: the section.
        source: the release config's path, for messages.
        unet_config: the 2-D UNet's config (as built, defaults filled in); when given, the fields are also checked
            against it (attention heads and norm groups must divide every block's channels, one motion layer per
            UNet layer).

    Raises:
        ConfigError: naming ``motion.<field>`` and the file.
    """
    from diffusers import MotionAdapter

    params = inspect.signature(MotionAdapter.__init__).parameters
    allowed = [n for n in params if n not in ("self", "block_out_channels")]
    for key, value in motion.items():
        if key == "block_out_channels":
            raise ConfigError(f"{source}: field 'motion.block_out_channels' is taken from the UNet config; remove it")
        if key not in allowed:
            raise ConfigError(f"{source}: field 'motion.{key}' is unknown; use {', '.join(allowed)}")
        if key in MOTION_COUNTS and not all(_is_count(v) for v in _per_block(value)):
            raise ConfigError(f"{source}: field 'motion.{key}' must be a positive whole number, got {value!r}")
    if "use_motion_mid_block" in motion and not isinstance(motion["use_motion_mid_block"], bool):
        raise ConfigError(f"{source}: field 'motion.use_motion_mid_block' must be true or false, "
                          f"got {motion['use_motion_mid_block']!r}")
    if unet_config is None:
        return
    channels = [int(c) for c in unet_config["block_out_channels"]]
    defaults = {n: p.default for n, p in params.items()}
    for key in ("motion_num_attention_heads", "motion_norm_num_groups", "motion_layers_per_block"):
        values = _per_block(motion.get(key, defaults[key]))
        if len(values) == 1:
            values = values * len(channels)
        if len(values) != len(channels):
            raise ConfigError(f"{source}: field 'motion.{key}' lists {len(values)} values for the UNet's "
                              f"{len(channels)} blocks; give one number")
        if key == "motion_layers_per_block":
            layers = [int(v) for v in _per_block(unet_config["layers_per_block"])]
            layers = layers * len(channels) if len(layers) == 1 else layers
            if values != layers:
                raise ConfigError(f"{source}: field 'motion.{key}' is {motion.get(key, defaults[key])!r} but the "
                                  f"UNet has {unet_config['layers_per_block']} layers per block; they must be equal")
            continue
        bad = next(((c, v) for c, v in zip(channels, values) if c % v), None)
        if bad is not None:
            usual = "8 heads" if key == "motion_num_attention_heads" else "32 groups"
            raise ConfigError(f"{source}: field 'motion.{key}' must divide the channels of every UNet block "
                              f"{channels}, but {bad[0]} is not a multiple of {bad[1]}; the released modules use "
                              f"{usual}")


def denoising_unet_from_config(unet_config: Mapping[str, Any], motion: Mapping[str, Any], empty: bool = False,
                               source: str | Path = "release config"):
    """A :class:`PoseUNetMotionModel` from a 2-D UNet config and ``MotionAdapter`` kwargs.

    Raises:
        ConfigError: ``motion`` (from the release config ``source``) does not fit the UNet config.
    """
    from diffusers import MotionAdapter

    from .motion_unet import PoseUNetMotionModel

    check_motion_config(motion, source)
    unet2d = reference_unet_from_config(unet_config, empty=True)
    check_motion_config(motion, source, unet2d.config)

    def build():
        adapter = MotionAdapter(block_out_channels=tuple(unet2d.config.block_out_channels), **dict(motion))
        return PoseUNetMotionModel.from_unet2d(unet2d, adapter, load_weights=False)

    try:
        return _empty(build) if empty else build()
    except (TypeError, ValueError, KeyError, RuntimeError, ZeroDivisionError) as exc:
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else exc.__class__.__name__
        raise ConfigError(f"{source}: field 'motion' does not fit the UNet config ({exc.__class__.__name__}: "
                          f"{reason}); compare it with configs/diffusion/moore.yaml") from None


def _from_pretrained(cls: Any, path: Path, what: str, source: str = "", **kwargs: Any):
    """``cls.from_pretrained(path)``, any failure to read the folder as one line naming it (a :class:`WeightsError`)."""
    try:
        return cls.from_pretrained(str(path), **kwargs)
    except (OSError, RuntimeError, ValueError, TypeError, KeyError, EOFError, pickle.UnpicklingError) as exc:
        logger.debug("%s.from_pretrained(%s) failed", getattr(cls, "__name__", cls), path, exc_info=True)
        raise WeightsError(f"{path}: the {what} folder cannot be loaded ({exc.__class__.__name__}); run "
                           f"'posedrive weights check' on the weights directory, or download the folder again"
                           + (f" from {source}" if source else "")) from None


def _load_into(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str | Path,
               optional: tuple[str, ...] = ()) -> None:
    expected = model.state_dict()
    check_state(_shapes(expected), _shapes(state), source, optional)
    full = dict(state)
    for k, v in expected.items():
        if k not in full:  # optional keys: zero-filled (never used), kept dtype/shape
            full[k] = torch.zeros(v.shape, dtype=v.dtype if v.dtype.is_floating_point else torch.float32)
    model.load_state_dict(full, strict=True, assign=True)


def load_reference_unet(path: str | Path, unet_config: Mapping[str, Any]):
    """ReferenceNet from ``reference_unet.pth`` (strict; only ``conv_norm_out``/``conv_out`` may be missing)."""
    path = Path(path)
    if path.is_dir() and (path / "config.json").is_file():
        from diffusers import UNet2DConditionModel

        return _from_pretrained(UNet2DConditionModel, path, "reference_unet")
    model = reference_unet_from_config(unet_config, empty=True)
    _load_into(model, read_state_dict(path), path, REFERENCE_OPTIONAL_PREFIXES)
    return model


def motion_state_for(model: torch.nn.Module, motion_state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Add the model's own (rebuilt) ``pos_embed.pe`` buffers to converted motion weights."""
    out = dict(motion_state)
    for k, v in model.state_dict().items():
        if k.endswith(_PE_KEY) and "motion_modules" in k:
            out[k] = v.detach().clone() if v.device.type != "meta" else sinusoidal_table(v.shape[1], v.shape[2])
    return out


def load_denoising_unet(unet_path: str | Path, motion_path: str | Path | None, unet_config: Mapping[str, Any],
                        motion: Mapping[str, Any], source: str | Path = "release config"):
    """Denoising :class:`PoseUNetMotionModel` from the 2-D weights + the motion module (both strict).

    Args:
        unet_path: ``denoising_unet.pth``, an SD 1.5 ``unet`` folder, or a folder saved by ``save_pretrained``
            (then ``motion_path`` is ignored).
        motion_path: ``motion_module.pth`` / ``mm_sd_v15_v2.ckpt`` (AnimateDiff format) or a diffusers
            ``MotionAdapter`` folder.
        unet_config: the 2-D UNet config dict.
        motion: ``MotionAdapter`` kwargs from the release config.
        source: the release config's path (named when ``motion`` is wrong).
    """
    from .motion_unet import PoseUNetMotionModel

    unet_path = Path(unet_path)
    if unet_path.is_dir() and (unet_path / "config.json").is_file():
        cls_name = _read_json(unet_path / "config.json", "UNet config").get("_class_name")
        if cls_name == PoseUNetMotionModel.__name__:
            return _from_pretrained(PoseUNetMotionModel, unet_path, "denoising_unet")
    model = denoising_unet_from_config(unet_config, motion, empty=True, source=source)
    state = dict(read_state_dict(unet_path))
    if any("motion_modules" in k for k in state):
        raise WeightsError(f"{unet_path}: holds motion-module keys; give the 2-D UNet and the motion module separately")
    if motion_path is None:
        raise WeightsError(f"{unet_path}: a motion module is required; set weights.motion_module in the config")
    motion_state = animatediff_to_diffusers(read_state_dict(motion_path), motion_path)
    expected = _shapes(model.state_dict())
    motion_expected = {k: s for k, s in expected.items() if "motion_modules" in k.split(".") and not k.endswith(_PE_KEY)}
    check_state(motion_expected, _shapes(motion_state), motion_path)
    twod_expected = {k: s for k, s in expected.items() if "motion_modules" not in k.split(".")}
    check_state(twod_expected, _shapes(state), unet_path)
    state.update(motion_state_for(model, motion_state))
    model.load_state_dict(state, strict=True, assign=True)
    return model


def load_pose_guider(path: str | Path, kwargs: Mapping[str, Any]):
    """:class:`PoseGuider` from ``pose_guider.pth`` (strict) or a ``save_pretrained`` folder."""
    from .pose_guider import PoseGuider

    path = Path(path)
    if path.is_dir() and (path / "config.json").is_file():
        return _from_pretrained(PoseGuider, path, "pose_guider")
    model = PoseGuider(**dict(kwargs))
    _load_into(model, read_state_dict(path), path)
    return model


def weights_root(path: str | Path) -> Path:
    """The weights directory ``path`` (``~`` expanded), or a :class:`WeightsError` saying what it is instead.

    A file, a missing folder and a Hugging Face repo id (``owner/name``: posedrive never downloads) each get their
    own message.
    """
    try:
        root = Path(path).expanduser()
    except RuntimeError:  # "~user" of an unknown user
        root = Path(path)
    if root.is_dir():
        return root
    if root.exists():
        raise WeightsError(f"weights directory {root} is a file; give the folder that holds the weights "
                           "(laid out as in docs/WEIGHTS.md), not a file in it")
    text = str(Path(path))
    if _HUB_ID.fullmatch(text) and not Path(text.split("/")[0]).exists():
        raise WeightsError(f"weights directory {text} does not exist; if '{text}' is a Hugging Face repo id: "
                           "posedrive never downloads, so download the files into a folder laid out as in "
                           "docs/WEIGHTS.md and pass that folder")
    raise WeightsError(f"weights directory {root} does not exist; create it as described in docs/WEIGHTS.md")


def _pretrained_skeleton(component: str, path: Path, config: dict[str, Any]) -> torch.nn.Module:
    """The model ``from_pretrained`` builds from ``path``'s config.json, on the meta device (no memory)."""
    if component == "vae":
        from diffusers import AutoencoderKL

        return _empty(lambda: AutoencoderKL.from_config(config))
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    vision_config = CLIPVisionConfig.from_pretrained(str(path))  # as from_pretrained reads it (a CLIPModel's too)
    return _empty(lambda: CLIPVisionModelWithProjection(vision_config))


def inspect_folder(path: str | Path, component: str, source: str = "") -> int:
    """Check a diffusers / transformers folder the way loading it will read it, without loading its tensors.

    ``config.json`` (and an image encoder's ``preprocessor_config.json``, when present) must be a JSON object and
    the weights file that ``from_pretrained`` picks must be readable
    (:func:`read_shapes`: a safetensors header, or a ``weights_only`` memory-mapped pickle). For ``vae`` and
    ``image_encoder`` the model is built from the config on the meta device and every one of its tensors must be
    in the file with its shape (keys the file has in excess are ignored, as the loaders do; diffusers' renaming of
    old attention keys is applied first).

    Args:
        path: the folder.
        component: its component name (:data:`~animate.diffusion.settings.COMPONENTS`).
        source: where to download it (named in messages).

    Returns:
        the number of tensors in its weights file.

    Raises:
        MissingWeightsError: the folder, its config.json or its weights file is not there.
        WeightsError: anything else (one line naming the file and what to do).
    """
    path = Path(path)
    where = source or "docs/WEIGHTS.md"
    if not path.is_dir():
        raise MissingWeightsError(f"{path}: {component} folder not found; get it from {where}")
    config_path = path / "config.json"
    if not config_path.is_file():
        raise MissingWeightsError(f"{path}: config.json not found; get the {component} folder from {where}")
    try:
        config = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise WeightsError(f"{config_path}: not valid JSON; download the {component} folder again from {where}") \
            from None
    if not isinstance(config, dict):
        raise WeightsError(f"{config_path}: not a JSON object; download the {component} folder again from {where}")
    extra = path / "preprocessor_config.json"  # read by load_components for the image encoder when present
    if component == "image_encoder" and extra.is_file():
        try:
            preprocessor = json.loads(extra.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            preprocessor = None
        if not isinstance(preprocessor, dict):
            raise WeightsError(f"{extra}: not a JSON object; download the {component} folder again from {where}")
    names = FOLDER_WEIGHT_FILES.get(component, DIFFUSERS_WEIGHT_FILES)
    found = next((path / n for n in names if (path / n).is_file()), None)
    if found is None:
        raise MissingWeightsError(f"{path}: no weights file ({' / '.join(names)}); get the {component} folder "
                                  f"from {where}")
    got = read_shapes(found)
    if component not in PRETRAINED_CLASSES:
        return len(got)
    try:
        model = _pretrained_skeleton(component, path, config)
    except Exception as exc:  # noqa: BLE001 -- a user's config.json: the libraries raise anything from IndexError
        # to huggingface_hub's StrictDataclassFieldValidationError on values they cannot build from
        logger.debug("building %s from %s failed", PRETRAINED_CLASSES[component], config_path, exc_info=True)
        raise WeightsError(f"{config_path}: {PRETRAINED_CLASSES[component]} cannot be built from it "
                           f"({exc.__class__.__name__}); download the {component} folder again from {where}") from None
    fix = getattr(model, "_fix_state_dict_keys_on_load", None)  # diffusers: query/key/value -> to_q/to_k/to_v
    renamed = dict(got)
    if fix is not None:
        renamed = fix(renamed) or renamed
    missing, _, wrong = compare_state(_shapes(model.state_dict()), renamed)
    if missing or wrong:
        parts = ([f"{len(missing)} missing keys ({_keys_text(missing)})"] if missing else []) + \
                ([f"{len(wrong)} tensors of the wrong shape ({_keys_text(wrong)})"] if wrong else [])
        raise WeightsError(f"{found}: does not match the {PRETRAINED_CLASSES[component]} that config.json describes: "
                           f"{'; '.join(parts)}; download the {component} folder again from {where}")
    return len(got)


def load_components(weights_dir: str | Path, config: str | Path | DiffusionConfig = "moore",
                    dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """Every pipeline component of a release, read from ``weights_dir`` (CPU, ``dtype``).

    The ``vae`` and ``image_encoder`` folders are first checked as ``posedrive weights check`` does
    (:func:`inspect_folder`), so a truncated file, a refused pickle or a wrong config.json is one line.

    Returns:
        keyword arguments for :class:`~animate.diffusion.pipeline.PoseDrivePipeline`.

    Raises:
        WeightsError: a file is missing or does not match (run ``posedrive weights check DIR``).
        ConfigError: the release config's ``motion`` section does not fit the UNet config.
    """
    from diffusers import AutoencoderKL
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    cfg = load_diffusion_config(config)
    root = weights_root(weights_dir)
    p = {c: root / cfg.weights[c] for c in COMPONENTS}
    check_motion_config(cfg.motion, cfg.path)
    # every file there before any is loaded (the VAE, CLIP and the reference UNet take gigabytes and minutes)
    absent = [f"{c} ({p[c]})" for c in ("unet_config", *FILE_COMPONENTS) if not p[c].exists()]
    absent += [f"{c} folder ({p[c]})" for c in ("vae", "image_encoder") if not p[c].is_dir()]
    if absent:
        raise MissingWeightsError(f"weights directory {root} lacks {len(absent)} of its files: {'; '.join(absent)}; "
                                  f"run 'posedrive weights check {root}' and get them as docs/WEIGHTS.md says")
    for c in ("vae", "image_encoder"):
        inspect_folder(p[c], c, cfg.sources.get(c, ""))
    unet_cfg = _unet_config(p["unet_config"])
    logger.info("loading %s weights from %s", cfg.name, root)
    vae = _from_pretrained(AutoencoderKL, p["vae"], "vae", cfg.sources.get("vae", ""), torch_dtype=dtype)
    image_encoder = _from_pretrained(CLIPVisionModelWithProjection, p["image_encoder"], "image_encoder",
                                     cfg.sources.get("image_encoder", ""), torch_dtype=dtype)
    feature_extractor = CLIPImageProcessor()
    if (p["image_encoder"] / "preprocessor_config.json").is_file():
        feature_extractor = _from_pretrained(CLIPImageProcessor, p["image_encoder"], "image_encoder",
                                             cfg.sources.get("image_encoder", ""))
    reference_unet = load_reference_unet(p["reference_unet"], unet_cfg).to(dtype)
    denoising_unet = load_denoising_unet(p["denoising_unet"], p["motion_module"], unet_cfg, cfg.motion,
                                         source=cfg.path).to(dtype)
    pose_guider = load_pose_guider(p["pose_guider"], cfg.pose_guider).to(dtype)
    models = dict(vae=vae, image_encoder=image_encoder, reference_unet=reference_unet,
                  denoising_unet=denoising_unet, pose_guider=pose_guider)
    for m in models.values():
        m.eval()
    return dict(models, feature_extractor=feature_extractor, scheduler=build_scheduler(cfg))


# --- checking a directory --------------------------------------------------------------------------
#: Statuses of a :class:`WeightsEntry`.
STATUSES = ("ok", "missing", "wrong", "unchecked")
_STATUS_WIDTH = max(len(s) for s in STATUSES) + 1


@dataclass
class WeightsEntry:
    """State of one component in a weights directory."""

    component: str
    path: Path
    status: str  # "ok", "missing", "wrong" or "unchecked" (readable, but its shapes need the UNet config)
    detail: str = ""
    source: str = ""


@dataclass
class WeightsReport:
    """What :func:`check_weights_dir` found."""

    root: Path
    config: str
    entries: list[WeightsEntry] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every component is present and matches."""
        return all(e.status == "ok" for e in self.entries)

    def by_status(self, status: str) -> list[WeightsEntry]:
        return [e for e in self.entries if e.status == status]

    def format(self) -> str:
        """Human-readable report, one line per component (plus download hints)."""
        lines = [f"weights directory {self.root} (config {self.config}):"]
        w = _STATUS_WIDTH
        for e in self.entries:
            lines.append(f"  {e.status.upper():{w}s}{e.component:16s}{e.path}"
                         + (f"  -- {e.detail}" if e.detail else ""))
            if e.status in ("missing", "wrong") and e.source:
                lines.append(f"  {'':{w}s}{'':16s}get it from: {e.source}")
        unchecked = len(self.by_status("unchecked"))
        lines.append("complete" if self.complete else
                     f"incomplete: {len(self.by_status('missing'))} missing, {len(self.by_status('wrong'))} wrong"
                     + (f", {unchecked} unchecked" if unchecked else ""))
        return "\n".join(lines)


def _without_path(message: str, path: Path) -> str:
    """``message`` of an error about ``path`` or a file in it, without that prefix (the report names the path)."""
    for prefix in (f"{path}: ", f"{path}/"):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message


def _check_folder(path: Path, component: str) -> tuple[str, str]:
    try:
        count = inspect_folder(path, component)
    except MissingWeightsError as exc:
        return "missing", _without_path(str(exc), path).split("; get ")[0]
    except WeightsError as exc:
        return "wrong", _without_path(str(exc), path).split("; download the ")[0]
    return "ok", f"{count} tensors"


def _loaded_with_from_pretrained(component: str, path: Path) -> bool:
    """Whether the loaders read ``path`` with ``from_pretrained`` (else as a state dict, file or folder)."""
    if not (path.is_dir() and (path / "config.json").is_file()) or component == "motion_module":
        return False
    if component != "denoising_unet":
        return True
    from .motion_unet import PoseUNetMotionModel

    try:
        config = json.loads((path / "config.json").read_text())
    except (json.JSONDecodeError, OSError, UnicodeDecodeError):
        return False
    return isinstance(config, dict) and config.get("_class_name") == PoseUNetMotionModel.__name__


def _check_file(path: Path, component: str, expected: dict[str, tuple[int, ...]] | None, convert=None,
                optional: tuple[str, ...] = ()) -> tuple[str, str]:
    if not path.exists():
        return "missing", "not found"
    if _loaded_with_from_pretrained(component, path):
        return _check_folder(path, component)
    try:
        if convert is None:  # shapes only: a safetensors header, a memory-mapped pickle
            shapes = read_shapes(path)
        else:
            shapes = _shapes(convert(read_state_dict(path, mmap=True), path))
    except WeightsError as exc:
        return "wrong", str(exc).split(": ", 1)[-1]
    if expected is None:  # readable, but whether it fits cannot be told without the UNet config
        return "unchecked", f"{len(shapes)} tensors; keys and shapes not checked: the UNet config is missing or wrong"
    missing, unexpected, wrong = compare_state(expected, shapes, optional)
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys ({_keys_text(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys ({_keys_text(unexpected)})")
        if wrong:
            parts.append(f"{len(wrong)} wrong shapes ({_keys_text(wrong)})")
        return "wrong", "; ".join(parts)
    return "ok", f"{len(shapes)} tensors"


def check_weights_dir(path: str | Path, config: str | Path | DiffusionConfig = "moore") -> WeightsReport:
    """List exactly which components of a release are present, missing or wrong (format, keys, shapes).

    Nothing is loaded into memory beyond key names and shapes (safetensors headers; pickles are memory-mapped,
    except PyTorch's legacy non-zip format, which is read whole).

    Args:
        path: the weights directory (layout: ``docs/WEIGHTS.md``).
        config: release config name or path, or a :class:`DiffusionConfig`.

    Returns:
        a :class:`WeightsReport` (``report.complete``, ``report.format()``).

    Raises:
        WeightsError: ``path`` is not a folder.
        ConfigError: the release config's ``motion`` or ``pose_guider`` section is wrong (naming the field).
    """
    cfg = load_diffusion_config(config)
    root = weights_root(path)
    check_motion_config(cfg.motion, cfg.path)
    report = WeightsReport(root, cfg.name)
    p = {c: root / cfg.weights[c] for c in COMPONENTS}

    def add(component: str, status: str, detail: str) -> None:
        report.entries.append(WeightsEntry(component, p[component], status, detail, cfg.sources.get(component, "")))

    for c in ("vae", "image_encoder"):
        add(c, *_check_folder(p[c], c))
    unet_cfg = twod = full = None
    cfg_path = p["unet_config"] if p["unet_config"].suffix == ".json" else p["unet_config"] / "config.json"
    if not cfg_path.is_file():
        add("unet_config", "missing", "not found")
    else:
        try:
            unet_cfg = _unet_config(cfg_path)
            twod = _shapes(reference_unet_from_config(unet_cfg, empty=True).state_dict())
        except (WeightsError, TypeError, ValueError, KeyError, RuntimeError, ZeroDivisionError, AttributeError) as exc:
            unet_cfg = twod = None
            add("unet_config", "wrong", f"cannot build a UNet from it ({exc.__class__.__name__})")
    if twod is not None:
        # The UNet config builds: a failure now is the release config's motion section (a ConfigError naming it).
        full = _shapes(denoising_unet_from_config(unet_cfg, cfg.motion, empty=True, source=cfg.path).state_dict())
        add("unet_config", "ok", "")
    motion = None if full is None else \
        {k: s for k, s in full.items() if "motion_modules" in k.split(".") and not k.endswith(_PE_KEY)}
    add("reference_unet", *_check_file(p["reference_unet"], "reference_unet", twod,
                                       optional=REFERENCE_OPTIONAL_PREFIXES))
    add("denoising_unet", *_check_file(p["denoising_unet"], "denoising_unet", twod))
    add("motion_module", *_check_file(p["motion_module"], "motion_module", motion, convert=animatediff_to_diffusers))
    from .pose_guider import PoseGuider

    try:
        guider = _shapes(_empty(lambda: PoseGuider(**cfg.pose_guider)).state_dict())
    except TypeError:
        raise ConfigError(f"{cfg.path}: field 'pose_guider' has unknown PoseGuider arguments") from None
    add("pose_guider", *_check_file(p["pose_guider"], "pose_guider", guider))
    return report
