"""Path-level differences between two JSON values.

Used by the inspector (what a ``session.update`` changed) and by ``replay``
(how an event differs from the recorded one). Paths are written as the hosted
API writes ``param``: dotted keys, ``[i]`` for array items
(``audio.input.turn_detection.threshold``, ``tools[0].name``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


__all__ = ["Change", "MISSING", "diff"]


class _Missing:
    """The value on the side where a path does not exist."""

    def __repr__(self) -> str:
        return "MISSING"


#: Stands for "no value here" in :class:`Change` (``None`` is JSON ``null``).
MISSING: Any = _Missing()


@dataclass(frozen=True, slots=True)
class Change:
    """One difference.

    Attributes:
        op: ``"added"`` (only in the new value), ``"removed"`` (only in the
            old one) or ``"changed"``.
        path: where, as a dotted path with ``[i]`` for array items; ``""`` is
            the whole value.
        old: the old value (:data:`MISSING` when added).
        new: the new value (:data:`MISSING` when removed).
    """

    op: Literal["added", "removed", "changed"]
    path: str
    old: Any
    new: Any

    def to_json(self) -> dict[str, Any]:
        """A JSON object: ``op``, ``path`` and ``old`` / ``new`` where present."""
        out: dict[str, Any] = {"op": self.op, "path": self.path}
        if self.old is not MISSING:
            out["old"] = self.old
        if self.new is not MISSING:
            out["new"] = self.new
        return out


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def diff(old: Any, new: Any, path: str = "") -> list[Change]:
    """The differences from ``old`` to ``new``, in document order.

    Objects are compared key by key (keys of ``old`` first, then keys only in
    ``new``), arrays item by item; any other pair of unequal values (including
    an object replaced by ``null``) is one ``changed`` entry.

    Args:
        old: a JSON value (dicts, lists, strings, numbers, booleans, ``None``).
        new: another.
        path: the prefix of every path reported.

    Returns:
        The changes; empty when the values are equal.
    """
    changes: list[Change] = []
    _diff(old, new, path, changes)
    return changes


def _diff(old: Any, new: Any, path: str, out: list[Change]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key, value in old.items():
            where = _join(path, str(key))
            if key in new:
                _diff(value, new[key], where, out)
            else:
                out.append(Change("removed", where, value, MISSING))
        for key, value in new.items():
            if key not in old:
                out.append(Change("added", _join(path, str(key)), MISSING, value))
        return
    if isinstance(old, list) and isinstance(new, list):
        for i, value in enumerate(old):
            where = f"{path}[{i}]"
            if i < len(new):
                _diff(value, new[i], where, out)
            else:
                out.append(Change("removed", where, value, MISSING))
        for i in range(len(old), len(new)):
            out.append(Change("added", f"{path}[{i}]", MISSING, new[i]))
        return
    # bool is an int in Python: True == 1, but they are different JSON values.
    if old != new or isinstance(old, bool) is not isinstance(new, bool):
        out.append(Change("changed", path, old, new))
