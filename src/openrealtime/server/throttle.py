"""Throttling of API key guesses, per client address.

Every wrong key (an unknown API key or ``ek_`` key on the WebSocket, on
``POST /v1/realtime/client_secrets``, or on the inspector's login) counts one
failure for the client's IP address. After ``max_failures`` failures within
``window`` seconds, that address gets **429** (REST; ``Retry-After`` says
when to try again) or an ``error`` event and close 3000 (WebSocket) for
every key it presents, right or wrong, until the window ends. A missing key
is not a guess and is not counted.

Memory is bounded: at most ``max_clients`` addresses are remembered (the
least recently failing are forgotten first).

Behind a reverse proxy every client has the proxy's address: run uvicorn
with ``--forwarded-allow-ips`` (REST) or turn the throttle off
(``--auth-max-failures 0``) and throttle at the proxy.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable

from openrealtime.exceptions import ProtocolError


__all__ = ["AuthThrottle", "RateLimited", "too_many_failures"]


class RateLimited(ProtocolError):
    """Too many wrong keys from one address (``rate_limit_exceeded``)."""

    type = "requests"


def too_many_failures(retry_after: float) -> RateLimited:
    """The error of a throttled address."""
    seconds = max(1, math.ceil(retry_after))
    return RateLimited(
        "rate_limit_exceeded",
        "Too many requests with an incorrect API key from your address. "
        f"Please try again in {seconds}s.",
        None,
    )


class AuthThrottle:
    """Failed key checks per client address (see the module docstring).

    Args:
        max_failures: failures allowed within ``window``; 0 turns it off.
        window: seconds a failure counts.
        max_clients: addresses remembered at most.
        clock: monotonic seconds.
    """

    def __init__(
        self,
        *,
        max_failures: int = 10,
        window: float = 60.0,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.max_clients = max_clients
        self._clock = clock
        #: address -> (failures, when the first of them happened)
        self._failures: collections.OrderedDict[str, tuple[int, float]] = (
            collections.OrderedDict()
        )

    def __len__(self) -> int:
        return len(self._failures)

    def retry_after(self, address: str | None) -> float:
        """Seconds until ``address`` may present keys again (0: now)."""
        if not self.max_failures or address is None:
            return 0.0
        entry = self._failures.get(address)
        if entry is None:
            return 0.0
        count, since = entry
        left = since + self.window - self._clock()
        if left <= 0:
            del self._failures[address]
            return 0.0
        return left if count >= self.max_failures else 0.0

    def failed(self, address: str | None) -> None:
        """Count a wrong key from ``address``."""
        if not self.max_failures or address is None:
            return
        now = self._clock()
        count, since = self._failures.pop(address, (0, now))
        if now - since >= self.window:
            count, since = 0, now
        self._failures[address] = (count + 1, since)
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)
