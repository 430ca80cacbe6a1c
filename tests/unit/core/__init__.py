"""Unit tests of worker/core: pure, no I/O, clocks passed in."""
