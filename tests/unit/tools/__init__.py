"""Unit tests of worker/tools: the CLI, the demo, preview and endpoint tests, generated schemas."""
