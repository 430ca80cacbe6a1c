"""Processes the tests start die with the test process: a SIGKILLed pytest leaves no sandbox, worker or broker
behind (tests/support/lifetime.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.lifetime import ends_with_this_process

ROOT = Path(__file__).resolve().parents[3]

# Plays a test run: starts a child the way the tests do, says its pid, then waits to be killed.
TEST_RUN = """
import subprocess, sys, time
from tests.support.lifetime import ends_with_this_process
from tests.support.processes import SandboxProcess
if sys.argv[1] == "sandbox":
    child = SandboxProcess().start().proc
else:  # a script that execs its program, as deploy/local/kafka.sh execs java
    child = subprocess.Popen(["sh", "-c", "exec sleep 600"], preexec_fn=ends_with_this_process())
print(child.pid, flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (dead, not yet reaped by init) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def gone_within(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("child", ["exec", "sandbox"])
def test_a_killed_test_run_takes_its_processes_with_it(child: str) -> None:
    run = subprocess.Popen([sys.executable, "-c", TEST_RUN, child], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                           preexec_fn=ends_with_this_process())
    assert run.stdout is not None
    pid = int(run.stdout.readline())
    try:
        assert alive(pid)
        run.send_signal(signal.SIGKILL)  # pytest aborted: no fixture teardown, no atexit
        run.wait(timeout=30)
        assert gone_within(pid, 30), f"process {pid} outlived the test run that started it"
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
        run.stdout.close()


def test_off_the_main_thread_no_signal_is_armed() -> None:
    """The kernel signals a child when the *thread* that started it ends: a child a benchmark starts through
    asyncio.to_thread must not die with that pool thread."""
    found: list[object] = []
    thread = threading.Thread(target=lambda: found.append(ends_with_this_process()))
    thread.start()
    thread.join()
    assert found == [None] and ends_with_this_process() is not None
