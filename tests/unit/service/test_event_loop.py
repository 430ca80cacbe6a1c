"""The worker's own event loop is the configured one; the loops faust makes for its helper threads stay the
standard library's (a uvloop loop there crashed the worker at SIGTERM)."""

from __future__ import annotations

import asyncio

import uvloop

from worker.service.app import install_event_loop


def test_only_the_workers_own_loop_is_uvloop() -> None:
    loop = install_event_loop("uvloop")
    helper = asyncio.new_event_loop()  # what faust makes for its consumer thread
    try:
        assert isinstance(loop, uvloop.Loop) and asyncio.get_event_loop() is loop
        assert not isinstance(helper, uvloop.Loop)
    finally:
        helper.close()
        loop.close()
        asyncio.set_event_loop(None)
    loop = install_event_loop("asyncio")
    try:
        assert not isinstance(loop, uvloop.Loop) and asyncio.get_event_loop() is loop
    finally:
        loop.close()
        asyncio.set_event_loop(None)
