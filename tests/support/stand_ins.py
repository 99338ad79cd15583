"""Stand-ins for the command-line tools a script under test calls (kubectl, kind, docker compose).

A test points the script at one through the variable the script reads (``KUBECTL``,
``COMPOSE``, ...): a bash script whose body answers the calls the test cares about.
"""

from __future__ import annotations

import stat
from pathlib import Path


def stand_in(path: Path, body: str) -> Path:
    """An executable bash script at ``path`` running ``body``."""
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path
