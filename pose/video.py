"""Video and image input/output: streamed RGB frames in, atomically written videos out.

Reading
    :func:`open_video` returns a :class:`VideoSource` that yields ``(H, W, 3)`` uint8 RGB frames one at a
    time (the video is never held in memory). A video file is decoded by the ffmpeg binary shipped with
    ``imageio-ffmpeg`` (multi-threaded, optionally downscaled inside the decoder, which is much cheaper
    than decoding at full size and resizing in Python); a folder of images is read in natural sort order
    (``frame2.png`` before ``frame10.png``).

Images
    :func:`read_image` reads one image file as RGB uint8; :func:`to_rgb` converts arrays / PIL images.
    Transparent images are composited over a background colour (white by default: the reference images
    of the anchors are characters on a plain light background, and black would merge with dark hair and
    clothes). 16-bit images are scaled to 8 bits, grayscale is replicated to three channels.

Writing
    :class:`VideoWriter` pipes frames into ffmpeg (``libx264``, ``yuv420p``, CRF 18 by default) writing a
    temporary file in the destination folder, which is renamed over the destination only when
    :meth:`VideoWriter.close` succeeds. On an exception inside ``with``, or on :meth:`VideoWriter.abort`,
    the temporary file is deleted, so a half-written video never appears under the destination name.
    Audio is deliberately not handled here: pass ``on_finalize`` (called with the finished temporary
    file before the rename) to mux audio or post-process the file in place.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from .errors import InputError, OutputError, VideoError
from .io import AtomicWriter, partial_file, publish

logger = logging.getLogger(__name__)


def _not_rotation_notice(record: logging.LogRecord) -> bool:
    """Drop imageio-ffmpeg's warning that a rotated video's frames are read at the rotated size: that is
    what :func:`_read_header` asks for (a phone video read upright), not a problem (shown even with -q)."""
    return not str(record.msg).startswith("The frame size for reading")


logging.getLogger("imageio_ffmpeg").addFilter(_not_rotation_notice)

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
)
DEFAULT_FOLDER_FPS = 24.0
WHITE: tuple[int, int, int] = (255, 255, 255)
# Frames fewer than the container announces before a decode is reported as truncated.
TRUNCATION_TOLERANCE_FRAMES = 1
# Lines of ffmpeg's stderr kept for error messages.
_STDERR_LINES = 20
# Codecs that understand ``-crf``.
_CRF_CODECS = frozenset({"libx264", "libx264rgb", "libx265", "libvpx-vp9", "libaom-av1", "libsvtav1"})
# Codecs that understand x264-style ``-preset`` names.
_PRESET_CODECS = frozenset({"libx264", "libx264rgb", "libx265"})


@dataclass(frozen=True)
class VideoFormat:
    """How :class:`VideoWriter` encodes one container (chosen by the output's suffix).

    Attributes:
        codec: ffmpeg video encoder.
        pix_fmt: its pixel format.
        crf: default constant-quality factor (``None``: the encoder has none).
        audio: encoder of a muxed audio track (``None``: the container gets no audio).
        extra: further encoder arguments.
        faststart: an MP4-family container whose index is moved to the front (``-movflags +faststart``),
            so that players can start before the whole file has arrived.
    """

    codec: str
    pix_fmt: str
    crf: int | None
    audio: str | None
    extra: tuple[str, ...] = ()
    faststart: bool = False


_H264 = VideoFormat("libx264", "yuv420p", 18, "aac")
_H264_MP4 = VideoFormat("libx264", "yuv420p", 18, "aac", faststart=True)
#: Containers :class:`VideoWriter` writes, by suffix. VP9 in realtime mode encoded 448x768 frames at about 250
#: frames/s on this 2-core machine, as fast as x264 ``veryfast`` (320); a GIF gets one palette made from its
#: first frame, so that it streams (a palette from all frames would need them all in memory first).
VIDEO_FORMATS: dict[str, VideoFormat] = {
    ".mp4": _H264_MP4, ".m4v": _H264_MP4, ".mov": _H264_MP4, ".mkv": _H264, ".avi": _H264,
    ".webm": VideoFormat("libvpx-vp9", "yuv420p", 32, "libopus",
                         ("-b:v", "0", "-row-mt", "1", "-deadline", "realtime", "-cpu-used", "6")),
    ".gif": VideoFormat("gif", "pal8", None, None),
}


#: Fastest GIF output: frame delays are stored in hundredths of a second, and browsers show any delay under
#: 2/100 s as 1/10 s.
GIF_MAX_FPS = 50.0

#: Containers that keep an alpha channel (transparent frames): VP9 with alpha in WebM (browsers, editors) and
#: ProRes 4444 in QuickTime (video editing and compositing). H.264 has no alpha; a GIF's is 1 bit.
ALPHA_FORMATS: dict[str, VideoFormat] = {
    # the same VP9 encoding with an alpha plane (which libvpx only stores without alternate reference frames)
    ".webm": replace(VIDEO_FORMATS[".webm"], pix_fmt="yuva420p",
                     extra=(*VIDEO_FORMATS[".webm"].extra, "-auto-alt-ref", "0")),
    ".mov": VideoFormat("prores_ks", "yuva444p10le", None, "aac", ("-profile:v", "4444", "-vendor", "apl0"),
                        faststart=True),
}


def video_format(path: str | os.PathLike, alpha: bool = False) -> VideoFormat:
    """The :class:`VideoFormat` for ``path``'s suffix (no suffix: ``.mp4``); with ``alpha``, one that keeps
    transparency (:data:`ALPHA_FORMATS`).

    Raises:
        OutputError: a suffix no format is known for, or one without an alpha channel when ``alpha``.
    """
    suffix = Path(path).suffix.lower() or ".mp4"
    if alpha:
        if suffix not in ALPHA_FORMATS:
            raise OutputError(f"cannot write transparent frames to {path}: {suffix} has no alpha channel; use "
                              ".webm (VP9) or .mov (ProRes 4444)")
        return ALPHA_FORMATS[suffix]
    if suffix not in VIDEO_FORMATS:
        hint = f" (for numbered PNG frames, a name such as {Path(path).stem}_%05d.png)" if suffix == ".png" else ""
        raise OutputError(f"cannot write a video to {path}: unknown format {suffix!r}; use one of "
                          f"{', '.join(VIDEO_FORMATS)}{hint}")
    return VIDEO_FORMATS[suffix]


# --------------------------------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------------------------------
def to_rgb(image, background: tuple[int, int, int] = WHITE) -> np.ndarray:
    """Convert an image to a contiguous ``(H, W, 3)`` uint8 RGB array.

    Args:
        image: numpy array ``(H, W)`` gray, ``(H, W, 1)``, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA, of
            dtype uint8, uint16 (scaled by 255/65535), bool, or float (taken to be in [0, 1]); or a PIL image
            (any mode; turned upright by its EXIF orientation).
        background: RGB colour that transparent pixels are composited over (default white).

    Returns:
        ``(H, W, 3)`` uint8 RGB array (a new array).

    Raises:
        InputError: when the array shape or dtype cannot be an image.
    """
    if not isinstance(image, np.ndarray):
        try:
            from PIL import Image
        except ImportError:  # pragma: no cover - pillow is a dependency
            Image = None
        if Image is not None and isinstance(image, Image.Image):
            from PIL import ImageOps

            image = ImageOps.exif_transpose(image)  # upright, like read_image
            has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            if image.mode.startswith("I;16"):  # 16-bit gray: PIL's own conversion to RGB would saturate it
                image = np.asarray(image).astype(np.uint16)
            elif image.mode == "I":  # 32-bit integer gray, how PIL often opens 16-bit PNGs
                image = _int_gray(np.asarray(image))
            elif image.mode == "F" and not has_alpha:  # float gray, taken to be in [0, 1] like float arrays
                image = np.asarray(image)
            else:
                image = np.asarray(image.convert("RGBA" if has_alpha else "RGB"))
        else:
            raise InputError(f"cannot use an object of type {type(image).__name__} as an image; pass a numpy array or PIL image")
    arr = image
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)) or arr.size == 0:
        raise InputError(f"an image must have shape (H, W), (H, W, 3) or (H, W, 4), got {arr.shape}")
    if arr.dtype == np.uint8 and (arr.ndim == 2 or arr.shape[2] == 3):  # as it is: no round trip through floats
        return np.repeat(arr[:, :, None], 3, axis=2) if arr.ndim == 2 else np.array(arr, order="C", copy=True)
    arr = _to_float01(arr)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.shape[2] == 4:
        alpha = arr[:, :, 3:4]
        bg = np.asarray(background, dtype=np.float32).reshape(1, 1, 3) / 255.0
        arr = arr[:, :, :3] * alpha + bg * (1.0 - alpha)
    return np.ascontiguousarray(np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8))


#: A float image whose largest value is above this is taken to be on a 0-255 scale, not [0, 1], and refused
#: (resampling overshoots a little above 1; values up to it are clipped).
FLOAT_IMAGE_MAX = 2.0


def _int_gray(arr: np.ndarray) -> np.ndarray:
    """A 32-bit integer gray image (PIL mode ``I``) as uint8 or uint16, by the range of its values."""
    lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
    if lo < 0 or hi > 65535:
        raise InputError(f"a 32-bit integer image must hold 8- or 16-bit values, found {lo}..{hi}; "
                         "convert it to 8 or 16 bits")
    return arr.astype(np.uint8 if hi <= 255 else np.uint16)


def _to_float01(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.floating):
        out = np.nan_to_num(arr.astype(np.float32), posinf=1.0, neginf=0.0)
        top = float(out.max()) if out.size else 0.0
        if top > FLOAT_IMAGE_MAX:
            raise InputError(f"a float image must be in [0, 1], but its values go up to {top:g}; divide it by "
                             "255 (or pass it as uint8)")
        return np.clip(out, 0.0, 1.0)
    raise InputError(f"unsupported image dtype {arr.dtype}; use uint8, uint16 or float in [0, 1]")


def read_image(path: str | os.PathLike, background: tuple[int, int, int] = WHITE, what: str = "image") -> np.ndarray:
    """Read an image file as ``(H, W, 3)`` uint8 RGB.

    Handles 8/16-bit, grayscale, and RGBA (composited over ``background``, default white), and turns the
    image upright by its EXIF orientation (:func:`decode_image`).

    Args:
        path: image file (PNG, JPEG, BMP, WebP, TIFF).
        background: RGB colour for transparent pixels.
        what: the file's role in error messages ("reference", "mask", ...).

    Raises:
        InputError: the file is missing or cannot be decoded as an image.
    """
    return to_rgb(decode_image(path, what), background)


def decode_image(path: str | os.PathLike, what: str = "image") -> np.ndarray:
    """Decode an image file as stored: ``(H, W)`` gray, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA, in the
    file's bit depth, turned upright by its EXIF orientation (phone photos store the pixels sideways and
    say how to turn them). ``what`` names the file's role in error messages.

    Raises:
        InputError: the file is missing or cannot be decoded as an image.
    """
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{what} {p} is a folder; give an image file")
    if not p.is_file():
        raise InputError(f"{what} {p} does not exist; check the path")
    # np.fromfile + imdecode also works for non-ASCII paths, unlike cv2.imread; IMREAD_UNCHANGED keeps
    # 16 bits and alpha but ignores the EXIF orientation, applied below.
    data = np.fromfile(str(p), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None and data.size:  # formats this OpenCV build does not decode (GIF): Pillow
        img = _decode_with_pillow(p, what)
    elif img is not None and img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    elif img is not None and img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    if img is None:
        raise InputError(f"{what} {p} cannot be decoded; check that it is a valid PNG/JPEG/BMP/WebP/TIFF/GIF file")
    return upright(img, exif_orientation(p))


def _decode_with_pillow(path: Path, what: str) -> np.ndarray | None:
    """``path``'s first frame with Pillow as RGB, or RGBA when it has transparency; ``None`` if it cannot."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if getattr(im, "n_frames", 1) > 1:
                logger.info("%s %s has %d frames; its first frame is used", what, path, im.n_frames)
            im.seek(0)
            transparent = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
            return np.asarray(im.convert("RGBA" if transparent else "RGB"))
    except (OSError, ValueError, SyntaxError, UnidentifiedImageError, Image.DecompressionBombError):
        return None


#: EXIF "Orientation" tag.
EXIF_ORIENTATION_TAG = 0x0112


def exif_orientation(path: str | os.PathLike) -> int:
    """The EXIF orientation (1-8) of an image file; 1 (as stored) when it has none or cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as im:  # reads the header only
            value = im.getexif().get(EXIF_ORIENTATION_TAG, 1)
    except (OSError, ValueError, SyntaxError):
        return 1
    return int(value) if value in range(1, 9) else 1


def upright(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels ``(H, W, ...)`` the way EXIF ``orientation`` says they are to be shown.

    1: as stored; 2: mirrored left-right; 3: turned 180 degrees; 4: mirrored top-bottom; 5: transposed
    (mirrored about the main diagonal); 6: stored turned 90 degrees counter-clockwise (shown turned
    clockwise); 7: mirrored about the other diagonal; 8: stored turned clockwise.
    """
    turn = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }.get(orientation)
    return image if turn is None else np.ascontiguousarray(turn(image))


def natural_key(name: str) -> list:
    """Sort key that orders embedded numbers numerically (``f2`` < ``f10``)."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def fit_size(width: int, height: int, max_size: int | None) -> tuple[int, int]:
    """Size after shrinking so the long side is at most ``max_size`` (aspect kept, even, never enlarged).

    Args:
        width, height: source size in pixels.
        max_size: longest side allowed; ``None`` keeps the source size.

    Returns:
        ``(width, height)``; when shrinking, both are rounded to even numbers (what video scalers like).
    """
    if max_size is None or max(width, height) <= max_size:
        return int(width), int(height)
    s = max_size / max(width, height)
    return max(2, 2 * round(width * s / 2)), max(2, 2 * round(height * s / 2))


# --------------------------------------------------------------------------------------------------
# reading videos
# --------------------------------------------------------------------------------------------------
class VideoSource:
    """A stream of RGB frames from a video file or a folder of images.

    Use :func:`open_video` to create one. Iterating yields ``(height, width, 3)`` uint8 RGB arrays;
    iterate once (a second iteration restarts decoding from ``start``).

    Attributes:
        path: the file or folder.
        fps: frames per second (of the source, or the override given to :func:`open_video`).
        width, height: size of the yielded frames (after the optional ``max_size`` downscale).
        source_width, source_height: size of the frames in the source.
        frame_count: best estimate of the number of frames that iteration yields (``None`` if unknown).
        header_frame_count: a video file's whole length by its header, duration x fps (``None`` otherwise).
        start: index of the first yielded frame in the source.
    """

    def __init__(self, path: Path, fps: float, source_size: tuple[int, int], size: tuple[int, int],
                 frame_count: int | None, start: int) -> None:
        self.path = path
        self.fps = float(fps)
        self.source_width, self.source_height = source_size
        self.width, self.height = size
        self.frame_count = frame_count
        self.start = start
        self.frames_read = 0
        self.header_frame_count: int | None = None
        self._closed = False

    @property
    def scale(self) -> tuple[float, float]:
        """``(sx, sy)`` from yielded-frame pixels to source pixels."""
        return self.source_width / self.width, self.source_height / self.height

    def __iter__(self) -> Iterator[np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def iter_keyframes(self, every: int, offset: int = 0, tail: bool = False,
                       count: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index, frame)`` for the frames whose ``offset + index`` is a multiple of ``every``.

        Args:
            every: keep every ``every``-th frame (``1``: all of them).
            offset: position of this source's first frame in the caller's numbering.
            tail: also yield the last frame of the source (once, after the others) when it is not kept anyway.
            count: the exact number of frames this source yields, when known (e.g. from
                :func:`index_packets`); a video file then drops the other frames inside the decoder instead
                of converting and sending them.

        Afterwards :attr:`frames_read` is the number of frames in the source (kept or not).
        """
        last: tuple[int, np.ndarray] | None = None
        for i, rgb in enumerate(self):
            if (offset + i) % every == 0:
                last = None
                yield i, rgb
            else:
                last = (i, rgb)
        if tail and last is not None:
            yield last

    def close(self) -> None:
        """Stop decoding and release the decoder. Safe to call twice."""
        self._closed = True

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({str(self.path)!r}, {self.width}x{self.height}, "
                f"fps={self.fps:g}, frames={self.frame_count})")


class _FolderSource(VideoSource):
    def __init__(self, path: Path, files: list[Path], fps: float, max_size: int | None,
                 start: int, end: int | None) -> None:
        self._files = files[start:end]
        if not self._files:
            raise VideoError(f"folder {path} has no image frames in range start={start} end={end}; check the range")
        first = read_image(self._files[0])
        h, w = first.shape[:2]
        super().__init__(path, fps, (w, h), fit_size(w, h, max_size), len(self._files), start)

    def __iter__(self) -> Iterator[np.ndarray]:
        self._closed = False
        for f in self._files:
            if self._closed:
                return
            try:
                img = read_image(f)
            except InputError as exc:
                raise VideoError(f"frame {f} of folder {self.path} cannot be read; remove or replace it") from exc
            if img.shape[:2] != (self.source_height, self.source_width):
                raise VideoError(
                    f"frame {f.name} in {self.path} is {img.shape[1]}x{img.shape[0]} but the first frame is "
                    f"{self.source_width}x{self.source_height}; all frames must have one size"
                )
            if (self.width, self.height) != (self.source_width, self.source_height):
                img = cv2.resize(img, (self.width, self.height), interpolation=cv2.INTER_AREA)
            self.frames_read += 1
            yield img


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped with ``imageio-ffmpeg``."""
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - dependency
        raise VideoError("imageio-ffmpeg is not installed; run `pip install imageio-ffmpeg`") from exc
    return imageio_ffmpeg.get_ffmpeg_exe()


# Header probes by (path, size, modification time): a file is probed once per process, and processes forked
# after the probe (pose extraction workers) start decoding without waiting for ffmpeg's header again.
_PROBES: dict[tuple[str, int, int], dict] = {}
_PROBES_MAX = 64


def _probe(path: Path) -> dict:
    """fps, size (after rotation) and duration of the first video stream, from ffmpeg's header (cached)."""
    key = _probe_key(path)
    if key is not None and key in _PROBES:
        return dict(_PROBES[key])
    meta, _ = _read_header(path)
    if key is not None:
        _remember_probe(key, meta)
    return meta


def _probe_key(path: Path) -> tuple[str, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return str(path.resolve()), st.st_size, st.st_mtime_ns


def _remember_probe(key: tuple[str, int, int], meta: dict) -> None:
    _remember(_PROBES, key, dict(meta))


def _remember(cache: dict, key: tuple[str, int, int], value: object) -> None:
    """Keep ``value`` for a file's :func:`_probe_key` in ``cache`` (emptied when :data:`_PROBES_MAX` are kept)."""
    if len(cache) >= _PROBES_MAX:
        cache.clear()
    cache[key] = value


def _read_header(path: Path, frame: bool = False) -> tuple[dict, bytes | None]:
    """ffmpeg's header of ``path`` (fps, rotated size, duration) and, with ``frame``, its first RGB frame."""
    import imageio_ffmpeg

    # One decoder thread: ffmpeg decodes the first frame before it prints the (rotated) output size, and
    # a frame-threaded decoder would decode several frames ahead on every core for nothing.
    gen = imageio_ffmpeg.read_frames(str(path), input_params=["-threads", "1"], output_params=["-frames:v", "1"])
    try:
        try:
            meta = next(gen)
        except (OSError, RuntimeError, StopIteration) as exc:
            text = str(exc)
            if re.search(r"Stream #\d+:\d+.*: (Audio|Subtitle|Data):", text) and not re.search(
                    r"Stream #\d+:\d+.*: Video:", text):
                raise VideoError(f"{path} has no video stream (only audio or other data); use a video of the "
                                 "dancer") from exc
            last = text.strip().splitlines()[-1] if text.strip() else "no header"
            raise VideoError(
                f"video {path} cannot be opened ({last[:160]}); the file is corrupt, truncated or not a video: re-export it"
            ) from exc
        if not frame:
            return meta, None
        try:
            return meta, next(gen)
        except (OSError, RuntimeError, StopIteration) as exc:
            raise VideoError(f"video {path} has no decodable first frame; the file is corrupt or not a video: "
                             "re-export it") from exc
    finally:
        gen.close()


def first_frame(path: str | os.PathLike) -> np.ndarray:
    """The first frame of a video file or folder of images, as ``(H, W, 3)`` uint8 RGB (rotation applied).

    For a file this is one ffmpeg call that decodes a single frame and reads the header with it; the header
    is cached, so a following :func:`open_video` of the file does not probe it again.

    Raises:
        VideoError: the path cannot be read as a video or has no frame.
    """
    p = Path(path)
    if p.is_dir() or not p.is_file():
        with open_video(p, end=1) as src:
            for rgb in src:
                return rgb
        raise VideoError(f"{p} has no frame; check the path")
    meta, buf = _read_header(p, frame=True)
    key = _probe_key(p)
    if key is not None and key not in _PROBES:
        _remember_probe(key, meta)
    w, h = (int(v) for v in meta["size"])
    return np.frombuffer(buf, np.uint8).reshape(h, w, 3)


@dataclass(frozen=True)
class PacketIndex:
    """What the packets of a video file's first video stream tell without decoding it.

    Attributes:
        frame_count: number of frames (one per packet, those the decoder would discard excluded).
        keyframes: sorted display-order indices of the key frames, where decoding can start; a seek to
            frame ``i`` decodes from the last key frame at or before ``i``.
        times: ``(frame_count,)`` display times in seconds, in display order (``None`` when the listing
            gives no time base).
    """

    frame_count: int
    keyframes: np.ndarray
    times: np.ndarray | None = None


def _packet_listing(path: Path, packets: int | None = None) -> tuple[float | None, list[list[str]]] | None:
    """ffmpeg's ``framecrc`` listing of the packets of ``path``'s first video stream (all, or the first
    ``packets``), copied, never decoded: the stream's time base (``None`` when not given) and each packet's
    fields (``0, dts, pts, duration, size, crc[, F=flags]``); ``None`` when ffmpeg cannot list them."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v:0", "-c", "copy"]
    cmd += ["-frames:v", str(packets)] if packets else []
    cmd += ["-f", "framecrc", "-"]
    try:
        out = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        logger.debug("packet listing of %s failed: %s", path, exc)
        return None
    if out.returncode != 0:
        logger.debug("packet listing of %s failed: %s", path, out.stderr.decode(errors="replace")[-200:])
        return None
    time_base: float | None = None
    rows: list[list[str]] = []
    for line in out.stdout.decode(errors="replace").splitlines():
        if line.startswith("#tb 0:"):
            num, _, den = line.split(":", 1)[1].strip().partition("/")
            try:
                time_base = int(num) / int(den)
            except (ValueError, ZeroDivisionError):
                time_base = None
        elif line.startswith("0,"):
            rows.append([f.strip() for f in line.split(",")])
    return time_base, rows


def index_packets(path: str | os.PathLike) -> PacketIndex | None:
    """Read the frame count and key-frame positions of a video file from its packets (nothing is decoded).

    ffmpeg copies the stream's packets into its ``framecrc`` listing (timestamps and flags per packet),
    which costs a fraction of a decode (about 40 ms for a 12 s 1080p clip). Returns ``None`` when the
    listing cannot be made or read (not a file, no video stream, packets without timestamps): callers then
    decode without this knowledge.
    """
    p = Path(path)
    if not p.is_file():
        return None
    listing = _packet_listing(p)
    if listing is None:
        return None
    time_base, rows = listing
    pts: list[int] = []
    key: list[bool] = []
    for fields in rows:
        flags = 1  # no "F=" field: the packet carries only the key flag
        for f in fields[6:]:
            if f.startswith("F="):
                flags = int(f[2:], 16)
        if flags & 0x4:  # AV_PKT_FLAG_DISCARD: decoded but never shown
            continue
        try:
            pts.append(int(fields[2]))
        except (IndexError, ValueError):  # NOPTS: display order unknown
            return None
        key.append(bool(flags & 0x1))
    if not pts:
        return None
    stamps = np.asarray(pts, np.int64)
    order = np.argsort(stamps, kind="stable")
    display_key = np.asarray(key, bool)[order]
    times = None if time_base is None else (stamps[order] - stamps[order][0]) * time_base
    return PacketIndex(frame_count=len(pts), keyframes=np.flatnonzero(display_key), times=times)


_STARTS: dict[tuple[str, int, int], float] = {}
#: Packets read to find a video stream's first display time (B-frames put it a few packets in).
START_PACKETS = 8


def video_start_time(path: str | os.PathLike) -> float:
    """Seconds from the start of the file's timeline to the first frame of its first video stream.

    0 for most files. A video stream that starts after the audio (an edited clip, some recorders: the
    picture begins 0.5 s into the sound) has its frame ``k`` at this offset plus ``k / fps``: seeks to a frame
    and the audio kept with it add the offset. Read from the first packets' timestamps (cached); 0.0 when
    they cannot be read.
    """
    p = Path(path)
    key = _probe_key(p)
    if key is not None and key in _STARTS:
        return _STARTS[key]
    start = 0.0
    listing = _packet_listing(p, START_PACKETS)
    if listing is not None and listing[0] is not None:
        try:
            pts = [int(fields[2]) for fields in listing[1]]
        except (IndexError, ValueError):  # NOPTS
            pts = []
        start = max(0.0, min(pts) * listing[0]) if pts else 0.0
    if key is not None:
        _remember(_STARTS, key, start)
    return start


class _StderrDrain(threading.Thread):
    """Keeps the last lines of a subprocess's stderr without letting the pipe fill up."""

    def __init__(self, stream) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.lines: deque[str] = deque(maxlen=_STDERR_LINES)

    def run(self) -> None:
        for raw in iter(self.stream.readline, b""):
            line = raw.decode(errors="replace").strip()
            if line:
                self.lines.append(line)

    def last(self) -> str:
        return self.lines[-1] if self.lines else ""


class _FileSource(VideoSource):
    def __init__(self, path: Path, fps: float | None, max_size: int | None, start: int, end: int | None,
                 threads: int, skip_deblocking: bool = False) -> None:
        meta = _probe(path)
        src_w, src_h = (int(v) for v in meta["size"])
        src_fps = float(meta.get("fps") or 0.0)
        if fps is None:
            if src_fps <= 0:
                logger.warning("video %s does not state its fps; assuming %g", path, DEFAULT_FOLDER_FPS)
                src_fps = DEFAULT_FOLDER_FPS
            fps = src_fps
        self._decode_fps = src_fps if src_fps > 0 else fps
        duration = float(meta.get("duration") or 0.0)
        total = int(round(duration * self._decode_fps)) if duration > 0 else None
        stop = total if end is None else (min(end, total) if total is not None else end)
        count = None if stop is None else max(0, stop - start)
        super().__init__(path, fps, (src_w, src_h), fit_size(src_w, src_h, max_size), count, start)
        self._end = end
        self._threads = threads
        self.header_frame_count = total
        self._skip_deblocking = skip_deblocking
        self._proc: subprocess.Popen | None = None

    def _command(self, select: str | None = None, frames: int | None = None) -> list[str]:
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-threads", str(self._threads)]
        if self._skip_deblocking and (self.width, self.height) != (self.source_width, self.source_height):
            cmd += ["-skip_loop_filter", "all"]
        if self.start > 0:
            # Accurate input seek: ffmpeg decodes from the previous key frame and drops frames whose
            # timestamp is before the seek point; half a frame early avoids rounding drops of frame `start`.
            # The seek is on the file's timeline, where the video may start later than the audio.
            offset = video_start_time(self.path)
            cmd += ["-ss", f"{offset + (self.start - 0.5) / self._decode_fps:.6f}"]
        cmd += ["-i", str(self.path), "-map", "0:v:0", "-an", "-sn"]
        filters = [select] if select else []
        if (self.width, self.height) != (self.source_width, self.source_height):
            filters.append(f"scale={self.width}:{self.height}:flags=area")
        if filters:
            cmd += ["-vf", ",".join(filters)]
        if frames is not None:
            cmd += ["-frames:v", str(frames)]
        elif self._end is not None:
            cmd += ["-frames:v", str(max(0, self._end - self.start))]
        cmd += ["-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
        return cmd

    def iter_keyframes(self, every: int, offset: int = 0, tail: bool = False,
                       count: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        if count is None or every <= 1 or count <= 0:
            yield from super().iter_keyframes(every, offset, tail, count)
            return
        # ffmpeg's select filter keeps only the wanted frames: the others are decoded (the codec needs
        # them) but never scaled, converted to RGB or sent through the pipe.
        keep = [i for i in range(count) if (offset + i) % every == 0]
        if not keep:
            yield from super().iter_keyframes(every, offset, tail, count)
            return
        expr = f"not(mod(n+{offset % every}\\,{every}))"
        if tail and keep[-1] != count - 1:
            keep.append(count - 1)
            expr += f"+eq(n\\,{count - 1})"
        got = -1
        for k, rgb in enumerate(self._read(self._command(f"select={expr}", len(keep)), len(keep))):
            got = k
            yield keep[k], rgb
        received = got + 1
        self.frames_read = count if received == len(keep) else (keep[got] + 1 if received else 0)
        if received < len(keep):
            logger.warning("video %s: decoding stopped after frame %d of %d; the file is probably truncated, "
                           "continuing with the frames read", self.path, self.start + self.frames_read,
                           self.start + count)

    def __iter__(self) -> Iterator[np.ndarray]:
        yield from self._read(self._command(), self.frame_count)

    def _read(self, cmd: list[str], expected: int | None) -> Iterator[np.ndarray]:
        self.close()
        self._closed = False
        nbytes = self.width * self.height * 3
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, bufsize=nbytes)
        self._proc = proc
        drain = _StderrDrain(proc.stderr)
        drain.start()
        n = 0
        try:
            while not self._closed:
                buf = proc.stdout.read(nbytes)
                if len(buf) < nbytes:
                    break
                n += 1
                self.frames_read = n
                yield np.frombuffer(buf, dtype=np.uint8).reshape(self.height, self.width, 3)
            else:
                return
            rc = proc.wait()
            drain.join(timeout=1.0)
            if n == 0:
                detail = drain.last() or f"ffmpeg exit status {rc}"
                raise VideoError(
                    f"video {self.path} has no decodable frame from index {self.start} ({detail[:160]}); "
                    "check the file and the start frame, or re-export it"
                )
            short = expected is not None and n < expected - TRUNCATION_TOLERANCE_FRAMES
            if short and rc == 0 and not drain.lines and self._ends_with_its_packets(n):
                logger.debug("video %s: %d frames, %d expected from the container's duration (longer audio)",
                             self.path, n, expected)
            elif rc != 0 or short:
                logger.warning(
                    "video %s: decoding stopped after %d of %s expected frames (%s); the file is probably "
                    "truncated, continuing with the frames read", self.path, n,
                    expected if expected is not None else "?", drain.last() or f"ffmpeg exit status {rc}",
                )
        finally:
            self._stop(proc)

    def _ends_with_its_packets(self, n: int) -> bool:
        """Whether ``n`` frames read from ``start`` reach the end of the video stream's own packets: the
        container's duration (which the expected count comes from) can be the audio's, longer than the
        picture's."""
        listed = index_packets(self.path)
        if listed is None:
            return False
        last = listed.frame_count if self._end is None else min(listed.frame_count, self._end)
        return self.start + n >= last - TRUNCATION_TOLERANCE_FRAMES

    def _stop(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        if self._proc is proc:
            self._proc = None

    def close(self) -> None:
        super().close()
        if self._proc is not None:
            self._stop(self._proc)


def open_video(path: str | os.PathLike, fps: float | None = None, *, max_size: int | None = None,
               start: int = 0, end: int | None = None, threads: int = 0,
               skip_deblocking: bool = False) -> VideoSource:
    """Open a video file or a folder of frame images for streamed reading.

    Args:
        path: a video file (anything ffmpeg decodes) or a folder of images (PNG/JPEG/..., natural order).
        fps: frames per second; overrides the file's own value (no resampling). Default: the file's fps,
            or 24 for a folder.
        max_size: if given, frames are downscaled (area filter, inside the decoder) so that their long side
            is at most this many pixels; ``source_width/source_height`` keep the original size.
        start: index of the first frame to yield (a file seeks there; frames are counted at the file's fps).
        end: index one past the last frame to yield (default: to the end).
        threads: ffmpeg decoding threads (0 = ffmpeg's choice).
        skip_deblocking: skip the codec's in-loop deblocking filter (``-skip_loop_filter all``; H.264/HEVC):
            about 25 % less decoding CPU. The error it adds stays small but builds up until the next key
            frame (44 dB PSNR after 250 frames of examples/assets/dance.mp4 shrunk to 960 px): for analysis
            of downscaled frames (pose detection), not for frames that are shown. Only applies to video files
            whose frames ``max_size`` shrinks.

    Returns:
        A :class:`VideoSource`; use it as a context manager or call ``close()``.

    Raises:
        VideoError: missing path, a file that is not a decodable video, an empty folder.
    """
    p = Path(path)
    if start < 0 or (end is not None and end < start):
        raise VideoError(f"invalid frame range start={start} end={end} for {p}; use 0 <= start <= end")
    if fps is not None and not fps > 0:
        raise VideoError(f"fps must be positive for {p}, got {fps}")
    if not p.exists():
        raise VideoError(f"video {p} does not exist; check the path")
    if p.is_dir():
        files = sorted((f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS),
                       key=lambda f: natural_key(f.name))
        if not files:
            raise VideoError(f"folder {p} contains no images ({', '.join(sorted(IMAGE_EXTENSIONS))}); add frames or pass a video file")
        return _FolderSource(p, files, fps if fps is not None else DEFAULT_FOLDER_FPS, max_size, start, end)
    if p.stat().st_size == 0:
        raise VideoError(f"video {p} is an empty file; re-export it")
    return _FileSource(p, fps, max_size, start, end, threads, skip_deblocking)


# --------------------------------------------------------------------------------------------------
# writing videos
# --------------------------------------------------------------------------------------------------
class VideoWriter(AtomicWriter):
    """Stream RGB frames into a video file, atomically.

    Frames are piped to ffmpeg, which writes ``.<name>.<random>.partial<suffix>`` next to ``path``;
    :meth:`close` waits for ffmpeg, calls ``on_finalize(temp_path)`` if given, then renames the temporary
    file to ``path``. :meth:`abort` (and leaving a ``with`` block by an exception) kills ffmpeg and deletes
    the temporary file.

    Odd frame sizes are padded by one black row/column on the bottom/right (``yuv420p`` needs even sizes).

    Args:
        path: output file; the container and its encoding follow its suffix (:data:`VIDEO_FORMATS`:
            ``.mp4``, ``.mov``, ``.mkv``, ``.avi``, ``.m4v`` H.264; ``.webm`` VP9; ``.gif``).
        fps: frames per second.
        size: ``(width, height)`` of the frames that will be written.
        overwrite: replace an existing ``path`` (default: refuse with :class:`OutputError`).
        codec: ffmpeg video encoder (default: the format's).
        crf: constant rate factor for encoders that support it (default: the format's; 18 for x264,
            visually lossless).
        preset: x264/x265 speed preset (default ``veryfast``: at crf 18 it encodes 512x768 frames in
            less than half the CPU time of ``medium`` for a file about 10 % larger).
        pix_fmt: output pixel format (default: the format's; ``yuv420p`` for video, playable everywhere).
        on_finalize: called with the finished temporary file before the rename, e.g. to mux audio into it
            (it must leave a valid file at that same path).
        alpha: frames are RGBA and the transparency is kept (:data:`ALPHA_FORMATS`: ``.webm``, ``.mov``).

    Raises:
        OutputError: ``path`` exists and ``overwrite`` is False; its folder does not exist or is not
            writable; its suffix is no known format; ffmpeg fails.
    """

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int], *, overwrite: bool = False,
                 codec: str | None = None, crf: int | None = None, preset: str = "veryfast",
                 pix_fmt: str | None = None, on_finalize: Callable[[Path], None] | None = None,
                 alpha: bool = False) -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self.width, self.height = (int(v) for v in size)
        self.alpha = bool(alpha)
        self._proc: subprocess.Popen | None = None
        self._palette: Path | None = None
        self._done = False
        fmt = video_format(self.path, self.alpha)
        self.format = fmt
        self.codec = codec or fmt.codec
        self.crf = crf if crf is not None else fmt.crf
        self.preset, self.pix_fmt = preset, pix_fmt or fmt.pix_fmt
        self.on_finalize = on_finalize
        self.frames_written = 0
        if not self.fps > 0:
            raise OutputError(f"fps for {self.path} must be positive, got {fps}")
        if self.codec == "gif" and self.fps > GIF_MAX_FPS:
            raise OutputError(f"{self.path} at {self.fps:g} fps would play slow: a GIF's frame delays are whole "
                              f"hundredths of a second (players slow those under 2/100 s); write it at {GIF_MAX_FPS:g} "
                              "fps or less, or as an .mp4")
        if self.width <= 0 or self.height <= 0:
            raise OutputError(f"frame size for {self.path} must be positive, got {self.width}x{self.height}")
        if self.path.exists() and not overwrite:
            raise OutputError(f"output {self.path} already exists; pass overwrite=True (--overwrite) or choose another name")
        if self.path.is_dir():
            raise OutputError(f"output {self.path} is a folder; give a file name such as {self.path / 'out.mp4'}")
        folder = self.path.parent
        if not folder.is_dir():
            raise OutputError(f"output folder {folder} does not exist; create it first")
        if not os.access(folder, os.W_OK):
            raise OutputError(f"output folder {folder} is not writable; choose another location")
        suffix = self.path.suffix or ".mp4"
        try:
            self.temp_path = partial_file(self.path, folder, suffix)
        except OSError as exc:
            raise OutputError(f"cannot create a file in {folder} ({exc.strerror}); choose another location") from exc
        if self.codec != "gif":  # a GIF starts with its first frame, which makes its palette
            self._start()

    def _start(self, first: np.ndarray | None = None) -> None:
        if self.codec == "gif" and first is not None:
            self._palette = self.temp_path.with_name(self.temp_path.name + ".palette.png")
            res = subprocess.run(
                [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                 "-s", f"{self.width}x{self.height}", "-i", "-", "-vf", "palettegen=reserve_transparent=0",
                 "-frames:v", "1", "-update", "1", str(self._palette)],
                input=np.ascontiguousarray(first).tobytes(), capture_output=True, check=False)
            if res.returncode != 0:
                self.abort()
                reason = (res.stderr.decode(errors="replace").strip().splitlines() or ["unknown error"])[-1]
                raise OutputError(f"ffmpeg could not make the GIF palette of {self.path} ({reason}); write an .mp4 instead")
        self._proc = subprocess.Popen(self._command(), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE)
        self._drain = _StderrDrain(self._proc.stderr)
        self._drain.start()

    def _command(self) -> list[str]:
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgba" if self.alpha else "rgb24", "-s", f"{self.width}x{self.height}",
               "-r", f"{self.fps:.6g}", "-i", "-"]
        if self._palette is not None:
            return [*cmd, "-i", str(self._palette), "-lavfi", "[0:v][1:v]paletteuse=dither=bayer:bayer_scale=3",
                    "-an", str(self.temp_path)]
        cmd += ["-an", "-c:v", self.codec]
        if self.codec in _CRF_CODECS and self.crf is not None:
            cmd += ["-crf", str(self.crf)]
        if self.codec in _PRESET_CODECS and self.preset:
            cmd += ["-preset", self.preset]
        if self.codec == self.format.codec:
            cmd += list(self.format.extra)
        if self.pix_fmt.startswith(("yuv420", "yuva420")) and (self.width % 2 or self.height % 2):
            cmd += ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2" + (":color=black@0" if self.alpha else "")]
        cmd += ["-pix_fmt", self.pix_fmt]
        if self.format.faststart:
            cmd += ["-movflags", "+faststart"]
        cmd += [str(self.temp_path)]
        return cmd

    def write(self, frame) -> None:
        """Append one frame: ``(height, width, 3)`` RGB (uint8, or anything :func:`to_rgb` accepts), or
        ``(height, width, 4)`` uint8 RGBA (straight alpha) for a writer opened with ``alpha=True``."""
        if self._done:
            raise OutputError(f"video {self.path} is already closed; open a new VideoWriter")
        if self.alpha:
            rgb = np.asarray(frame)
            if rgb.ndim != 3 or rgb.shape[2] != 4 or rgb.dtype != np.uint8:
                raise OutputError(f"frames for the transparent video {self.path} must be (H, W, 4) uint8 RGBA, "
                                  f"got {rgb.shape} {rgb.dtype}")
        else:
            rgb = frame if isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.ndim == 3 \
                and frame.shape[2] == 3 else to_rgb(frame)
        if rgb.shape[:2] != (self.height, self.width):
            raise OutputError(
                f"frame of size {rgb.shape[1]}x{rgb.shape[0]} written to {self.path}, which was opened for "
                f"{self.width}x{self.height}; resize frames to the writer's size"
            )
        if self._proc is None:
            self._start(rgb)
        try:
            self._proc.stdin.write(np.ascontiguousarray(rgb).tobytes())
        except (BrokenPipeError, OSError) as exc:
            self.abort()
            raise OutputError(f"ffmpeg stopped while writing {self.path} ({self._drain.last() or exc}); "
                              "check the codec and free disk space") from exc
        self.frames_written += 1

    def close(self) -> Path:
        """Finish encoding, run ``on_finalize`` and move the file into place.

        Returns:
            The final path.

        Raises:
            OutputError: ffmpeg failed, or no frame was written (the temporary file is removed).
        """
        if self._done:
            return self.path
        if self.frames_written == 0:
            self.abort()
            raise OutputError(f"no frames were written to {self.path}; nothing was saved")
        try:
            self._proc.stdin.close()
        except OSError:
            pass
        rc = self._proc.wait()
        self._drain.join(timeout=1.0)
        if rc != 0:
            self.abort()
            raise OutputError(f"ffmpeg failed writing {self.path} ({self._drain.last() or f'exit status {rc}'}); "
                              "check the codec and free disk space")
        if self._palette is not None:
            self._palette.unlink(missing_ok=True)
        try:
            if self.on_finalize is not None:
                self.on_finalize(self.temp_path)
            publish(self.temp_path, self.path)
        except BaseException:
            self.abort()
            raise
        self._done = True
        logger.info("wrote %s (%d frames, %dx%d, %g fps)", self.path, self.frames_written, self.width,
                    self.height, self.fps)
        return self.path

    def abort(self) -> None:
        """Stop ffmpeg and delete the temporary file; the destination is left untouched."""
        if self._done:
            return
        self._done = True
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            try:
                self._proc.stdin.close()
            except OSError:
                pass
            self._proc.wait()
        for path in (self.temp_path, self._palette):
            if path is not None:
                path.unlink(missing_ok=True)

    def __del__(self) -> None:  # never leave a partial file or a running ffmpeg behind
        try:
            if not self._done:
                self.abort()
        except Exception:
            pass
