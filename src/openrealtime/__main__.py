"""``python -m openrealtime``: the ``openrealtime`` command."""

from __future__ import annotations

import sys

from openrealtime.cli import main


if __name__ == "__main__":
    sys.exit(main())
