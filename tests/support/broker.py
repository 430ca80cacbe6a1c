"""A real Apache Kafka broker for the test session, run by deploy/local/kafka.sh in the foreground."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "local" / "kafka.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers_api_versions(port: int) -> bool:
    """True when a broker on ``port`` answers an ApiVersions request (it is serving requests)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            body = struct.pack(">hhih", 18, 0, 1, 5) + b"probe"
            s.sendall(struct.pack(">i", len(body)) + body)
            header = s.recv(4)
            return len(header) == 4 and struct.unpack(">i", header)[0] > 0
    except OSError:
        return False


class LocalBroker:
    """Starts a one-node KRaft broker (broker + controller) on free loopback ports."""

    def __init__(self, sasl: bool = True) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="gorgias-kafka-"))
        self.port = free_port()
        self.sasl_port = free_port() if sasl else 0
        self.controller_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.sasl_port}"

    def start(self, timeout: float = 120.0, stop_at_exit: bool = True) -> None:
        """Start and wait until it serves; ``stop_at_exit=False`` lets it outlive this process (a shared broker)."""
        log = open(self.dir / "broker.log", "ab")
        self.proc = subprocess.Popen(
            [str(SCRIPT), "foreground", "--dir", str(self.dir), "--port", str(self.port),
             "--controller-port", str(self.controller_port), "--sasl-port", str(self.sasl_port)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        if stop_at_exit:
            atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Kafka exited early; log:\n{self.log_tail()}")
            if answers_api_versions(self.port):
                return
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"Kafka did not answer within {timeout:.0f}s; log:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        path = self.dir / "broker.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def halt(self) -> None:
        """Stop the broker but keep its data: :meth:`start` brings the same cluster back on the same ports."""
        self._terminate()

    def stop(self) -> None:
        self._terminate()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _terminate(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)
