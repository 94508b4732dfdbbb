"""Worker processes that die with their master.

``openrealtime serve --workers N`` runs uvicorn's supervisor, which starts
the workers; if the supervisor is killed outright (``kill -9``, the OOM
killer) nothing tells them, and they go on serving the port as orphans.
Each worker therefore watches its master:

* on Linux, ``prctl(PR_SET_PDEATHSIG, SIGTERM)``: the kernel sends the
  worker SIGTERM the moment its parent dies (a graceful shutdown, bounded by
  ``--shutdown-timeout``);
* everywhere, a daemon thread that checks the parent's pid every
  :data:`WATCH_INTERVAL` seconds and sends the worker SIGTERM once it has
  changed (the parent died before ``prctl`` ran, or another system).

The CLI names the master in :data:`MASTER_PID_ENV`; a process started any
other way (a single ``serve``, ``uvicorn --factory``) watches nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping


__all__ = ["MASTER_PID_ENV", "WATCH_INTERVAL", "die_with_master"]

logger = logging.getLogger("openrealtime.server")

#: The master's pid, set by the CLI for its worker processes.
MASTER_PID_ENV = "OPENREALTIME_MASTER_PID"
#: Seconds between two checks of the parent's pid.
WATCH_INTERVAL = 0.5
_PR_SET_PDEATHSIG = 1


def _set_pdeathsig() -> bool:
    if not sys.platform.startswith("linux"):  # pragma: no cover - Linux CI
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return bool(libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0)
    except (OSError, AttributeError):  # pragma: no cover - no prctl
        return False


def _watch(master: int) -> None:
    stop = threading.Event()
    while not stop.wait(WATCH_INTERVAL):
        if os.getppid() != master:
            logger.warning("the master process %s is gone; shutting down", master)
            os.kill(os.getpid(), signal.SIGTERM)
            return


def die_with_master(environ: Mapping[str, str] | None = None) -> bool:
    """In a worker started by ``serve --workers``: exit when the master dies.

    Returns whether this process is such a worker (and now watches).
    """
    env = os.environ if environ is None else environ
    value = env.get(MASTER_PID_ENV)
    if not value or not value.isdigit():
        return False
    master = int(value)
    if master == os.getpid():  # the master itself (same environment)
        return False
    _set_pdeathsig()
    if os.getppid() != master:
        # Already orphaned before we could ask the kernel.
        os.kill(os.getpid(), signal.SIGTERM)
    threading.Thread(
        target=_watch, args=(master,), name="openrealtime-master-watch", daemon=True
    ).start()
    return True
