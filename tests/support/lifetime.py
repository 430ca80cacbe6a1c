"""Processes a test starts (workers, sandboxes, brokers of its own) end with the test process, however it ends:
an aborted or SIGKILLed pytest leaves no orphan holding ports, CPU or a broker's data.

Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG)``), set in the child between fork and exec, is kept
across the exec (``kafka.sh`` execs java: the broker itself gets it). The kernel sends it when the *thread*
that forked the child ends, so it is armed for children started from the main thread only (pytest's, which
also runs the tests' event loops); one started from another thread (a benchmark's ``asyncio.to_thread``)
lives as before, stopped by whoever started it. The run's shared broker must outlive the test process that
started it: it has a guard of its own (tests/support/shared_broker.py) and does not use this.
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
from collections.abc import Callable

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def ends_with_this_process(sig: signal.Signals = signal.SIGKILL) -> Callable[[], None] | None:
    """A ``preexec_fn`` for :class:`subprocess.Popen`: the child gets ``sig`` when this process ends. None off
    the main thread (the kernel would signal the child as soon as that thread ends)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    parent = os.getpid()

    def set_parent_death_signal() -> None:  # in the child, before exec
        if _libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent ended before the signal was armed
            os.kill(os.getpid(), sig)

    return set_parent_death_signal
