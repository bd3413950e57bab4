"""Shared fixtures: paths to the real test data in tests/data (see its README for sources)."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Folder with the real test clips and images."""
    return DATA


@pytest.fixture(scope="session")
def dance_short_poses():
    """Poses of tests/data/dance_short.mp4 (24 frames of a real dance), extracted once per session."""
    from pose.extract import extract_poses

    return extract_poses(DATA / "dance_short.mp4", progress=False)
