"""Unit tests of worker/gorgias: HTTP client, retries, rate limit and shares, delivery, duplicate checks, dispatch."""
