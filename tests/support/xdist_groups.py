"""`--dist loadgroup` for pytest 9.2: a test's `xdist_group` reaches pytest-xdist's scheduler again.

pytest-xdist 3.8 tells its scheduler a test's group by appending ``@group`` to the test's node id, and
pytest 9.2 no longer lets it change node ids (pytest-xdist issue 1386): grouped tests were handed out
one by one, and every process set up the module fixtures of a grouped module (a browser and a worker
each). Here each test process writes the groups it collected into the run folder, and the scheduler
reads them from there. Remove once pytest-xdist's own `loadgroup` groups again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadScopeScheduling

from tests.support.shared_broker import RUN_DIR


def record_groups(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In a test process: write ``{node id: group}`` for the collected tests that have an `xdist_group`."""
    worker = getattr(config, "workerinput", {}).get("workerid")
    if worker is None or RUN_DIR not in os.environ:
        return
    groups = {}
    for item in items:
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                        for m in item.iter_markers("xdist_group")})
        if names:
            groups[item.nodeid.split("@")[0]] = "_".join(names)
    (Path(os.environ[RUN_DIR]) / f"groups-{worker}.json").write_text(json.dumps(groups))


class GroupScheduling(LoadScopeScheduling):
    """Hands tests out one at a time, except that the tests of one `xdist_group` go to one process together."""

    def __init__(self, config: pytest.Config, log: Producer | None = None) -> None:
        super().__init__(config, log)
        self._groups: dict[str, str] | None = None

    def _split_scope(self, nodeid: str) -> str:
        if self._groups is None:  # first called once every process finished collecting
            self._groups = {}
            for path in Path(os.environ[RUN_DIR]).glob("groups-*.json"):
                self._groups.update(json.loads(path.read_text()))
        plain = nodeid.split("@")[0] if nodeid.rfind("@") > nodeid.rfind("]") else nodeid
        group = self._groups.get(plain)
        return f"group:{group}" if group else nodeid
