"""`python -m worker` is `gorgias-worker`."""

from worker.tools.cli import main

main()
