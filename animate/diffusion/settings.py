"""Release configs and generation settings of the diffusion renderer, read and checked without torch.

``animate.config`` checks a YAML's ``renderer.options`` for the diffusion renderer here, when the config is
loaded, so that ``steps: 0`` or ``overlap: 30`` with ``window: 24`` fail at once with the field's name instead
of after minutes of loading weights. :class:`~animate.diffusion.renderer.DiffusionRenderer` resolves its
settings through the same :func:`generation_settings`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from pose.errors import ConfigError

from .context import WEIGHTINGS

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "diffusion"
COMPONENTS = ("vae", "image_encoder", "unet_config", "reference_unet", "denoising_unet", "pose_guider", "motion_module")

#: dtype names the renderer takes (``animate.diffusion.options.DTYPES`` maps them to torch dtypes).
DTYPE_NAMES = ("fp16", "float16", "bf16", "bfloat16", "fp32", "float32")
FIT_MODES = ("pad", "crop")  # reference.preprocess.FIT_MODES, without importing OpenCV here
#: Largest generation side: the output limit of animate.config.
MAX_SIDE = 4096
MAX_STEPS = 1000  # the schedulers' training timesteps
#: Renderer options that are not generation settings: taken as they are (checked when the renderer is built).
RUNTIME_OPTIONS = ("weights_dir", "config", "device", "dtype", "cpu_offload", "vae_slicing", "vae_tiling", "compile",
                   "pose_style", "pipeline", "pose_drawer", "init_renderer")


class OptionError(ConfigError):
    """A bad diffusion renderer option; ``option`` is its name."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"diffusion option '{option}' {message}")
        self.option = option


@dataclass
class DiffusionConfig:
    """One release's layout and settings (from ``configs/diffusion/<name>.yaml``).

    Attributes:
        name: release name (``moore``, ``musepose``).
        pose_style: skeleton drawing convention of its pose guider (``openpose`` / ``musepose``).
        weights: component -> path relative to the weights directory (see :data:`COMPONENTS`).
        sources: component -> where users download it.
        pose_guider: :class:`PoseGuider` kwargs.
        motion: ``MotionAdapter`` kwargs (``motion_max_seq_length``, ``motion_num_attention_heads``, ...).
        scheduler: ``{"class": "DDIMScheduler", ...config}``.
        defaults: generation defaults (``width``, ``height``, ``steps``, ``guidance_scale``, ``window``,
            ``overlap``, ``stride``, ``weighting``, ``fit``, ``decode_chunk_size``).
        path: file it was read from.
    """

    name: str
    pose_style: str
    weights: dict[str, str]
    sources: dict[str, str]
    pose_guider: dict[str, Any]
    motion: dict[str, Any]
    scheduler: dict[str, Any]
    defaults: dict[str, Any]
    path: str = ""


def release_names() -> str:
    """The release configs shipped in :data:`CONFIG_DIR` (``moore, musepose``), for messages."""
    return ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))


def load_diffusion_config(config: str | Path | DiffusionConfig = "moore") -> DiffusionConfig:
    """Read a release config by name (``configs/diffusion/<name>.yaml``) or path; validated, errors name the field.

    The generation ``defaults`` are checked like the renderer's options (:func:`generation_settings`).
    """
    if isinstance(config, DiffusionConfig):
        return config
    path = Path(config)
    if not path.suffix:
        if path.is_file() and not (CONFIG_DIR / f"{config}.yaml").is_file():
            raise ConfigError(f"diffusion config {config} is a file without the .yaml suffix; rename it to "
                              f"{path.name}.yaml (a name without a suffix is a release: {release_names()})")
        path = CONFIG_DIR / f"{config}.yaml"
    if not path.is_file():
        raise ConfigError(f"diffusion config '{config}' not found; use a path or one of: {release_names()}")
    try:
        raw = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except Exception as exc:  # omegaconf raises several parser error types
        raise ConfigError(f"{path}: cannot parse YAML ({exc.__class__.__name__}); fix the file") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    required = ("name", "pose_style", "weights", "pose_guider", "motion", "scheduler", "defaults")
    for key in required:
        if key not in raw:
            raise ConfigError(f"{path}: missing field '{key}'")
    for key in ("weights", "pose_guider", "motion", "scheduler", "defaults"):
        if not isinstance(raw[key], dict):
            raise ConfigError(f"{path}: field '{key}' must be a mapping")
    missing = [c for c in COMPONENTS if c not in raw["weights"]]
    if missing:
        raise ConfigError(f"{path}: field 'weights.{missing[0]}' is missing; list a path for every component")
    if "class" not in raw["scheduler"]:
        raise ConfigError(f"{path}: field 'scheduler.class' is missing (e.g. DDIMScheduler)")
    out = DiffusionConfig(name=str(raw["name"]), pose_style=str(raw["pose_style"]), weights=dict(raw["weights"]),
                          sources=dict(raw.get("sources") or {}), pose_guider=dict(raw["pose_guider"]),
                          motion=dict(raw["motion"]), scheduler=dict(raw["scheduler"]),
                          defaults=dict(raw["defaults"]), path=str(path))
    unknown = sorted(set(out.defaults) - set(GENERATION_FIELDS))
    if unknown:
        raise ConfigError(f"{path}: field 'defaults.{unknown[0]}' is unknown; use {', '.join(GENERATION_FIELDS)}")
    try:
        generation_settings(out)
    except ConfigError as exc:
        raise ConfigError(f"{path}: defaults: {exc}") from None
    return out


@dataclass(frozen=True)
class GenerationSettings:
    """What the diffusion renderer generates with: the release's defaults overridden by the user's options.

    Attributes:
        steps: denoising steps (1-1000).
        guidance_scale: classifier-free guidance (>= 0; <= 1 turns the unconditional pass off).
        window: frames per context window (None: all frames in one pass), at most the motion modules'
            ``motion_max_seq_length``.
        overlap: frames shared by consecutive windows, ``0 <= overlap < window``.
        stride: temporal subsampling inside a window (>= 1).
        weighting: blending of overlapping windows (``uniform`` / ``triangular``).
        width, height: generation size in pixels (8-4096; rounded to the VAE's multiple later).
        fit: ``pad`` or ``crop`` when the canvas aspect differs from the generation size.
        seed: noise seed (0 <= seed < 2**63).
        strength: hybrid mode: how much of the init frames is re-noised (0-1; 1 = ignore them).
        decode_chunk_size: frames per VAE decode call (>= 1).
    """

    steps: int
    guidance_scale: float
    window: int | None
    overlap: int
    stride: int
    weighting: str
    width: int
    height: int
    fit: str
    seed: int
    strength: float
    decode_chunk_size: int


GENERATION_FIELDS = tuple(GenerationSettings.__dataclass_fields__)
_FALLBACK = {"steps": 30, "guidance_scale": 3.5, "window": 24, "overlap": 4, "stride": 1, "weighting": "uniform",
             "width": 512, "height": 768, "fit": "pad", "seed": 0, "strength": 1.0, "decode_chunk_size": 8}


def _in_range(name: str, value: float, low: float, high: float | None) -> None:
    def text(v: float) -> str:
        return f"{v:g}" if isinstance(v, float) else str(v)

    if value < low or (high is not None and value > high):
        span = f">= {text(low)}" if high is None else f"in [{text(low)}, {text(high)}]"
        raise OptionError(name, f"must be {span}, got {text(value)}")


def _integer(name: str, value: Any, low: int, high: int | None = None) -> int:
    whole = isinstance(value, numbers.Integral) or (isinstance(value, numbers.Real) and float(value).is_integer())
    if isinstance(value, bool) or not whole:
        raise OptionError(name, f"must be a whole number, got {value!r}")
    _in_range(name, int(value), low, high)
    return int(value)


def _real(name: str, value: Any, low: float, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise OptionError(name, f"must be a finite number, got {value!r}")
    _in_range(name, float(value), low, high)
    return float(value)


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise OptionError(name, f"must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def generation_settings(config: DiffusionConfig, **options: Any) -> GenerationSettings:
    """The settings for ``config`` with ``options`` (``None`` = the release's default) applied, all checked.

    Raises:
        ConfigError: an unknown option, or a value out of range, naming the option and the allowed values.
    """
    unknown = sorted(set(options) - set(GENERATION_FIELDS))
    if unknown:
        raise OptionError(unknown[0], f"is unknown; use {', '.join(GENERATION_FIELDS)}")
    v = {**_FALLBACK, **config.defaults, **{k: o for k, o in options.items() if o is not None}}
    max_frames = config.motion.get("motion_max_seq_length")
    if v["window"] is None and max_frames is not None:  # one pass over a whole video: only short ones fit
        raise OptionError("window", f"must be a number of frames in [1, {max_frames}] (one pass over all frames, "
                                    f"null, fits only videos of up to {max_frames} frames)")
    window = None if v["window"] is None else _integer("window", v["window"], 1, max_frames)
    overlap = _integer("overlap", v["overlap"], 0)
    if window is not None and overlap >= window:
        raise OptionError("overlap", f"must be smaller than the window ({window} frames), got {overlap}")
    return GenerationSettings(
        steps=_integer("steps", v["steps"], 1, MAX_STEPS),
        guidance_scale=_real("guidance_scale", v["guidance_scale"], 0.0),
        window=window,
        overlap=overlap,
        stride=_integer("stride", v["stride"], 1),
        weighting=_choice("weighting", v["weighting"], WEIGHTINGS),
        width=_integer("width", v["width"], 8, MAX_SIDE),
        height=_integer("height", v["height"], 8, MAX_SIDE),
        fit=_choice("fit", v["fit"], FIT_MODES),
        seed=_integer("seed", v["seed"], 0, 2**63 - 1),
        strength=_real("strength", v["strength"], 0.0, 1.0),
        decode_chunk_size=_integer("decode_chunk_size", v["decode_chunk_size"], 1),
    )


def check_runtime_options(options: Mapping[str, Any]) -> None:
    """The renderer's other options that can be judged without torch: dtype names, switches, init renderer.

    Raises:
        ConfigError: naming the option.
    """
    dtype = options.get("dtype")
    if isinstance(dtype, str) and dtype.lower() not in DTYPE_NAMES:
        raise OptionError("dtype", f"must be one of fp16, bf16, fp32, got {dtype!r}")
    style = options.get("pose_style")
    if style is not None:
        from pose.render import STYLES

        if style not in STYLES:
            raise OptionError("pose_style", f"must be one of {', '.join(sorted(STYLES))}, got {style!r}")
    device = options.get("device")
    if device is not None and not isinstance(device, str):
        raise OptionError("device", f"must be auto, cpu or cuda[:N], got {device!r}")
    for name in ("cpu_offload", "vae_slicing", "vae_tiling", "compile"):
        if name in options and not isinstance(options[name], bool):
            raise OptionError(name, f"must be true or false, got {options[name]!r}")
    init = options.get("init_renderer")
    if init is not None:
        from animate.renderer import available_renderers

        others = [n for n in available_renderers() if n != "diffusion"]
        if init not in others:
            raise OptionError("init_renderer", f"must be another renderer ({', '.join(others)}), "
                              f"got {init!r}")


def check_options(options: Mapping[str, Any]) -> None:
    """All of the diffusion renderer's ``options`` (its constructor's keywords) that can be checked without torch.

    Raises:
        ConfigError: an unknown option or a bad value, naming it.
    """
    unknown = sorted(set(options) - set(GENERATION_FIELDS) - set(RUNTIME_OPTIONS))
    if unknown:
        known = ", ".join(sorted(set(GENERATION_FIELDS) | set(RUNTIME_OPTIONS) - {"pipeline", "pose_drawer"}))
        raise OptionError(unknown[0], f"is unknown; use {known}")
    config = load_diffusion_config(options.get("config", "moore"))
    settings = generation_settings(config, **{k: v for k, v in options.items() if k in GENERATION_FIELDS})
    check_runtime_options(options)
    if settings.strength < 1.0 and options.get("init_renderer") is None:
        # a config run has no init frames of its own: without an init renderer the strength does nothing
        raise OptionError("strength", f"{settings.strength:g} < 1 needs init_renderer: puppet (the frames it "
                                      "starts denoising from); or leave strength at 1")
