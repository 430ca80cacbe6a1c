"""Unit tests of worker/service: config loading, the control and console APIs, the runtime's stop."""
