"""Typed configuration of the :class:`~animate.api.Animator`.

The defaults live in this module (the dataclasses below); ``configs/default.yaml`` spells the same values
out for users to copy and edit. A user YAML is overlaid on the defaults (only the keys it names change),
then keyword overrides are applied, then every field is checked::

    cfg = load_config("my.yaml", renderer="puppet", size=(512, 768), **{"smoothing.beta": 0.01})

Errors raise :class:`~pose.errors.ConfigError` with a one-line message that names the field (dotted path,
e.g. ``output.fps``) and the file it came from.

Sections:

``pose``       detector used on the driving video and the reference image, gap filling.
``smoothing``  One-Euro filter of the driving keypoints (``enabled`` + filter parameters).
``retarget``   map the driving body onto the reference body's proportions (``enabled`` + options).
``renderer``   ``name`` (``puppet`` on CPU, ``diffusion`` on GPU) + ``options`` passed to its constructor.
``output``     canvas ``size`` (``null`` = reference aspect at ``height`` px), ``fps`` (``null`` = driving's),
               audio, padding colour of the letterbox.
``preview``    side-by-side reference | skeleton | result output.
``diffusion``  where the diffusion renderer finds its model config (``configs/diffusion/*.yaml``) and weights.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import logging
import math
import os
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pose.errors import ConfigError
from pose.outliers import DEFAULT_MAX_JUMP

logger = logging.getLogger(__name__)

#: the user-facing copy of the defaults, shipped in the repository's ``configs`` folder.
DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "configs" / "default.yaml"


#: Largest output side in pixels (4K): beyond it the puppet's preparation alone needs gigabytes.
MAX_OUTPUT_SIDE = 4096
#: Highest output frame rate.
MAX_FPS = 240.0
#: Lowest output frame rate (below it a 12 s dance is one frame shown for hours).
MIN_FPS = 1.0

#: the source name used in error messages for values that did not come from a file.
_NO_FILE = "package defaults"


@dataclass
class PoseConfig:
    """Pose detection.

    Attributes:
        detector: a name of :func:`pose.detectors.available_detectors` (``mediapipe``, ``openpose``, ``skeleton``).
        detector_options: keyword options of that detector.
        max_interp_gap: frames without a person up to this length are interpolated; longer gaps hold
            the last detected pose (and are counted in the run's statistics).
        detect_every: run the detector on every Nth frame and interpolate in between (``"auto"``: about
            8 detections per second of video, see :func:`pose.extract.auto_detect_every`; 1 = every frame).
        max_scale_jump: drop detections whose body is more than this many times larger or smaller than the
            detections within a second around them (a collapsed skeleton of a person half out of the frame,
            :mod:`pose.outliers`); they are then filled like frames without a person. ``None`` keeps all.
        follow_identity: when the detections start to look like someone else (another dancer crossing in
            front took the tracker), detect those frames again with that person painted over and keep
            following the first one (:mod:`pose.identity`).
    """

    detector: str = "mediapipe"
    detector_options: dict = field(default_factory=dict)
    max_interp_gap: int = 8
    detect_every: int | str = "auto"
    max_scale_jump: float | None = DEFAULT_MAX_JUMP
    follow_identity: bool = True


@dataclass
class SmoothingConfig:
    """One-Euro filter of the driving keypoints (Casiez et al. 2012), see :mod:`pose.smoothing`.

    Attributes:
        enabled: smooth the driving poses.
        min_cutoff: minimum cutoff frequency in Hz (lower = steadier when still); ``None`` = the per-part
            defaults of :data:`pose.smoothing.DEFAULT_PART_CONFIGS`.
        beta: speed coefficient in Hz per (body height / s) (higher = less lag in fast motion); ``None`` =
            per-part defaults.
        d_cutoff: cutoff frequency of the speed estimate in Hz; ``None`` = default.

    Giving any of the three applies one filter setting (missing values at
    :class:`pose.smoothing.OneEuroConfig`'s defaults) to every body part.
    """

    enabled: bool = True
    min_cutoff: float | None = None
    beta: float | None = None
    d_cutoff: float | None = None


@dataclass
class RetargetConfig:
    """Driving body -> reference body proportions.

    Attributes:
        enabled: retarget (off: the driving poses are only fitted onto the canvas).
        options: keyword options of :func:`pose.retarget.retarget`.
    """

    enabled: bool = True
    options: dict = field(default_factory=dict)


@dataclass
class RendererConfig:
    """Which renderer draws the frames.

    Attributes:
        name: a name of :func:`animate.renderer.available_renderers` (``puppet`` or ``diffusion``).
        options: keyword options of the renderer's constructor.
    """

    name: str = "puppet"
    options: dict = field(default_factory=dict)


@dataclass
class OutputConfig:
    """Output canvas and video.

    Attributes:
        size: ``(width, height)`` of the output; ``None`` = the reference's aspect ratio at ``height``
            pixels (width rounded to a multiple of ``multiple_of``).
        height: output height in pixels when ``size`` is ``None``.
        multiple_of: output sides are rounded to a multiple of this even number (video codecs need even
            sides, the diffusion renderer multiples of 8).
        fps: output frame rate (finite, > 0); ``None`` = the driving video's.
        keep_audio: copy the driving video's audio track (trimmed to the rendered frame range).
        pad_color: RGB colour of the letterbox around the reference; ``None`` = each padded side runs on
            the colours along the reference's edge there (its wall, its floor).
        dir: folder of outputs whose path was not given.
    """

    size: tuple[int, int] | None = None
    height: int = 768
    multiple_of: int = 8
    fps: float | None = None
    keep_audio: bool = True
    pad_color: tuple[int, int, int] | None = None
    dir: str = "out"


@dataclass
class PreviewConfig:
    """Side-by-side preview (reference | skeleton | result).

    Attributes:
        enabled: write the preview instead of the plain result.
        skeleton_style: a style name of :data:`pose.render.STYLES` for the middle panel.
    """

    enabled: bool = False
    skeleton_style: str = "openpose"


@dataclass
class DiffusionConfig:
    """Settings handed to the diffusion renderer (which owns ``configs/diffusion/*.yaml``).

    Attributes:
        config: a release config name (``moore``, ``musepose``: ``configs/diffusion/<name>.yaml``) or the path
            of such a YAML (relative paths are resolved against the folder of the file that named it); it must
            exist.
        weights: folder holding the weights (``docs/WEIGHTS.md``); ``None`` = none given: the diffusion renderer
            then refuses to start and asks for one.
    """

    config: str = "moore"
    weights: str | None = None


@dataclass
class AnimateConfig:
    """Everything the :class:`~animate.api.Animator` needs; see the module docstring."""

    pose: PoseConfig = field(default_factory=PoseConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    retarget: RetargetConfig = field(default_factory=RetargetConfig)
    renderer: RendererConfig = field(default_factory=RendererConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    preview: PreviewConfig = field(default_factory=PreviewConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    source: str | None = None  # file the values were loaded from (None: defaults only)

    def to_dict(self) -> dict:
        """Plain nested dict (tuples as lists), suitable for YAML/JSON."""
        return _plain(dataclasses.asdict(self))

    def renderer_options(self) -> dict:
        """Constructor options of the configured renderer (``config``/``weights_dir`` added for ``diffusion``; a
        puppet ``background`` picture path not found from the working folder is looked for beside the YAML)."""
        opts = dict(self.renderer.options)
        background = opts.get("background")
        if self.renderer.name == "puppet" and isinstance(background, str) and self.source:
            # a picture named in a YAML: found from the working folder, else next to that YAML
            here, there = Path(os.path.expanduser(background)), Path(self.source).parent / background
            if not here.is_absolute() and not here.is_file() and there.is_file():
                opts["background"] = str(there)
        if self.renderer.name == "diffusion":
            opts.setdefault("config", self.diffusion_config_path())
            if self.diffusion.weights is not None:
                opts.setdefault("weights_dir", self.diffusion.weights)
        return opts

    def input_files(self) -> list[str]:
        """Files this config makes a run read besides the reference and the driving input: the YAML itself and a
        puppet ``background`` picture (outputs must not replace them)."""
        files = [self.source] if self.source else []
        background = self.renderer_options().get("background") if self.renderer.name == "puppet" else None
        if isinstance(background, str) and os.path.isfile(os.path.expanduser(background)):
            files.append(background)
        return files

    def diffusion_config_path(self) -> str:
        """``diffusion.config`` as the renderer takes it: a release name unchanged, a path made absolute."""
        value = os.path.expanduser(self.diffusion.config)
        p = Path(value)
        if not p.suffix or p.is_absolute():
            return value
        base = Path(self.source).parent if self.source else DEFAULT_CONFIG_PATH.parent
        return str(base / p)


#: keyword shortcuts accepted by :func:`load_config` -> dotted field path.
SHORTCUTS: dict[str, str] = {
    "renderer": "renderer.name",
    "renderer_options": "renderer.options",
    "detector": "pose.detector",
    "smoothing": "smoothing.enabled",
    "retarget": "retarget.enabled",
    "size": "output.size",
    "height": "output.height",
    "fps": "output.fps",
    "keep_audio": "output.keep_audio",
    "preview": "preview.enabled",
    "weights": "diffusion.weights",
}


def _plain(value: Any) -> Any:
    """``value`` with tuples as lists and numpy scalars and arrays as Python numbers and lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):  # np.int64(512), np.array([512, 768])
        return _plain(value.tolist())
    return value


def _read_yaml(path: Path) -> dict:
    from omegaconf import OmegaConf  # imported here: only needed when a file is read

    if path.is_dir():
        raise ConfigError(f"config file {path} is a folder; pass a YAML file (e.g. a copy of configs/default.yaml)")
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass an existing YAML file or omit --config")
    try:
        raw = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except Exception as exc:  # omegaconf/yaml raise many types; all mean "bad YAML"
        problem, fix = _yaml_problem(exc, path)
        raise ConfigError(f"config file {path} is not valid YAML ({problem}); {fix}") from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections (pose, renderer, output, ...)")
    return raw


def _yaml_problem(exc: Exception, path: Path) -> tuple[str, str]:
    """What the parser's ``exc`` says is wrong in ``path``, on one line with its line and column (1-based), and
    what to do.

    ``yaml``'s errors carry ``problem`` + ``problem_mark`` and often a ``context`` (what the parser was doing,
    where that began); libyaml does not name the character it cannot read, so the character at the mark is
    added. Other errors (omegaconf's interpolation errors) have their lines joined.
    """
    problem, mark = getattr(exc, "problem", None), getattr(exc, "problem_mark", None)
    if not problem or mark is None:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        return "; ".join(lines) or type(exc).__name__, "fix the syntax"
    char = _char_at(path, mark.line, mark.column)
    if char is not None and problem.startswith("found character that "):
        problem = problem.replace("found character that ", f"found character {char!r} that ", 1)
    text = f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and start is not None and (start.line, start.column) != (mark.line, mark.column):
        text += f", {context} at line {start.line + 1}, column {start.column + 1}"
    return text, "replace the tab with spaces" if char == "\t" else "fix the syntax"


def _char_at(path: Path, line: int, column: int) -> str | None:
    """The character at 0-based ``line``, ``column`` of the text file ``path`` (``None`` past its end)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").split("\n")[line][column]
    except (OSError, IndexError):
        return None


def _overlay(base: dict, update: Mapping, source: str, prefix: str = "") -> None:
    """Recursively copy ``update`` into ``base``, rejecting keys ``base`` does not have. A section given as
    ``None`` (a YAML ``output:`` whose fields are all commented out) changes nothing."""
    for key, value in update.items():
        name = f"{prefix}{key}"
        if key not in base:
            choices = ", ".join(sorted(base))
            raise ConfigError(f"{source}: unknown config field '{name}'; valid fields here: {choices}")
        if isinstance(base[key], dict) and not name.endswith("options") and value is None:
            continue
        if isinstance(base[key], dict) and not name.endswith("options") and isinstance(value, Mapping):
            _overlay(base[key], value, source, name + ".")
        elif isinstance(base[key], dict) and not name.endswith("options"):
            raise ConfigError(f"{source}: config field '{name}' must be a section (mapping), got {value!r}")
        else:
            base[key] = value


#: Fields that are free-form keyword mappings: an override may add keys inside them.
_FREE_FORM = frozenset({"pose.detector_options", "retarget.options", "renderer.options"})


#: Keywords that look like the config file's parameter: an override of that name gets a hint.
_FILE_WORDS = frozenset({"path", "source", "config", "file"})


def _set_dotted(tree: dict, dotted: str, value: Any, source: str) -> None:
    parts = dotted.split(".")
    node = tree
    for i, part in enumerate(parts):
        free = i == len(parts) - 1 and ".".join(parts[:-1]) in _FREE_FORM
        if not isinstance(node, dict) or (part not in node and not free):
            hint = " (a config file is the first argument, not a keyword)" if dotted in _FILE_WORDS else ""
            raise ConfigError(
                f"{source}: unknown config field '{dotted}'{hint}; use a shortcut ({', '.join(SHORTCUTS)}) "
                f"or a dotted path such as output.fps"
            )
        if len(parts) == 1:  # a whole section (``output={"fps": 12}``): merged into it, like a YAML's
            _overlay(node, {part: value}, source)
        elif i == len(parts) - 1:
            node[part] = value
        else:
            node = node[part]


class _Checker:
    """Converts raw values to typed ones, raising :class:`ConfigError` with field and source."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, name: str, what: str, value: Any) -> ConfigError:
        return ConfigError(f"{self.source}: config field '{name}' must be {what}, got {value!r}")

    def invalid(self, name: str, error: ConfigError) -> ConfigError:
        """``error`` of the code that owns the field (which says what it accepts), with field and source."""
        return ConfigError(f"{self.source}: config field '{name}' is invalid: {error}")

    def boolean(self, name: str, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        raise self.fail(name, "true or false", value)

    def number(self, name: str, value: Any, *, positive: bool = False, minimum: float | None = None,
               what: str = "") -> float:
        """A finite number within the bounds; ``what`` (for the message) defaults to their description."""
        what = what or _number_text(positive, minimum)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(name, what, value)
        if (positive and not value > 0) or (minimum is not None and value < minimum):
            raise self.fail(name, what, value)
        return float(value)

    def optional_number(self, name: str, value: Any, *, null: str = "null", positive: bool = False,
                        minimum: float | None = None) -> float | None:
        """``None`` or :meth:`number` (``null``: how the message names ``None``, e.g. what it means)."""
        if value is None:
            return None
        return self.number(name, value, positive=positive, minimum=minimum,
                           what=f"{null} or {_number_text(positive, minimum)}")

    def integer(self, name: str, value: Any, *, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(name, f"an integer >= {minimum}", value)
        return int(value)

    def text(self, name: str, value: Any, choices: list[str] | None = None) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(name, "a non-empty string", value)
        if choices is not None and value not in choices:
            raise self.fail(name, f"one of {', '.join(choices)}", value)
        return value

    def optional_text(self, name: str, value: Any) -> str | None:
        return None if value is None else self.text(name, value)

    def mapping(self, name: str, value: Any) -> dict:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(name, "a mapping of options", value)
        return dict(value)

    def keywords(self, name: str, value: Any, function: Callable) -> dict:
        """A mapping of keyword options of ``function`` (its keyword-only parameters)."""
        known = [n for n, prm in inspect.signature(function).parameters.items() if prm.kind is prm.KEYWORD_ONLY]
        return self.known_keys(name, self.mapping(name, value), known)

    def known_keys(self, name: str, options: dict, known: list[str]) -> dict:
        """``options`` when each of its keys is one of ``known``."""
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise self.fail(name, f"a mapping of options among {', '.join(known)} (unknown: {', '.join(unknown)})",
                            options)
        return options

    def size(self, name: str, value: Any) -> tuple[int, int] | None:
        """``None``, ``"WxH"`` or two positive whole numbers (``256`` or ``256.0``, not ``256.5``) as ints."""
        if value is None:
            return None
        if isinstance(value, str):
            value = parse_size(value, name=f"{self.source}: config field '{name}'")
        if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(_whole(v) and v > 0 for v in value):
            raise self.fail(name, "null or [width, height] in positive whole pixels (e.g. [512, 768])", value)
        return int(value[0]), int(value[1])

    def color(self, name: str, value: Any) -> tuple[int, int, int] | None:
        if value is None:
            return None
        if (
            not isinstance(value, (list, tuple))
            or len(value) != 3
            or any(isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 255 for v in value)
        ):
            raise self.fail(name, "null or [r, g, b] with values 0..255", value)
        return int(value[0]), int(value[1]), int(value[2])


def _whole(value: Any) -> bool:
    """``value`` is an integer or a float with a whole value (``384.0``), not a bool."""
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, int) and not isinstance(value, bool)


def _number_text(positive: bool = False, minimum: float | None = None) -> str:
    """``"a finite number > 0"`` and the like: what :meth:`_Checker.number` accepts, for messages."""
    bounds = (["> 0"] if positive else []) + ([f">= {minimum:g}"] if minimum is not None else [])
    return " ".join(["a finite number", " and ".join(bounds)]).rstrip()


def parse_size(text: str, name: str = "size") -> tuple[int, int]:
    """Parse ``"WxH"`` (e.g. ``"512x768"``) into ``(width, height)``.

    Raises:
        ConfigError: when ``text`` is not two positive integers joined by ``x``.
    """
    parts = str(text).lower().replace("*", "x").split("x")
    try:
        w, h = (int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"{name} must look like WIDTHxHEIGHT (e.g. 512x768), got {text!r}") from None
    if w <= 0 or h <= 0:
        raise ConfigError(f"{name} must have positive sides (e.g. 512x768), got {text!r}")
    return w, h


def _max_scale_jump(c: _Checker, value: Any) -> float | None:
    what = "null (keep all) or a finite number > 1"
    if value is not None and not c.number("pose.max_scale_jump", value, what=what) > 1.0:
        raise c.fail("pose.max_scale_jump", what, value)
    return None if value is None else float(value)


def _detect_every(c: _Checker, value: Any) -> int | str:
    if value == "auto":
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise c.fail("pose.detect_every", "'auto' or an integer >= 1", value)
    return value


def _multiple_of(c: _Checker, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 2 or value % 2:
        raise c.fail("output.multiple_of", "an even integer >= 2 (video codecs need even sides)", value)
    return value


def _retarget_options(c: _Checker, value: Any) -> dict:
    """``retarget.options``: keyword options of :func:`pose.retarget.retarget`, checked by its
    :func:`~pose.retarget.check_options` (whether a calibration frame exists is known with the driving only)."""
    from pose.retarget import check_options, retarget

    options = c.keywords("retarget.options", value, retarget)
    for key, v in options.items():
        try:
            check_options(**{key: v})
        except ConfigError as exc:
            raise c.invalid(f"retarget.options.{key}", exc) from None
    return options


def _check_detector_options(c: _Checker, cfg: AnimateConfig) -> None:
    """``pose.detector_options`` against the configured detector, without creating it (no mediapipe graph, no
    model loaded, no torch).

    Keys must be parameters of the detector class (as :func:`pose.detectors.create_detector` binds them) or the
    window options ``crop`` (checked by :func:`pose.detectors.base.check_crop`) and ``follow`` (true or
    false); values must be of their parameter's annotated type when that is a plain one (bool, int, float,
    str, path, or ``None`` with one of them). The openpose detector's ``annotator_dir`` must be given and hold
    the annotator files. Value ranges (e.g. mediapipe's confidences) are checked when the detector is created.
    """
    from pose.detectors.base import WINDOW_OPTIONS, check_crop, detector_class
    from pose.detectors.openpose import OpenposeDetector
    from pose.errors import DetectorError

    name, options = cfg.pose.detector, cfg.pose.detector_options
    try:
        cls = detector_class(name)
    except (DetectorError, ImportError) as exc:  # a registered detector whose module does not import
        raise c.invalid("pose.detector", exc) from None
    params = {n: p for n, p in inspect.signature(cls).parameters.items()
              if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    if not any(p.kind is p.VAR_KEYWORD for p in inspect.signature(cls).parameters.values()):
        c.known_keys("pose.detector_options", options, [*params, *WINDOW_OPTIONS])
    hints = _type_hints(cls.__init__)
    for key, value in options.items():
        dotted = f"pose.detector_options.{key}"
        if key == "crop":
            try:
                check_crop(value)
            except DetectorError as exc:
                raise c.invalid(dotted, exc) from None
        elif key == "follow":
            c.boolean(dotted, value)
        elif key in hints and not _of_type(value, hints[key]):
            raise c.fail(dotted, f"of type {_type_text(hints[key])} ({cls.__name__}'s {key})", value)
    if issubclass(cls, OpenposeDetector):
        _check_annotator_dir(c, options.get("annotator_dir"))


def _type_hints(function: Callable) -> dict[str, Any]:
    """``function``'s resolved parameter annotations; ``{}`` when they cannot be resolved (then not checked)."""
    import typing

    try:
        return typing.get_type_hints(function)
    except (NameError, TypeError, AttributeError):  # an annotation this Python cannot evaluate
        return {}


#: Annotated types :func:`_of_type` checks (a plain YAML value can be one of them); others are left alone.
_PLAIN_TYPES = (bool, int, float, str, Path, type(None))


def _union_members(hint: Any) -> tuple[Any, ...]:
    """The types of an annotation: ``(int, NoneType)`` for ``int | None``, ``(int,)`` for ``int``."""
    import typing

    return typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)


def _of_type(value: Any, hint: Any) -> bool:
    """``value`` fits the annotation ``hint`` (an int fits a float, a string a path); ``True`` when ``hint``
    is not made of :data:`_PLAIN_TYPES` only."""
    kinds = _union_members(hint)
    if not all(k in _PLAIN_TYPES for k in kinds):
        return True
    if isinstance(value, bool):
        return bool in kinds
    if isinstance(value, int):
        return int in kinds or float in kinds
    if isinstance(value, float):
        return float in kinds
    if isinstance(value, str):
        return str in kinds or Path in kinds
    return value is None and type(None) in kinds


def _type_text(hint: Any) -> str:
    """``int | None`` and the like, for messages."""
    return " | ".join("None" if k is type(None) else getattr(k, "__name__", str(k)) for k in _union_members(hint))


def _check_annotator_dir(c: _Checker, value: Any) -> None:
    """The openpose detector's ``annotator_dir``: given, and a folder holding its annotator files."""
    from pose.detectors.openpose import ANNOTATOR_FILES, ANNOTATOR_REPO, missing_annotator_files

    name, files = "pose.detector_options.annotator_dir", ", ".join(ANNOTATOR_FILES)
    if value is None:
        raise ConfigError(f"{c.source}: config field '{name}' is needed by the openpose detector: set it to a "
                          f"folder holding {files} (download them from {ANNOTATOR_REPO} on the Hugging Face hub)")
    if not isinstance(value, (str, os.PathLike)) or not value:
        raise c.fail(name, f"the path of a folder holding {files}", value)
    folder = Path(os.path.expanduser(value))
    missing = missing_annotator_files(folder)
    if missing:
        raise ConfigError(f"{c.source}: config field '{name}': folder {folder} lacks {', '.join(missing)}; download "
                          f"them from {ANNOTATOR_REPO} on the Hugging Face hub into that folder")


def _check_renderer_options(c: _Checker, cfg: AnimateConfig) -> None:
    """``renderer.options`` against the configured renderer, without creating it (nor importing torch).

    Puppet options are checked by :class:`animate.puppet.renderer.PuppetOptions`, the diffusion renderer's by
    :func:`animate.diffusion.settings.check_options` (its release defaults included). Other renderers check
    theirs when created.
    """
    options = cfg.renderer_options()  # as the renderer gets them (a background picture found beside the YAML)
    if cfg.renderer.name == "puppet" and options:
        from animate.puppet.renderer import PuppetOptions

        c.known_keys("renderer.options", cfg.renderer.options, [f.name for f in dataclasses.fields(PuppetOptions)])
        for key, value in options.items():
            try:
                PuppetOptions(**{key: value})
            except ConfigError as exc:
                raise c.invalid(f"renderer.options.{key}", exc) from None
            except (TypeError, ValueError):  # float() of a string, say
                raise c.fail(f"renderer.options.{key}", "a value of the type of its default in PuppetOptions",
                             value) from None
    elif cfg.renderer.name == "diffusion":
        from animate.diffusion.settings import OptionError, check_options

        try:
            check_options(options)
        except OptionError as exc:
            raise c.invalid(f"renderer.options.{exc.option}", exc) from None
        except ConfigError as exc:  # the release config named by renderer.options.config
            raise c.invalid("renderer.options.config", exc) from None


def _check_diffusion_config(c: _Checker, cfg: AnimateConfig) -> None:
    """``diffusion.config`` names a release config or an existing YAML, which is read and checked."""
    from animate.diffusion.settings import load_diffusion_config

    try:
        load_diffusion_config(cfg.diffusion_config_path())
    except ConfigError as exc:
        raise c.invalid("diffusion.config", exc) from None


def _build(raw: dict, source: str, file: str | None, *, options: bool = True) -> AnimateConfig:
    """The checked config of a complete ``raw`` tree (``options=False``: the renderer's and the detector's
    options are not checked against them, as an override may name another renderer or detector)."""
    from animate.renderer import available_renderers
    from pose.detectors import available_detectors
    from pose.render import STYLES

    c = _Checker(source)
    p, s, r, rd, o, pv, d = (raw[k] for k in ("pose", "smoothing", "retarget", "renderer", "output", "preview", "diffusion"))
    out = OutputConfig(
        size=c.size("output.size", o["size"]),
        height=c.integer("output.height", o["height"], minimum=16),
        multiple_of=_multiple_of(c, o["multiple_of"]),
        fps=c.optional_number("output.fps", o["fps"], null="null (the driving video's)", positive=True),
        keep_audio=c.boolean("output.keep_audio", o["keep_audio"]),
        pad_color=c.color("output.pad_color", o["pad_color"]),
        dir=c.text("output.dir", o["dir"]),
    )
    if out.size is not None and any(v % 2 for v in out.size):
        raise c.fail("output.size", "even width and height (video codecs need them)", list(out.size))
    if out.size is not None and max(out.size) > MAX_OUTPUT_SIDE:
        raise c.fail("output.size", f"at most {MAX_OUTPUT_SIDE} px on each side", list(out.size))
    if out.height > MAX_OUTPUT_SIDE:
        raise c.fail("output.height", f"at most {MAX_OUTPUT_SIDE} px", out.height)
    if out.fps is not None and not MIN_FPS <= out.fps <= MAX_FPS:
        raise c.fail("output.fps", f"null (the driving video's) or from {MIN_FPS:g} to {MAX_FPS:g}", out.fps)
    cfg = AnimateConfig(
        pose=PoseConfig(
            detector=c.text("pose.detector", p["detector"], available_detectors()),
            detector_options=c.mapping("pose.detector_options", p["detector_options"]),
            max_interp_gap=c.integer("pose.max_interp_gap", p["max_interp_gap"]),
            detect_every=_detect_every(c, p["detect_every"]),
            max_scale_jump=_max_scale_jump(c, p["max_scale_jump"]),
            follow_identity=c.boolean("pose.follow_identity", p["follow_identity"]),
        ),
        smoothing=SmoothingConfig(
            enabled=c.boolean("smoothing.enabled", s["enabled"]),
            min_cutoff=c.optional_number("smoothing.min_cutoff", s["min_cutoff"], positive=True),
            beta=c.optional_number("smoothing.beta", s["beta"], minimum=0.0),
            d_cutoff=c.optional_number("smoothing.d_cutoff", s["d_cutoff"], positive=True),
        ),
        retarget=RetargetConfig(
            enabled=c.boolean("retarget.enabled", r["enabled"]),
            options=_retarget_options(c, r["options"]),
        ),
        renderer=RendererConfig(
            name=c.text("renderer.name", rd["name"], available_renderers()),
            options=c.mapping("renderer.options", rd["options"]),
        ),
        output=out,
        preview=PreviewConfig(
            enabled=c.boolean("preview.enabled", pv["enabled"]),
            skeleton_style=c.text("preview.skeleton_style", pv["skeleton_style"], sorted(STYLES)),
        ),
        diffusion=DiffusionConfig(
            config=c.text("diffusion.config", d["config"]),
            weights=c.optional_text("diffusion.weights", d["weights"]),
        ),
        source=file,
    )
    _check_diffusion_config(c, cfg)
    if options:
        _check_detector_options(c, cfg)
        _check_renderer_options(c, cfg)
    return cfg


def load_config(path: str | os.PathLike | Mapping | None = None, /, **overrides: Any) -> AnimateConfig:
    """Defaults, overlaid by the YAML at ``path``, overlaid by keyword ``overrides``; validated.

    Args:
        path: a YAML file (any subset of the sections), or such sections as a mapping (as
            :func:`config_from_dict`); ``None`` = package defaults only. Positional only, so that every
            keyword is an override (``path=...`` or ``source=...`` is an unknown config field).
        **overrides: ``None`` values are ignored (so CLI flags that were not given change nothing).
            Keys are a shortcut of :data:`SHORTCUTS` (``renderer``, ``size``, ``fps``, ``smoothing``,
            ``preview``, ...), a dotted field path passed as ``**{"output.fps": 12}``, or the same path
            with ``__`` for dots (``output__fps=12``). ``size`` accepts ``(w, h)`` or ``"WxH"``. A section
            name with a mapping sets those fields of the section (``output={"fps": 12}``).

    Returns:
        The validated :class:`AnimateConfig`.

    Raises:
        ConfigError: unreadable YAML, unknown field, or a value of the wrong type/range; the message names
            the field and the file.
        TypeError: ``path`` is neither a path, a mapping nor ``None``.
    """
    if isinstance(path, Mapping):
        return _from_tree(path, None, "the config mapping", overrides)
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"config must be the path of a YAML file, a mapping of sections or None (Animator also "
                        f"takes an AnimateConfig), got {type(path).__name__}")
    tree = _plain(dataclasses.asdict(AnimateConfig()))
    tree.pop("source")
    file: str | None = None
    if path is not None:
        file = str(Path(os.path.expanduser(str(path))).resolve())
        _overlay(tree, _read_yaml(Path(file)), file)
    return _from_tree(tree, file, _NO_FILE, overrides)


def config_from_dict(tree: Mapping, /, source: str | None = None, *, origin: str = _NO_FILE,
                     **overrides: Any) -> AnimateConfig:
    """Validated :class:`AnimateConfig` from a nested dict (as :meth:`AnimateConfig.to_dict` returns).

    Args:
        tree: sections and fields; missing ones keep their defaults (positional only: ``tree=`` is an override).
        source: the file the values came from (named in errors and kept as ``config.source``).
        origin: where the values came from when not from a file, for errors.
        **overrides: as in :func:`load_config` (``source`` and ``origin`` are the parameters above: to apply
            overrides of any name to a loaded config, use :func:`apply_overrides`).

    Raises:
        ConfigError: unknown field or bad value, naming the field and ``source``.
    """
    return _from_tree(tree, source, origin, overrides)


def apply_overrides(config: AnimateConfig, overrides: Mapping[str, Any], *, origin: str = _NO_FILE) -> AnimateConfig:
    """``config`` with ``overrides`` (keys as in :func:`load_config`) applied, validated; errors name
    ``config.source``, else ``origin``. Every key is an override, so ``{"source": ...}`` is an unknown config
    field.

    Raises:
        ConfigError: unknown field or bad value.
    """
    return _from_tree(config.to_dict(), config.source, origin, overrides)


def _from_tree(tree: Mapping, source: str | None, origin: str, overrides: Mapping[str, Any]) -> AnimateConfig:
    """:func:`config_from_dict` with the ``overrides`` as a mapping (so no key can be taken for a parameter)."""
    base = _plain(dataclasses.asdict(AnimateConfig()))
    base.pop("source")
    where = source or origin
    _overlay(base, {k: v for k, v in tree.items() if k != "source"}, where)
    given = {k: v for k, v in overrides.items() if v is not None}
    # file values checked on their own, so errors blame the file; renderer and detector options only against
    # the final renderer and detector (an override may name another one)
    cfg = _build(base, where, source, options=not given)
    if not given:
        logger.debug("config loaded from %s: %s", where, cfg.to_dict())
        return cfg
    final = copy.deepcopy(base)
    for key, value in given.items():
        section = isinstance(value, Mapping) and isinstance(final.get(key), dict)  # smoothing={...}: not the shortcut
        dotted = key if section else SHORTCUTS.get(key, key.replace("__", "."))
        _set_dotted(final, dotted, _plain(value), f"keyword override {key}={value!r}")
    blamed = f"keyword overrides ({', '.join(given)}) on {where}"
    try:
        cfg = _build(final, blamed, source)
    except ConfigError as exc:
        own = _own_error(base, where, source)  # the same complaint about the file alone: the file's value is wrong
        if own is not None and str(own).removeprefix(where) == str(exc).removeprefix(blamed):
            raise own from None
        raise
    logger.debug("config from %s with overrides %s: %s", where, given, cfg.to_dict())
    return cfg


def _own_error(raw: dict, source: str, file: str | None) -> ConfigError | None:
    """The error of the ``raw`` tree checked on its own, fully; ``None`` when it has none."""
    try:
        _build(raw, source, file)
    except ConfigError as exc:
        return exc
    return None
