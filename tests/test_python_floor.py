"""The packages run on the oldest Python that ``pyproject.toml`` admits.

CI runs one interpreter (3.11), so a newer-only name (``typing.Self``, ``tomllib``, ...) would pass every
other test and still break ``import pose`` for a user on the floor version. vermin reads the source and
names the lowest version each construct needs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

vermin = pytest.importorskip("vermin", reason="vermin is a dev dependency: pip install -e '.[dev]'")

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("pose", "reference", "animate")


def _floor() -> tuple[int, int]:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'^requires-python\s*=\s*">=\s*(\d+)\.(\d+)"', text, re.MULTILINE)
    assert match, "pyproject.toml has no requires-python = \">=X.Y\" line"
    return int(match.group(1)), int(match.group(2))


def _needed(path: Path, config: vermin.Config) -> tuple[int, int]:
    """The lowest Python 3 version that ``path`` needs, as (major, minor)."""
    visitor = vermin.visit(path.read_text(encoding="utf-8"), config, path=str(path))
    minimum = visitor.minimum_versions()[1]  # [python2, python3]; None when nothing is known
    if not minimum:
        return (3, 0)
    return int(minimum[0]), int(minimum[1])


def test_packages_need_no_python_newer_than_the_declared_floor():
    floor = _floor()
    config = vermin.Config()
    config.set_eval_annotations(True)  # `from __future__ import annotations` hides annotations otherwise
    too_new = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            needed = _needed(path, config)
            if needed > floor:
                too_new[str(path.relative_to(ROOT))] = needed
    assert not too_new, f"needs a newer Python than requires-python >= {floor}: {too_new}"
