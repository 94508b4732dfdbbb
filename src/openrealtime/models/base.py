"""The base class of every wire model, and the tri-state sentinel.

Theory of operation
-------------------
Every field that a peer may leave out defaults to :data:`UNSET`, and msgspec
never writes an ``UNSET`` field. So one model keeps three states apart:

* absent  -> ``UNSET`` -> not written back
* ``null`` -> ``None``  -> written back as ``null``
* a value -> the value -> written back as that value

Server-side models use required fields or ``None`` defaults for what the hosted
API always sends (including explicit ``null``), and ``UNSET`` only for what it
leaves out. ``omit_defaults`` is therefore *off*: a ``None`` default is sent as
``null``, as the hosted API does.
"""

from __future__ import annotations

from typing import Any, dataclass_transform

import msgspec
from msgspec import UNSET, UnsetType


__all__ = ["UNSET", "UnsetType", "Wire", "WireMeta"]


@dataclass_transform(kw_only_default=True, field_specifiers=(msgspec.field,))
class WireMeta(msgspec.StructMeta):
    """Metaclass that makes every wire model keyword-only.

    msgspec's ``kw_only`` does not pass down to subclasses ("the ``kw_only``
    setting only affects fields defined on that class"), so it is set here for
    each class instead of on each class by hand.
    """

    def __new__(
        mcls,
        name: str,
        bases: tuple[type, ...],
        namespace: dict[str, Any],
        **kwargs: Any,
    ) -> WireMeta:
        kwargs.setdefault("kw_only", True)
        # Wire data is tree-shaped (decoded JSON), so it can never form a
        # reference cycle: the GC need not track it (less memory, faster).
        kwargs.setdefault("gc", False)
        return super().__new__(mcls, name, bases, namespace, **kwargs)


class Wire(msgspec.Struct, metaclass=WireMeta, forbid_unknown_fields=True):
    """Base of all wire models: unknown keys are errors, fields keyword-only."""
