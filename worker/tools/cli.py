"""The `gorgias-worker` command line: the app of :mod:`worker.tools.cli_app` with every command registered.

The commands live by what they are about: :mod:`worker.tools.cli_config` (the config),
:mod:`worker.tools.cli_operations` (running and operating the worker on Kafka), :mod:`worker.tools.cli_trying`
(trying a destination before it runs), :mod:`worker.tools.cli_destinations` (the destinations saved at runtime).

A command imports what it uses when it runs (the imports inside the command functions are on purpose):
``run`` alone loads faust, aiokafka and aiohttp (seconds on a small pod), and ``--help``, ``validate``
and the other short commands stay fast.
"""

from __future__ import annotations

from worker.tools import cli_config, cli_destinations, cli_operations, cli_trying
from worker.tools.cli_app import app

__all__ = ["app", "main"]
# imported for their @app.command registrations
COMMAND_MODULES = (cli_config, cli_destinations, cli_operations, cli_trying)


def main() -> None:
    app(prog_name="gorgias-worker")


if __name__ == "__main__":
    main()
