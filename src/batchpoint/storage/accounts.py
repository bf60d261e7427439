"""The storage accounts this server emulates: one per workspace, a folder of containers under the storage root,
with a key that signs Shared Key requests and SAS tokens (``auth.py``)."""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from batchpoint.arm.errors import ArmError
from batchpoint.storage.blobs import BlobContainer
from batchpoint.store import Store
from batchpoint.store.entities import Resource

ACCOUNT_TYPE = "batchpoint/storageAccounts"
CONTAINER_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])?")


def account_id(account: str) -> str:
    return f"/providers/{ACCOUNT_TYPE}/{account}"


@dataclass(frozen=True)
class Account:
    name: str
    workspace_id: str
    key: str


@dataclass
class StorageAccounts:
    store: Store
    root: Path

    def ensure(self, name: str, workspace_id: str) -> None:
        """The account of a workspace, with a new random key, unless it exists."""
        if self.store.get(account_id(name)) is None:
            record = Resource(id=account_id(name), type=ACCOUNT_TYPE, body={"workspace": workspace_id})
            record.private = {"key": base64.b64encode(secrets.token_bytes(32)).decode()}
            self.store.insert(record)

    def account(self, name: str) -> Account:
        record = self.store.get(account_id(name))
        if record is None:
            raise ArmError(404, "AccountNotFound", f"The storage account '{name}' does not exist on this server.")
        return Account(name=name, workspace_id=record.body["workspace"], key=record.private["key"])

    def container(self, account: str, container: str) -> BlobContainer:
        if not CONTAINER_NAME.fullmatch(container):
            raise ArmError(400, "InvalidResourceName", f"'{container}' is not a valid container name.")
        return BlobContainer(root=self.root / account / container, state=self.root / ".state" / account / container)
