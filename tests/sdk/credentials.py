"""A credential that hands out a fixed token: Entra ID itself is the one thing faked offline.

The token is a real one, printed by ``batchpoint token`` for the test server (``Server.cli_token()``)."""

from __future__ import annotations

from typing import Any

from azure.core.credentials import AccessToken

FAR_FUTURE = 4102444800


class StaticTokenCredential:
    def __init__(self, token: str) -> None:
        self.token = token
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **_kwargs: Any) -> AccessToken:
        self.scopes.extend(scopes)
        return AccessToken(self.token, FAR_FUTURE)
