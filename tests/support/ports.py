"""Free TCP ports for the servers tests start (brokers, sandboxes, workers), safe when many processes pick.

The kernel's answer to ``bind(("127.0.0.1", 0))`` comes from the ephemeral range, which outgoing
connections draw from as well, and the port is free only until someone takes it: with several test
processes picking ports and opening connections at once, a worker found its port taken before it could
listen. Ports here come from below the ephemeral range, and each one is claimed machine-wide for
``CLAIM_S`` seconds by a file named after it, under a lock, so that no other test process (of this run or
of another checkout's run on the same machine) is handed the same port meanwhile.
"""

from __future__ import annotations

import os
import random
import socket
import tempfile
import time
from pathlib import Path

from filelock import FileLock

CLAIMS = Path(tempfile.gettempdir()) / "gorgias-test-ports"
CLAIM_S = 900.0  # a port handed out stays reserved this long (then it is free again unless something listens)
LOWEST = 20000


def free_port() -> int:
    """A port nothing listens on and no other test process was given in the last ``CLAIM_S`` seconds."""
    CLAIMS.mkdir(exist_ok=True)
    highest = _ephemeral_start() - 1
    with FileLock(str(CLAIMS / ".lock")):
        for _ in range(1000):
            port = random.randrange(LOWEST, highest)
            claim = CLAIMS / str(port)
            if _claimed(claim) or not _bindable(port):
                continue
            claim.write_text(str(os.getpid()))
            return port
    raise RuntimeError(f"no free port between {LOWEST} and {highest} (claims in {CLAIMS})")


def _claimed(claim: Path) -> bool:
    try:
        return time.time() - claim.stat().st_mtime < CLAIM_S
    except FileNotFoundError:
        return False


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ephemeral_start() -> int:
    """The lowest port the kernel picks for outgoing connections (32768 unless configured otherwise)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768
