"""The running worker: composition root, faust host, runtime, control HTTP API and config loading."""
