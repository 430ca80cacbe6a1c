"""One Kafka broker for a whole test run, however many processes run the tests (pytest-xdist).

The run's main process (pytest itself, or pytest-xdist's controller) opens a run folder before any test
process starts and closes it at the very end. The first process whose tests need Kafka starts the broker
under a file lock in that folder and writes where it listens; the others read it. The broker outlives the
process that started it (another process may still be running tests); the main process stops it when the
run ends, and a small guard process stops it should the main process die without doing so.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from filelock import FileLock

from tests.support.broker import LocalBroker

RUN_DIR = "GORGIAS_TESTS_RUN_DIR"
OWNER_PID = "GORGIAS_TESTS_OWNER_PID"

# Runs beside the broker: once the run's main process is gone, stop the broker's process group.
GUARD = """
import os, shutil, signal, sys, time
owner, group, folder = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def alive(kill):
    try:
        kill(0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True
while alive(lambda s: os.kill(owner, s)):
    if not alive(lambda s: os.killpg(group, s)):
        sys.exit()
    time.sleep(1)
for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
    if alive(lambda s: os.killpg(group, sig)):
        deadline = time.monotonic() + grace
        while alive(lambda s: os.killpg(group, s)) and time.monotonic() < deadline:
            time.sleep(0.2)
shutil.rmtree(folder, ignore_errors=True)
"""


@dataclass(frozen=True)
class SharedBroker:
    """Where the run's broker listens (PLAINTEXT and SASL_PLAINTEXT), its process group and its folder."""

    port: int
    sasl_port: int
    group: int
    folder: str

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.sasl_port}"


def open_run() -> None:
    """In the run's main process, before the test processes start: the folder they find each other in."""
    os.environ[RUN_DIR] = tempfile.mkdtemp(prefix="gorgias-tests-")
    os.environ[OWNER_PID] = str(os.getpid())


def shared_broker() -> SharedBroker:
    """The run's broker, started by the first process that asks for it."""
    run = Path(os.environ.get(RUN_DIR) or _open_run_here())
    with FileLock(str(run / "broker.lock")):
        info, failure = run / "broker.json", run / "broker.error"
        if info.exists():
            return SharedBroker(**json.loads(info.read_text()))
        if failure.exists():
            raise RuntimeError(f"the run's broker did not start (first attempt):\n{failure.read_text()}")
        broker = LocalBroker(sasl=True)
        try:
            broker.start(stop_at_exit=False)
        except RuntimeError as exc:
            failure.write_text(str(exc))
            raise
        assert broker.proc is not None
        shared = SharedBroker(broker.port, broker.sasl_port, broker.proc.pid, str(broker.dir))
        _guard(shared, int(os.environ[OWNER_PID]))
        info.write_text(json.dumps(asdict(shared)))
        return shared


def close_run() -> None:
    """In the run's main process, at the very end: stop the broker if one was started, remove the folder."""
    folder = os.environ.pop(RUN_DIR, None)
    os.environ.pop(OWNER_PID, None)
    if folder is None:
        return
    info = Path(folder) / "broker.json"
    if info.exists():
        shared = SharedBroker(**json.loads(info.read_text()))
        _end_group(shared.group)
        shutil.rmtree(shared.folder, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)


def _open_run_here() -> str:
    """A process asked for the broker without a run folder (no main process opened one): this one owns it."""
    open_run()
    return os.environ[RUN_DIR]


def _guard(shared: SharedBroker, owner: int) -> None:
    subprocess.Popen(
        [sys.executable, "-c", GUARD, str(owner), str(shared.group), shared.folder],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )


def _end_group(group: int) -> None:
    """SIGTERM the broker's process group, SIGKILL it after 20 s, and wait until it is gone."""
    for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            _reap(group)
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


def _reap(pid: int) -> None:
    """Collect the broker's exit status when this process is its parent (a run without xdist)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
