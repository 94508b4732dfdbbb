"""The public surface: sorted ``__all__`` everywhere, and an I/O-free core."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
from types import ModuleType

import pytest

import openrealtime


__all__: list[str] = []

#: Modules not imported here: ``__main__`` runs the CLI when imported.
SKIP = {"openrealtime.__main__"}

#: The sans-I/O core, and what it must not pull in.
CORE = [
    "openrealtime",
    "openrealtime.session",
    "openrealtime.codec",
    "openrealtime.models",
]
IO_PACKAGES = ["asyncio", "starlette", "websockets", "uvicorn"]


#: Packages behind optional extras (``pip install -e ".[redis]"``).
OPTIONAL = {"redis"}


def _module_names() -> list[str]:
    names = ["openrealtime"]
    for info in pkgutil.walk_packages(openrealtime.__path__, "openrealtime."):
        if info.name not in SKIP:
            names.append(info.name)
    return sorted(names)


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as e:
        # Only an optional extra may be missing; any other import error is a bug.
        if e.name not in OPTIONAL:
            raise
        pytest.skip(f"{name}: the optional {e.name!r} extra is not installed")


@pytest.mark.parametrize("name", _module_names())
def test_all_is_sorted(name: str) -> None:
    """A module's __all__ is in sorted() order (case-sensitive)."""
    exported = getattr(_import(name), "__all__", None)
    if exported is None:
        return
    assert list(exported) == sorted(exported)


@pytest.mark.parametrize("name", _module_names())
def test_all_names_exist(name: str) -> None:
    """Every name in a module's __all__ exists in that module."""
    module = _import(name)
    missing = [n for n in getattr(module, "__all__", ()) if not hasattr(module, n)]
    assert missing == []


def test_package_all_is_sorted_and_complete() -> None:
    """openrealtime.__all__ is sorted, unique, and every name imports."""
    assert openrealtime.__all__ == sorted(set(openrealtime.__all__))
    for name in openrealtime.__all__:
        assert hasattr(openrealtime, name), name


def test_core_imports_no_io_stack() -> None:
    """Importing the core loads none of asyncio, starlette, websockets, uvicorn."""
    code = (
        "import sys, json\n"
        + "".join(f"import {name}\n" for name in CORE)
        + f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {IO_PACKAGES!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    )
    assert json.loads(out.stdout) == []
