"""Who is calling and where the server is reachable: what the services need from a request."""

from __future__ import annotations

from dataclasses import dataclass

BASE_URL = "https://batchpoint.base.invalid"
"""Stands for this server's own base URL inside stored bodies; the API swaps in the URL the client used,
so stored links stay right when the server moves to another host or port."""
HOST = "batchpoint.host.invalid"
"""Stands for this server's ``host:port`` inside stored bodies (datastore account names), likewise."""


@dataclass(frozen=True)
class Caller:
    name: str
    type: str = "User"
    object_id: str | None = None
    groups: tuple[str, ...] = ()
    """The object ids of the caller's groups (the token's ``groups`` claim): role assignments to them count."""

    @property
    def principals(self) -> tuple[str, ...]:
        return (self.object_id, *self.groups) if self.object_id else self.groups


@dataclass(frozen=True)
class RequestContext:
    base_url: str
    caller: Caller
    api_version: str
