"""Names a package exports but imports only when first used (PEP 562 ``__getattr__``), so that importing the
package stays cheap: ``import pose`` does not load mediapipe, ``import animate`` no renderer."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_getattr(package: str, table: dict[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``name`` is imported from the module ``table[name]`` on first
    use and kept in ``namespace`` (the package's ``globals()``), so later lookups are plain attributes."""

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
