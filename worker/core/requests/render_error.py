"""Why a record or a batch cannot make a request: the error rendering raises, and the dead letter's reason."""

from __future__ import annotations


class RenderError(Exception):
    """A record or batch that cannot make a request; ``reason`` says why, naming the attribute."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
