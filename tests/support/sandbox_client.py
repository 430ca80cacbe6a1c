"""Talking to a sandbox started in this process (``gorgias_sandbox.server.start_sandbox``): its API as
account acme's agent, and its admin routes."""

from __future__ import annotations

from typing import Any

from tests.support import http

API_KEY = "sandbox-api-key"


class SandboxClient:
    """The API (``Host: acme.gorgias.com``, Basic auth of ``agent@acme.com``) and ``/__admin`` of a sandbox."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def api(self, method: str, path: str, body: Any = None) -> Any:
        async with http.async_client() as client:
            r = await client.request(method, f"{self.url}{path}", json=body, auth=("agent@acme.com", API_KEY),
                                     headers={"Host": "acme.gorgias.com"})
            r.raise_for_status()
            return r.json() if r.content else None

    async def admin(self, method: str, path: str, body: Any = None) -> Any:
        async with http.async_client() as client:
            r = await client.request(method, f"{self.url}/__admin/{path}", json=body)
            r.raise_for_status()
            return r.json() if r.content else None

    async def faults(self, spec: str) -> None:
        await self.admin("PUT", "faults", {"spec": spec} if spec else {})

    async def state(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.admin("GET", "state")
        return result

    async def requests(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = (await self.admin("GET", "counters"))["requests"]
        return result
