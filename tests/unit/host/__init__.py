"""Unit tests of worker/host: environment and secret files, logs, the secret box."""
