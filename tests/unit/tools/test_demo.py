"""`make demo` never stops a broker it did not start, and prints no colour when piped or with NO_COLOR."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from worker.tools import demo


def stub_script(tmp_path: Path, running: bool) -> tuple[Path, Path]:
    calls = tmp_path / "calls"
    script = tmp_path / "kafka.sh"
    status = 'echo "running: 127.0.0.1:19092"' if running else 'echo "not running"; exit 1'
    script.write_text(f"""#!/bin/sh
echo "$@" >> {calls}
case "$1" in status) {status} ;; esac
""")
    script.chmod(0o755)
    return script, calls


def test_a_broker_already_running_is_used_and_left_running(tmp_path: Path) -> None:
    script, calls = stub_script(tmp_path, running=True)
    with demo.local_broker(script) as (bootstrap, started):
        assert (bootstrap, started) == ("127.0.0.1:19092", False)
    assert calls.read_text().split() == ["status"]


def test_a_broker_the_demo_started_is_stopped(tmp_path: Path) -> None:
    script, calls = stub_script(tmp_path, running=False)
    with pytest.raises(RuntimeError), demo.local_broker(script) as (bootstrap, started):
        assert started and bootstrap.startswith("127.0.0.1:")
        raise RuntimeError("the demo failed half-way")
    lines = calls.read_text().splitlines()
    assert lines[0] == "status" and lines[1].startswith("start --port ") and lines[-1] == "stop"


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert demo.use_colour(Tty()) is True
    assert demo.use_colour(io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert demo.use_colour(Tty()) is False


def test_say_writes_plain_text_when_piped(capsys: pytest.CaptureFixture[str]) -> None:
    demo.say("Publishing")
    assert capsys.readouterr().out == "\n==> Publishing\n"
