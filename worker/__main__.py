"""`python -m worker` is `gorgias-worker`."""

from worker.cli import main

main()
