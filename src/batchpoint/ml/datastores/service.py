"""Datastores: where data assets, inputs and outputs live.

Every workspace gets a local storage account (a folder under the data directory, served by the blob API of
this server) holding two containers: ``workspaceblobstore`` (the default) and ``workspaceartifactstore``.
Further datastores can name another container of that account, or a real Azure Storage / Azurite account.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from batchpoint.arm.context import HOST, RequestContext
from batchpoint.arm.errors import bad_request
from batchpoint.arm.ids import ArmPath
from batchpoint.arm.resources import OnResources, Resources, Upserted, check_tags, new_version, save
from batchpoint.ml.datastores.resource_types import DATASTORE_TYPE
from batchpoint.storage.accounts import StorageAccounts, account_id
from batchpoint.storage.auth import sas_for
from batchpoint.storage.blobs import BlobContainer
from batchpoint.store.entities import Resource

DEFAULT_DATASTORE = "workspaceblobstore"
ARTIFACT_DATASTORE = "workspaceartifactstore"
LOCAL_ACCOUNT = re.compile(r"/blob/(?P<account>bp[0-9a-f]{22})(\?|$)")
PENDING_UPLOAD_LIFETIME = timedelta(days=1)
SECRET_FIELDS = {"AccountKey": ("key", "AccountKey"), "Sas": ("sasToken", "Sas")}


def account_name_for(workspace_uuid: str) -> str:
    """A storage-account-like name (3-24 lower-case letters and digits) derived from the workspace id."""
    return "bp" + workspace_uuid.replace("-", "").lower()[:22]


def local_account_field(account: str) -> str:
    """What ``azure-ai-ml`` turns into ``https://{this}.blob.{endpoint}``: a path-style URL of this server."""
    return f"{HOST}/blob/{account}?x="


@dataclass
class Datastores(OnResources):
    resources: Resources
    accounts: StorageAccounts

    def ensure_workspace_storage(self, ctx: RequestContext, workspace: Resource) -> None:
        account = account_name_for(workspace.body["properties"]["workspaceId"])
        self.accounts.ensure(account, workspace.id)
        defaults = {
            DEFAULT_DATASTORE: ("azureml-blobstore-" + workspace.body["properties"]["workspaceId"], True),
            ARTIFACT_DATASTORE: ("azureml", False),
        }
        for name, (container, is_default) in defaults.items():
            datastore_id = f"{workspace.id}/datastores/{name}"
            if self.store.get(datastore_id) is None:
                body = {"properties": _local_properties(account, container, is_default)}
                self.put(ctx, datastore_id, body)

    def put(self, ctx: RequestContext, datastore_id: str, body: dict[str, Any]) -> Upserted:
        workspace_id = ArmPath.parse(datastore_id).workspace_id
        self.resources.require(workspace_id)
        existing = self.store.get(datastore_id)
        properties = dict(body.get("properties") or {})
        if properties.get("datastoreType", "AzureBlob").lower() != "azureblob":
            raise bad_request("Only datastores of type 'AzureBlob' are supported.", "UserError")
        properties["datastoreType"] = "AzureBlob"
        for field in ("accountName", "containerName"):
            if not properties.get(field):
                raise bad_request(f"The datastore property '{field}' is required.", "InvalidRequestContent")
        credentials = dict(properties.get("credentials") or {"credentialsType": "None"})
        stored_secrets = credentials.pop("secrets", None) or (existing.private if existing else {})
        local = LOCAL_ACCOUNT.search(properties["accountName"])
        if local:
            properties["accountName"] = local_account_field(local["account"])
            self.accounts.container(local["account"], properties["containerName"]).create()
            credentials, stored_secrets = {"credentialsType": "AccountKey"}, {}
        properties.update(
            credentials=credentials,
            isDefault=bool(properties.get("isDefault", False)),
            tags=check_tags(properties.get("tags")),
        )
        properties.setdefault("endpoint", "core.windows.net")
        properties.setdefault("protocol", "https")
        properties.setdefault("serviceDataAccessAuthIdentity", "None")
        resource = new_version(
            ctx, existing.id if existing else datastore_id, DATASTORE_TYPE, {"properties": properties}, existing
        )
        resource.private = stored_secrets
        save(self.store, resource, existing)
        return Upserted(resource, created=existing is None)

    def start_pending_upload(self, base_url: str, workspace_id: str) -> dict[str, Any]:
        """A fresh container of the workspace's local account and a SAS to upload into it (code snapshots)."""
        workspace = self.resources.get(workspace_id)
        account = self.accounts.account(account_name_for(workspace.body["properties"]["workspaceId"]))
        container = f"code-{uuid.uuid4().hex}"
        self.accounts.container(account.name, container).create()
        sas = sas_for(account.name, account.key, container, "", "racwdl", PENDING_UPLOAD_LIFETIME)
        blob_uri = f"{base_url}/blob/{account.name}/{container}"
        return {
            "blobReferenceForConsumption": {
                "blobUri": blob_uri,
                "storageAccountArmId": account_id(account.name),
                "credential": {"credentialType": "SAS", "sasUri": f"{blob_uri}?{sas}"},
            },
            "pendingUploadId": container,
            "pendingUploadType": "TemporaryBlobReference",
        }

    def default_of(self, workspace_id: str) -> Resource:
        return self.resources.get(f"{workspace_id}/datastores/{DEFAULT_DATASTORE}")

    def select(self, parent_id: str, is_default: bool | None = None) -> list[Resource] | None:
        """``isDefault=true`` lists the workspace's default datastore alone."""
        return [self.default_of(parent_id)] if is_default else None

    def delete(self, ctx: RequestContext, datastore_id: str) -> None:
        """Forget a datastore; its files stay where they are."""
        datastore = self.resources.get(datastore_id)
        if datastore.name.lower() in (DEFAULT_DATASTORE, ARTIFACT_DATASTORE):
            raise bad_request(f"The built-in datastore '{datastore.name}' cannot be deleted.", "UserError")
        self.store.delete_tree(datastore.id)

    def list_secrets(self, datastore_id: str) -> dict[str, Any]:
        datastore = self.resources.get(datastore_id)
        properties = datastore.body["properties"]
        local = LOCAL_ACCOUNT.search(properties["accountName"])
        if local:
            return {"secretsType": "AccountKey", "key": self.accounts.account(local["account"]).key}
        kind = properties["credentials"].get("credentialsType")
        if kind not in SECRET_FIELDS:
            raise bad_request(f"The datastore '{datastore.name}' uses '{kind}' credentials and has no secrets.")
        field, secrets_type = SECRET_FIELDS[kind]
        return {"secretsType": secrets_type, field: datastore.private.get(field)}

    def local_folder(self, datastore: Resource) -> BlobContainer | None:
        """The container folder of a local datastore; None for a datastore on remote storage."""
        properties = datastore.body["properties"]
        local = LOCAL_ACCOUNT.search(properties["accountName"])
        return self.accounts.container(local["account"], properties["containerName"]) if local else None


def _local_properties(account: str, container: str, is_default: bool) -> dict[str, Any]:
    return {
        "datastoreType": "AzureBlob",
        "accountName": local_account_field(account),
        "containerName": container,
        "isDefault": is_default,
        "description": "Local storage of this batchpoint server",
    }
