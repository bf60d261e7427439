"""One-time sign-in codes for the web page: a code stands for an access token until it is used once or expires.

``batchpoint serve`` prints a link with a code for the local user (as Jupyter does); ``POST /signin/links``
makes one for any caller with a token. The code's hash is the key of a row in the database (so any replica
redeems it, and a leaked database holds no usable code); redeeming deletes the row, so a code works once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from batchpoint.arm.operations import iso
from batchpoint.store import Store
from batchpoint.store.entities import Resource, utcnow

SIGNIN_TYPE = "batchpoint/signInCodes"
CODE_LIFETIME = timedelta(hours=12)


def _code_id(code: str) -> str:
    return f"/providers/{SIGNIN_TYPE}/{hashlib.sha256(code.encode()).hexdigest()}"


@dataclass
class SignIns:
    store: Store

    def create(self, token: str, lifetime: timedelta = CODE_LIFETIME) -> str:
        """A new code that signs in with ``token``."""
        code = secrets.token_urlsafe(32)
        row = Resource(id=_code_id(code), type=SIGNIN_TYPE, body={"expires": iso(utcnow() + lifetime)})
        row.private = {"token": token}
        self.store.insert(row)
        return code

    def redeem(self, code: str) -> str | None:
        """The token of a code not used before and not expired; the code is used up either way."""
        row = self.store.get(_code_id(code)) if code else None
        if row is None or self.store.delete_tree(row.id) != 1:
            return None  # unknown, or another request redeemed it first
        if datetime.fromisoformat(row.body["expires"]) <= utcnow():
            return None
        return str(row.private["token"])
