"""Outcome documents: response events, dead letters, fitting them to their topic."""
