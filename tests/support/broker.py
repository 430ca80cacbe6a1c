"""Real Apache Kafka for the tests, run by deploy/local/kafka.sh in the foreground: one node (the
session's broker), or a cluster of three whose nodes a test can SIGKILL and bring back."""

from __future__ import annotations

import atexit
import base64
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.lifetime import ends_with_this_process
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "local" / "kafka.sh"



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


@dataclass(frozen=True)
class Listener:
    """One more listener of a node: ``name`` (as in ``listener.name.<name>.*`` settings), its protocol."""

    name: str
    protocol: str
    port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass(frozen=True)
class Quorum:
    """What the nodes of one cluster share: its id and its static controller quorum."""

    cluster_id: str
    voters: str


class LocalBroker:
    """One KRaft node (broker + controller) on free loopback ports: alone, or a member of a :class:`Quorum`."""

    def __init__(
        self, sasl: bool = True, *, node_id: int = 1, quorum: Quorum | None = None,
        controller_port: int | None = None, listeners: Sequence[Listener] = (), properties: str = "",
    ) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="gorgias-kafka-"))
        self.port = free_port()
        self.sasl_port = free_port() if sasl else 0
        self.controller_port = controller_port or free_port()
        self.node_id = node_id
        self.quorum = quorum
        self.listeners = {listener.name: listener for listener in listeners}
        self.properties = properties
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.sasl_port}"

    def start(self, timeout: float = 120.0, stop_at_exit: bool = True) -> None:
        """Start and wait until it serves; ``stop_at_exit=False`` lets it outlive this process (a shared broker)."""
        self.launch(stop_at_exit)
        self.wait_ready(timeout)

    def launch(self, stop_at_exit: bool = True) -> None:
        """Start the node's process without waiting for it to serve."""
        command = [str(SCRIPT), "foreground", "--dir", str(self.dir), "--port", str(self.port),
                   "--controller-port", str(self.controller_port), "--sasl-port", str(self.sasl_port)]
        if self.quorum is not None:
            command += ["--node-id", str(self.node_id), "--voters", self.quorum.voters,
                        "--cluster-id", self.quorum.cluster_id]
        for listener in self.listeners.values():
            command += ["--listener", f"{listener.name}:{listener.protocol}:{listener.port}"]
        if self.properties:
            extra = self.dir / "extra.properties"
            extra.write_text(self.properties, encoding="utf-8")
            command += ["--properties", str(extra)]
        log = open(self.dir / "broker.log", "ab")
        self.proc = subprocess.Popen(  # its own group: stopping it stops whatever kafka.sh started
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=ends_with_this_process() if stop_at_exit else None,  # a shared broker has its guard
        )
        log.close()
        if stop_at_exit:
            atexit.register(self.stop)

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait until the node answers on its PLAINTEXT listener (for a cluster member: it has joined)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"Kafka node {self.node_id} exited early; log:\n{self.log_tail()}")
            if answers_api_versions(self.port):
                return
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"Kafka did not answer within {timeout:.0f}s; log:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        path = self.dir / "broker.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def halt(self) -> None:
        """Stop the broker (SIGTERM) but keep its data: :meth:`start` brings the same cluster back on the same
        ports."""
        self._terminate()

    def kill(self) -> None:
        """SIGKILL the node (no clean shutdown) but keep its data: :meth:`start` brings it back."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=20)

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


class LocalCluster:
    """``size`` KRaft nodes, each broker and controller, on loopback: a static quorum, topics created with
    replication factor 3 and ``min.insync.replicas`` 2 by default (set by kafka.sh for a cluster)."""

    def __init__(self, size: int = 3) -> None:
        controller_ports = {node_id: free_port() for node_id in range(1, size + 1)}
        quorum = Quorum(
            cluster_id=base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="),
            voters=",".join(f"{n}@127.0.0.1:{port}" for n, port in controller_ports.items()),
        )
        self.nodes = {
            n: LocalBroker(sasl=False, node_id=n, quorum=quorum, controller_port=port)
            for n, port in controller_ports.items()
        }

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes.values())

    def start(self, timeout: float = 180.0) -> None:
        for node in self.nodes.values():  # together: a node serves only once a quorum of controllers is up
            node.launch()
        for node in self.nodes.values():
            node.wait_ready(timeout)

    def kill(self, node_id: int) -> None:
        self.nodes[node_id].kill()

    def restart(self, node_id: int, timeout: float = 120.0) -> None:
        self.nodes[node_id].start(timeout)

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()
