"""animate.evaluation on the real clip tests/data/dance_short.mp4: perfect scores against itself, the
first-frame baseline, PCK, warp error, contact sheet, report, skipped LPIPS/FVD."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tests.helpers  # noqa: F401  (registers the "stamp" test renderer)
from animate.evaluation import (
    PSNR_CAP_DB,
    WarpError,
    compare_videos,
    contact_sheet,
    evaluate_self_reenactment,
    keep_mask,
    l1,
    pck,
    psnr,
    ssim,
)
from pose.errors import ConfigError, InputError
from pose.sequence import PoseFrame

N = 6  # frames used from the clip


@pytest.fixture(scope="module")
def clip(data_dir):
    return data_dir / "dance_short.mp4"


@pytest.fixture(scope="module")
def real_frames(clip) -> list[np.ndarray]:
    from pose.video import open_video

    with open_video(clip, end=N) as video:
        return list(video)


def test_frame_metrics_identity_and_known_values():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)
    assert psnr(a, a) == PSNR_CAP_DB and l1(a, a) == 0.0 and ssim(a, a) == pytest.approx(1.0)
    b = np.clip(a.astype(int) + 10, 0, 255).astype(np.uint8)
    diff = (b.astype(float) - a).ravel()
    assert psnr(a, b) == pytest.approx(10 * np.log10(255 ** 2 / np.mean(diff ** 2)))
    assert l1(a, b) == pytest.approx(np.abs(diff).mean() / 255)
    assert ssim(a, 255 - a) < 0.0


def test_warp_error_zero_for_static_and_small_for_translation():
    rng = np.random.default_rng(1)
    base = (rng.random((120, 160, 3)) * 255).astype(np.uint8)
    import cv2

    base = cv2.GaussianBlur(base, (0, 0), 3)  # smooth texture: trackable
    static = WarpError()
    for _ in range(3):
        static.update(base)
    assert static.mean == pytest.approx(0.0, abs=1e-6)
    moving, unrelated = WarpError(), WarpError()
    for i in range(3):
        moving.update(np.roll(base, 2 * i, axis=1))
    for i in range(3):
        unrelated.update(np.roll(base, 40 * i, axis=0)[::-1].copy())
    assert moving.mean < 0.5 * unrelated.mean


def test_pck_threshold():
    kps = np.full((134, 3), np.nan, np.float32)
    kps[:, 2] = 0
    kps[:18] = [[100 + 10 * i, 100 + 20 * i, 1.0] for i in range(18)]  # bbox 170 x 340 -> thr 17 px
    target = PoseFrame(kps, 512, 512)
    assert pck(target, target) == (18, 18)
    near = kps.copy()
    near[:9, 0] += 16  # within 0.05 * 340 = 17 px
    near[9:, 0] += 18  # outside
    assert pck(PoseFrame(near, 512, 512), target) == (9, 18)
    assert pck(None, target) == (0, 18)


def test_clip_against_itself_is_perfect(clip, tmp_path):
    sheet = tmp_path / "sheet.png"
    report = compare_videos(clip, clip, frames=N, contact_sheet_path=sheet, progress=False)
    g = report["generated"]
    assert report["frames"] == N and report["size"] == [288, 512]  # compared at 512 px height
    assert g["ssim"] == pytest.approx(1.0) and g["psnr"] == PSNR_CAP_DB and g["l1"] == 0.0
    assert g["warp_error_ratio"] == pytest.approx(1.0)
    assert report["real"]["warp_error"] > 0
    b = report["baseline_first_frame"]
    assert b["ssim"] < 1.0 and b["l1"] > 0.0 and b["warp_error"] == 0.0
    assert b["psnr"] < 45  # frames 1..5 are ~28 dB, frame 0 is capped at 100
    skipped = compare_videos(clip, clip, frames=N, skip_first=True, warp=False, progress=False)
    assert skipped["frames_scored"] == N - 1 and skipped["baseline_first_frame"]["psnr"] < 35
    assert "skipped" in report["lpips"] and "skipped" in report["fvd"]
    json.dumps(report)  # valid JSON (no inf / numpy types)
    import cv2

    img = cv2.imread(str(sheet))
    assert img.shape == (2 * 256, N * 144, 3)  # row real, row generated; 6 sampled frames of 144x256


def test_frozen_first_frame_scores_as_the_baseline(clip, real_frames):
    frozen = [real_frames[0]] * N
    report = compare_videos(frozen, clip, frames=N, progress=False)
    g, b = report["generated"], report["baseline_first_frame"]
    for key in ("ssim", "psnr", "l1"):
        assert g[key] == pytest.approx(b[key])
    assert g["ssim"] < 0.99 and g["warp_error"] == 0.0 and g["warp_error_ratio"] == 0.0
    assert g["psnr"] < 45


def test_pck_of_real_frames_beats_frozen(clip, real_frames, dance_short_poses):
    poses = dance_short_poses.slice(0, N)
    real = compare_videos(real_frames, clip, frames=N, driving_poses=poses, progress=False)
    assert real["generated"]["pck"] > 0.8
    assert real["generated"]["pck"] >= real["baseline_first_frame"]["pck"]


def test_compare_errors(clip):
    with pytest.raises(InputError, match="no frames"):
        compare_videos([], clip, progress=False)
    with pytest.raises(InputError, match="RGB"):
        compare_videos([np.zeros((4, 4, 3), np.uint8)], [np.zeros((4, 4), np.uint8)], progress=False)


def test_contact_sheet_layout():
    a = np.zeros((10, 6, 3), np.uint8)
    sheet = contact_sheet([[a, a, a], [a + 255, a + 255]])
    assert sheet.shape == (20, 18, 3)
    assert (sheet[10:, :12] == 255).all() and (sheet[10:, 12:] == 0).all()


def test_self_reenactment_report(clip, tmp_path):
    pytest.importorskip("pose.extract")
    out = tmp_path / "eval"
    report = evaluate_self_reenactment(clip, renderer="stamp", frames=N, out_dir=out, pck_eval=False,
                                       progress=False)
    saved = json.loads((out / "report.json").read_text())
    assert saved["frames"] == N and saved["renderer"] == "stamp"
    assert (out / "contact_sheet.png").is_file()
    g, b = report["generated"], report["baseline_first_frame"]
    # the stamp renderer repeats the first frame (plus a small square): close to the frozen baseline
    assert abs(g["ssim"] - b["ssim"]) < 0.05 and g["l1"] >= b["l1"] - 1e-6
    assert report["animate"]["frames"] == N


def test_self_reenactment_needs_two_frames(data_dir, clip, tmp_path):
    """A still image (or frames=1) leaves nothing to score after the reference frame: a clear error before
    any work, and no report."""
    from pose.errors import ConfigError

    out = tmp_path / "eval"
    with pytest.raises(InputError, match="single frame.*at least 2 frames"):
        evaluate_self_reenactment(data_dir / "dance_000.jpg", renderer="stamp", out_dir=out, progress=False)
    with pytest.raises(ConfigError, match="frames=1"):
        evaluate_self_reenactment(clip, renderer="stamp", frames=1, out_dir=out, progress=False)
    assert not out.exists()


def test_missing_lpips_or_fvd_weights_file_is_an_error(clip, tmp_path):
    pytest.importorskip("torch")
    from pose.errors import WeightsError

    with pytest.raises(WeightsError, match="--lpips-weights"):
        compare_videos(clip, clip, frames=2, lpips_weights=tmp_path / "nope.pth", progress=False)
    with pytest.raises(WeightsError, match="--fvd-weights"):
        compare_videos(clip, clip, frames=2, fvd_weights=tmp_path / "nope.pt", progress=False)
    junk = tmp_path / "junk.pt"
    junk.write_text("not a model")
    import warnings

    with warnings.catch_warnings(record=True) as seen:  # torch's notice on torch.jit.load came before the error
        warnings.simplefilter("always")
        with pytest.raises(WeightsError, match="junk.pt is not a TorchScript I3D model; pass the i3d_torchscript.pt"):
            compare_videos(clip, clip, frames=2, fvd_weights=junk, progress=False)
    assert not [w for w in seen if "jit" in str(w.message)]


def _subtitled(frames: list[np.ndarray]) -> list[np.ndarray]:
    """Copies of ``frames`` with a burnt-in subtitle that changes: a bar inside the bottom eighth, nearly as
    wide as the frame, alternating between two colours."""
    out = []
    for i, frame in enumerate(frames):
        f = frame.copy()
        h, w = f.shape[:2]
        f[h - h // 10:h - h // 40, w // 20:w - w // 20] = (250, 120, 250) if i % 2 else (250, 250, 120)
        out.append(f)
    return out


def test_ignored_region_is_left_out_of_every_score(clip, real_frames):
    """A burnt-in subtitle that changes (a bar of alternating colour): frames that differ from the real ones only in the bottom eighth
    score as perfect once that band is ignored, and the scores of the rest are those of the kept pixels."""
    texted = _subtitled(real_frames)
    band = [[0.0, 0.875, 1.0, 1.0]]
    full = compare_videos(texted, clip, frames=N, progress=False)
    masked = compare_videos(texted, clip, frames=N, progress=False, ignore=band)
    g = masked["generated"]
    assert full["generated"]["psnr"] < 40 and full["generated"]["ssim"] < 0.99
    assert g["psnr"] == PSNR_CAP_DB and g["ssim"] == pytest.approx(1.0) and g["l1"] == 0.0
    assert masked["settings"]["ignored_regions"] == band
    assert masked["settings"]["scored_fraction"] == pytest.approx(0.875, abs=0.01)
    assert full["settings"]["scored_fraction"] == 1.0
    # the warp error is measured on the same pixels for both videos: the flickering band no longer counts
    # (the flow is still computed on whole frames, so pixels next to the band move it a little)
    assert g["warp_error_ratio"] == pytest.approx(1.0, abs=1e-3)
    assert full["generated"]["warp_error_ratio"] > 1.05
    # the first-frame baseline is scored on the same pixels too
    b_full, b_masked = full["baseline_first_frame"], masked["baseline_first_frame"]
    assert b_masked["psnr"] != pytest.approx(b_full["psnr"])


def test_metrics_on_kept_pixels_match_the_cropped_images():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)
    b = a.copy()
    b[48:] = 255 - b[48:]  # only the bottom quarter differs ...
    b[:48, :8] = np.clip(b[:48, :8].astype(int) + 20, 0, 255)  # ... and a strip on the left
    keep = keep_mask((48, 64), [[0, 0.75, 1, 1]])
    assert keep.shape == (64, 48) and not keep[48:].any() and keep[:48].all()
    assert psnr(a, b, keep) == pytest.approx(psnr(a[:48], b[:48]))
    assert l1(a, b, keep) == pytest.approx(l1(a[:48], b[:48]))
    assert psnr(a, b, keep) > psnr(a, b)
    # SSIM: the map's mean over kept pixels, without the half-window border skimage leaves out
    assert 0.0 < ssim(a, b, keep) < 1.0 and ssim(a, a, keep) == pytest.approx(1.0)
    assert keep_mask((48, 64), []) is None


def test_contact_sheet_hatches_the_ignored_region(clip, tmp_path):
    import cv2

    sheet = tmp_path / "sheet.png"
    compare_videos(clip, clip, frames=2, progress=False, warp=False, baseline=False, contact_sheet_path=sheet,
                   ignore=[[0, 0.5, 1, 1]])
    img = cv2.imread(str(sheet))[..., ::-1]
    plain = tmp_path / "plain.png"
    compare_videos(clip, clip, frames=2, progress=False, warp=False, baseline=False, contact_sheet_path=plain)
    ref = cv2.imread(str(plain))[..., ::-1]
    # each 144x256 thumbnail (rows: real, generated): its top half as before, its bottom half changed
    for top in (0, 256):
        assert np.array_equal(img[top + 40:top + 120], ref[top + 40:top + 120])
        assert (img[top + 140:top + 250] != ref[top + 140:top + 250]).mean() > 0.5


def test_bad_ignored_regions_fail_before_any_work(clip, tmp_path):
    for bad in ([[0, 0.9, 1]], [[0.5, 0, 0.4, 1]], [[0, 0, 1, 1.5]], [["a", 0, 1, 1]]):
        with pytest.raises(ConfigError, match="X0,Y0,X1,Y1"):
            compare_videos(clip, clip, frames=2, progress=False, ignore=bad)
    with pytest.raises(ConfigError, match="whole frame"):
        compare_videos(clip, clip, frames=2, progress=False, ignore=[[0, 0, 1, 1]])
    out = tmp_path / "eval"
    with pytest.raises(ConfigError, match="X0,Y0,X1,Y1"):
        evaluate_self_reenactment(clip, renderer="stamp", frames=2, out_dir=out, progress=False,
                                  ignore=[[0, 1, 1, 0]])
    assert not out.exists()


def test_lpips_and_fvd_see_the_real_pixels_in_ignored_regions(clip, real_frames, tmp_path):
    """LPIPS and FVD run whole frames through their networks; with ``ignore`` the generated frames carry the
    real pixels in those regions, so a changing subtitle no longer counts there either. The networks are
    tiny TorchScript stand-ins with the real models' call signatures (no weights can be downloaded)."""
    torch = pytest.importorskip("torch")

    class Distance(torch.nn.Module):  # LPIPS: f(x, y) -> per-image distance
        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return (x - y).abs().mean(dim=(1, 2, 3))

    class Features(torch.nn.Module):  # I3D as StyleGAN-V calls it: pooled features of a (1, C, T, H, W) clip
        def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = True,
                    return_features: bool = True) -> torch.Tensor:
            rows = x.mean(dim=(1, 2, 4))  # (1, H): the clip's mean per image row
            return torch.cat([rows, rows ** 2], dim=1)

    lpips_path, fvd_path = tmp_path / "lpips.pt", tmp_path / "i3d.pt"
    torch.jit.script(Distance()).save(str(lpips_path))
    torch.jit.script(Features()).save(str(fvd_path))
    frames = [f for _ in range(6) for f in real_frames]  # enough frames for two FVD clips of 16
    texted = _subtitled(frames)
    band = [[0.0, 0.875, 1.0, 1.0]]
    common = dict(progress=False, warp=False, baseline=False, lpips_weights=lpips_path, fvd_weights=fvd_path)
    full = compare_videos(texted, frames, **common)
    masked = compare_videos(texted, frames, ignore=band, **common)
    assert full["lpips"]["lpips"] > 0.01 and masked["lpips"]["lpips"] == pytest.approx(0.0, abs=1e-6)
    assert full["fvd"]["clips"] == masked["fvd"]["clips"] >= 2
    assert full["fvd"]["fvd"] > 1e-4 and masked["fvd"]["fvd"] == pytest.approx(0.0, abs=1e-6)


def test_existing_report_or_contact_sheet_needs_overwrite(clip, tmp_path, monkeypatch):
    """A second run into one out_dir replaced the first run's report.json and contact_sheet.png without
    asking: each is refused before any work unless overwrite=True."""
    pytest.importorskip("pose.extract")
    from animate.api import Animator
    from pose.errors import OutputError

    out = tmp_path / "eval"
    out.mkdir()
    for name in ("report.json", "contact_sheet.png"):
        (out / name).write_text("first run")
        with monkeypatch.context() as m:
            m.setattr(Animator, "from_config", lambda *a, **k: pytest.fail("work started"))
            with pytest.raises(OutputError, match=f"{name} already exists; pass --overwrite"):
                evaluate_self_reenactment(clip, renderer="stamp", frames=2, out_dir=out, progress=False)
        assert (out / name).read_text() == "first run"
        (out / name).unlink()
    (out / "report.json").write_text("first run")
    report = evaluate_self_reenactment(clip, renderer="stamp", frames=3, out_dir=out, pck_eval=False,
                                       progress=False, height=64, overwrite=True)
    assert json.loads((out / "report.json").read_text())["frames"] == 3 == report["frames"]
    assert sorted(p.name for p in out.iterdir()) == ["contact_sheet.png", "report.json"]
    frames = tmp_path / "frames"  # a folder of frames as the clip: the contact sheet would become a frame
    frames.mkdir()
    for i in (0, 100):
        (frames / f"dance_{i:03d}.jpg").write_bytes((clip.parent / f"dance_{i:03d}.jpg").read_bytes())
    with pytest.raises(OutputError, match="into the input folder"):
        evaluate_self_reenactment(frames, renderer="stamp", out_dir=frames, progress=False, overwrite=True)
    assert sorted(p.name for p in frames.iterdir()) == ["dance_000.jpg", "dance_100.jpg"]


def test_height_too_small_for_the_puppet_mesh_fails_before_any_work(clip, tmp_path, monkeypatch):
    from animate.api import Animator

    monkeypatch.setattr(Animator, "load_driving", lambda *a, **k: pytest.fail("work started"))
    out = tmp_path / "eval"
    with pytest.raises(ConfigError, match=r"--height 100 is too small .*mesh of 64 rows .*use --height 128"):
        evaluate_self_reenactment(clip, frames=2, height=100, out_dir=out, progress=False)
    with pytest.raises(ConfigError, match=r"mesh of 16 rows .*use --height 32"):
        evaluate_self_reenactment(clip, frames=2, height=30, out_dir=out, progress=False,
                                  renderer_options={"mesh_density": 16})
    with pytest.raises(ConfigError, match=r"at least 7 px on each side; use --height 14"):
        evaluate_self_reenactment(clip, renderer="stamp", frames=2, height=7, out_dir=out, progress=False)
    assert not out.exists()


def _torchscript(tmp_path, name: str, module) -> str:
    torch = pytest.importorskip("torch")
    path = tmp_path / name
    torch.jit.script(module).save(str(path))
    return str(path)


def test_metric_models_of_another_kind_fail_when_loaded(clip, tmp_path, monkeypatch):
    """A TorchScript file of another kind as --lpips-weights / --fvd-weights failed with a traceback after the
    whole animation (and aborted the interpreter at exit); a model returning NaN wrote bare NaN into
    report.json. Each is now a one-line WeightsError before any work."""
    torch = pytest.importorskip("torch")
    from animate.api import Animator
    from pose.errors import WeightsError

    class OneArgument(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean()

    class Pair(torch.nn.Module):
        def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return x, y

    class NotANumber(torch.nn.Module):
        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return (x - y).mean() * float("nan")

    monkeypatch.setattr(Animator, "from_config", lambda *a, **k: pytest.fail("work started"))
    cases = [("lpips_weights", _torchscript(tmp_path, "one.pt", OneArgument()), "is not an LPIPS model"),
             ("lpips_weights", _torchscript(tmp_path, "pair.pt", Pair()), "is not an LPIPS model"),
             ("lpips_weights", _torchscript(tmp_path, "nan.pt", NotANumber()), "not a finite number"),
             ("fvd_weights", str(tmp_path / "pair.pt"), "is not the I3D feature model"),
             ("lpips_weights", str(tmp_path), "is a folder; pass the weights file"),
             ("lpips_weights", "", "--lpips-weights is empty")]
    for key, weights, message in cases:
        with pytest.raises(WeightsError, match=message):
            evaluate_self_reenactment(clip, renderer="stamp", frames=2, out_dir=tmp_path / "e", progress=False,
                                      **{key: weights})
    assert not (tmp_path / "e").exists()


def test_lpips_leaves_the_input_frame_out_like_the_other_scores(clip, real_frames, tmp_path):
    """With skip_first (self-reenactment), LPIPS averaged frame 0 too (the input itself, distance 0): it read
    better than the frames scored by SSIM, PSNR and L1. A stand-in LPIPS of 2 x L1 now equals 2 x L1."""
    torch = pytest.importorskip("torch")

    class TwiceL1(torch.nn.Module):  # images in [-1, 1]: mean |x - y| is twice the L1 on [0, 1]
        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return (x - y).abs().mean(dim=(1, 2, 3))

    frozen = [real_frames[0]] * len(real_frames)
    report = compare_videos(frozen, real_frames, skip_first=True, baseline=False, warp=False, progress=False,
                            lpips_weights=_torchscript(tmp_path, "l1.pt", TwiceL1()))
    assert report["lpips"]["lpips"] == pytest.approx(2 * report["generated"]["l1"], rel=1e-3)


def test_whole_frame_ignored_fails_before_any_work(clip, tmp_path, monkeypatch):
    """Two regions that together cover the frame were found only at the first compared frame, after the
    poses were extracted and the animation had started. (And a folder named report.json was answered with
    "give a file name such as .../report.json/out.mp4".)"""
    from animate.api import Animator
    from pose.errors import OutputError

    monkeypatch.setattr(Animator, "from_config", lambda *a, **k: pytest.fail("work started"))
    with pytest.raises(ConfigError, match="whole frame"):
        evaluate_self_reenactment(clip, renderer="stamp", frames=2, out_dir=tmp_path / "e", progress=False,
                                  ignore=[[0, 0, 0.5, 1], [0.5, 0, 1, 1]])
    (tmp_path / "e" / "report.json").mkdir(parents=True)
    with pytest.raises(OutputError, match=r"report.json is a folder where this file must be written") as info:
        evaluate_self_reenactment(clip, renderer="stamp", frames=2, out_dir=tmp_path / "e", progress=False)
    assert "out.mp4" not in str(info.value)


def test_clip_starting_without_the_person_is_refused(clip, tmp_path):
    """A clip whose frame 0 shows nobody was rigged from the empty frame and scored (PCK 0, exit 0)."""
    pytest.importorskip("pose.extract")
    import subprocess

    from pose.errors import NoPersonError
    from pose.video import ffmpeg_exe

    late = tmp_path / "late.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=blue:s=360x640:r=24:d=0.5",
                    "-i", str(clip), "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0[v]", "-map", "[v]",
                    "-frames:v", "20", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(late)], check=True)
    with pytest.raises(NoPersonError, match=r"frame 0 of .*late.mp4.*start with them in view"):
        evaluate_self_reenactment(late, renderer="stamp", out_dir=tmp_path / "e", progress=False, pck_eval=False)
    assert not (tmp_path / "e").exists()
