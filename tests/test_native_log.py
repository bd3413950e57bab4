"""mediapipe's native start-up messages are held back; everything else written to stderr still arrives."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pose.native_log import ENV_SHOW, filter_lines, is_harmless

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"

# lines as mediapipe 0.10.21 printed them during one `posedrive animate` run
XNNPACK = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
BANNER = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
FEEDBACK = (b"W0000 00:00:1796326464.597950    3037 inference_feedback_manager.cc:114] Feedback manager requires a "
            b"model with a single signature inference. Disabling support for feedback tensors.")
PROJECTION = (b"W0000 00:00:1796326464.768610    3036 landmark_projection_calculator.cc:186] Using NORM_RECT without "
              b"IMAGE_DIMENSIONS is only supported for the square ROI. Provide IMAGE_DIMENSIONS or use "
              b"PROJECTION_MATRIX.")


def test_known_messages_are_harmless_and_others_are_not():
    for line in (XNNPACK, BANNER, FEEDBACK, PROJECTION, FEEDBACK + b"\r"):
        assert is_harmless(line), line
    for line in (b"E0000 00:00:1796326464.597950    3037 calculator_graph.cc:887] INTERNAL: model file missing",
                 b"F0000 00:00:1.0  1 inference_feedback_manager.cc:114] Feedback manager crashed",
                 b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU. and something else",
                 b"Traceback (most recent call last):", b""):
        assert not is_harmless(line), line


def test_filter_lines_keeps_other_bytes_in_order():
    data = b"\n".join([XNNPACK, b"first", BANNER, FEEDBACK, b"\rprogress 50%", PROJECTION, b"last"]) + b"\n" + b"tail"
    assert filter_lines(data) == b"first\n\rprogress 50%\nlast\ntail"


_CHILD = r"""
import os, sys, threading
from pose.native_log import native_stderr_filtered
harmless = sys.argv[1].encode()
with native_stderr_filtered():
    os.write(2, harmless + b"\n")
    with native_stderr_filtered():                      # nested
        os.write(2, b"native error 1\n")
    t = threading.Thread(target=lambda: os.write(2, b"from a thread\n"))
    t.start(); t.join()
    print("python stderr", file=sys.stderr)
    os.write(2, harmless + b"\n")
os.write(2, b"after the window\n")
os.write(2, harmless + b"\n")                           # outside a window: not touched
"""


def _run_child(env_extra: dict[str, str]) -> str:
    env = {**{k: v for k, v in os.environ.items() if k != ENV_SHOW}, **env_extra}
    done = subprocess.run([sys.executable, "-c", _CHILD, FEEDBACK.decode()], cwd=ROOT, env=env,
                          capture_output=True, check=True)
    return done.stderr.decode()


def test_window_drops_only_harmless_lines_and_keeps_order():
    err = _run_child({})
    assert err.splitlines() == ["native error 1", "from a thread", "python stderr", "after the window",
                                FEEDBACK.decode()]


def test_env_variable_shows_everything():
    err = _run_child({ENV_SHOW: "1"})
    assert err.count("inference_feedback_manager") == 3
    assert "native error 1" in err


_DETECT = r"""
import cv2, sys
from pose.detectors.mediapipe_holistic import MediapipeHolisticDetector
from reference.segmentation import coarse_mask
image = cv2.cvtColor(cv2.imread(sys.argv[1]), cv2.COLOR_BGR2RGB)
detector = MediapipeHolisticDetector(static_image_mode=False)
frames = [detector(image) for _ in range(3)]
detector.close()
mask = coarse_mask(image, "holistic")
print(sum(f.has_person for f in frames), round(float((mask > 0.5).mean()), 3))
"""


def test_real_mediapipe_run_prints_no_native_chatter():
    """A detector and a segmentation in a fresh process: same results, and stderr stays empty."""
    env = {k: v for k, v in os.environ.items() if k != ENV_SHOW}
    done = subprocess.run([sys.executable, "-c", _DETECT, str(DATA / "dance_000.jpg")], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True, timeout=120)
    found, covered = done.stdout.split()
    assert found == "3" and 0.05 < float(covered) < 0.6
    assert done.stderr.strip() == "", done.stderr
    shown = subprocess.run([sys.executable, "-c", _DETECT, str(DATA / "dance_000.jpg")], cwd=ROOT,
                           env={**env, ENV_SHOW: "1"}, capture_output=True, text=True, check=True, timeout=120)
    assert "inference_feedback_manager" in shown.stderr  # the messages exist: the test above can fail
    assert shown.stdout == done.stdout
