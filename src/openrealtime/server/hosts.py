"""Which ``Host`` headers the server answers: a defence against DNS rebinding.

A web page on ``evil.example`` can make its own name resolve to 127.0.0.1
and then script requests to "itself", reaching a server on the visitor's
machine; the browser still sends ``Host: evil.example``. A server with
authentication off would answer it (the inspector included). So:

* ``--allowed-host NAME`` (repeatable; ``OPENREALTIME_ALLOWED_HOSTS``,
  comma-separated) lists the names answered: an exact name, ``.example.com``
  for the name and its subdomains, or ``*`` for any;
* with no list and authentication **off**, the default is the names of the
  bind address: any IP address literal (rebinding needs a name),
  ``localhost`` and ``*.localhost``, the ``--host`` name itself and this
  machine's host name;
* with no list and authentication **on**, any name (keys protect the
  server; a rebinding page has none).

A request with another ``Host`` gets **421 Misdirected Request** (RFC 9110
§15.5.20: this server is not configured to answer for that authority) with
the error envelope; a request with no ``Host`` (HTTP/1.0) is answered.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Iterable


__all__ = ["HostPolicy", "host_not_allowed"]


def _name(host: str) -> str:
    """The host part of a ``Host`` header, lower case, without port or dot."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host[1:]
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def host_not_allowed(host: str) -> bytes:
    """The 421 body."""
    shown = host.encode("ascii", "backslashreplace").decode()[:200]
    return json.dumps(
        {
            "error": {
                "message": f"The Host header {shown!r} is not allowed on this "
                "server. Add the name with --allowed-host.",
                "type": "invalid_request_error",
                "param": None,
                "code": "host_not_allowed",
            }
        }
    ).encode()


class HostPolicy:
    """The names a server answers (see the module docstring).

    Args:
        allowed: the operator's list (empty: the default).
        auth_enabled: whether API keys are required.
        bind_host: the ``--host`` the server listens on.
    """

    def __init__(
        self, allowed: Iterable[str], *, auth_enabled: bool, bind_host: str
    ) -> None:
        names = [name.strip().lower().rstrip(".") for name in allowed if name.strip()]
        self.any = "*" in names or (not names and auth_enabled)
        self.ip_literals = not names
        self.exact: set[str] = set()
        self.suffixes: list[str] = []
        if not names:
            names = ["localhost", ".localhost", _name(bind_host)]
            for local in (socket.gethostname(), socket.getfqdn()):
                names.append(local.lower().rstrip("."))
        for name in names:
            if name.startswith("."):
                self.suffixes.append(name)
                self.exact.add(name[1:])
            elif name:
                self.exact.add(name)

    def allows(self, host: str | None) -> bool:
        """Whether a request with this ``Host`` header is answered."""
        if self.any or host is None:
            return True
        name = _name(host)
        if name in self.exact:
            return True
        if self.ip_literals and _is_ip(name):
            return True
        return any(name.endswith(suffix) for suffix in self.suffixes)
