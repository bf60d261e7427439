"""One resolver for every place users point at data: datastore URIs, data assets, URLs and local paths.

Assets (model, code and data URIs) and jobs (inputs and outputs) all go through ``UriResolver.resolve``, so a
URI means the same thing everywhere, and a path can never escape the datastore or folder it names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from batchpoint.arm.errors import ArmError
from batchpoint.arm.ids import WORKSPACE_TYPE
from batchpoint.ml.assets.references import load_version
from batchpoint.ml.datastores.service import Datastores
from batchpoint.runtime.spec import RemoteFolder
from batchpoint.storage.blobs import safe_relative
from batchpoint.store.base import Store
from batchpoint.store.entities import Resource

SHORT_DATASTORE = re.compile(r"^azureml://datastores/(?P<datastore>[^/]+)/paths/(?P<path>.*)$", re.IGNORECASE)
LONG_DATASTORE = re.compile(
    r"^azureml://subscriptions/(?P<subscription>[^/]+)/resourcegroups/(?P<group>[^/]+)/workspaces/(?P<workspace>[^/]+)"
    r"/datastores/(?P<datastore>[^/]+)/paths/(?P<path>.*)$",
    re.IGNORECASE,
)
ARM_DATASTORE = re.compile(
    r"^(?:azureml:)?/subscriptions/(?P<subscription>[^/]+)/resourcegroups/(?P<group>[^/]+)"
    r"/providers/Microsoft\.MachineLearningServices/workspaces/(?P<workspace>[^/]+)"
    r"/datastores/(?P<datastore>[^/]+)/paths/(?P<path>.*)$",
    re.IGNORECASE,
)
"""A datastore's ARM id followed by ``/paths/...``, bare or after ``azureml:``: how Azure's REST and SDK docs write
job inputs and outputs (``Output(path=f"{datastore.id}/paths/...")``)."""
DATA_ASSET = re.compile(r"^(azureml:[^/]|(azureml:)?/subscriptions/.+/data/[^/]+/versions/[^/]+$)", re.IGNORECASE)
OWN_BLOB_PATH = re.compile(r"^/blob/(?P<account>bp[0-9a-f]{22})/(?P<container>[^/]+)(?:/(?P<path>.*))?$")


def unresolvable(uri: str, why: str) -> ArmError:
    return ArmError(400, "UserError", f"The location '{uri}' cannot be used: {why}.")


@dataclass(frozen=True)
class Location:
    """Where a URI's bytes are. ``local_path`` is set for data on this machine; remote data is reached through
    fsspec with ``protocol`` and ``storage_options``."""

    uri: str
    protocol: str
    path: str
    writable: bool
    storage_options: dict[str, Any] = field(default_factory=dict)

    @property
    def local_path(self) -> Path | None:
        return Path(self.path) if self.protocol == "file" else None

    def remote(self, path: str | None = None) -> RemoteFolder:
        """The location as the runtime reaches it through fsspec; `path`: a folder of it instead."""
        return RemoteFolder(self.uri, self.protocol, self.path if path is None else path, self.storage_options)

    def filesystem(self) -> Any:
        return self.remote().filesystem()


@dataclass
class UriResolver:
    datastores: Datastores
    allowed_local_paths: list[Path] = field(default_factory=list)

    @property
    def store(self) -> Store:
        return self.datastores.store

    def resolve(self, workspace_id: str, uri: str) -> Location:
        uri = uri.strip()
        short, long = SHORT_DATASTORE.match(uri), LONG_DATASTORE.match(uri) or ARM_DATASTORE.match(uri)
        if long:
            named = f"/subscriptions/{long['subscription']}/resourceGroups/{long['group']}"
            named += f"/providers/{WORKSPACE_TYPE}/{long['workspace']}"
            if named.lower() != workspace_id.lower():
                raise unresolvable(uri, "it names a datastore of another workspace")
        match = short or long
        if match:
            return self._in_datastore(workspace_id, match["datastore"], match["path"], uri)
        if DATA_ASSET.match(uri):
            return self._data_asset(workspace_id, uri)
        scheme = urlsplit(uri).scheme.lower()
        if scheme in ("http", "https"):
            return self._url(uri)
        if scheme in ("", "file"):
            return self._local(uri)
        raise unresolvable(uri, f"the scheme '{scheme}' is not supported (use azureml://, https:// or a data asset)")

    def _in_datastore(self, workspace_id: str, name: str, path: str, uri: str) -> Location:
        datastore = self.store.get(f"{workspace_id}/datastores/{name}")
        if datastore is None:
            raise ArmError(404, "ResourceNotFound", f"The datastore '{name}' does not exist in this workspace.")
        relative = safe_relative(unquote(path).strip("/")) if path.strip("/") else Path()
        container = self.datastores.local_folder(datastore)
        if container is not None:
            target = container.root / relative
            return Location(uri=uri, protocol="file", path=str(target), writable=True)
        return self._remote_blob(datastore, relative, uri)

    def _remote_blob(self, datastore: Resource, relative: Path, uri: str) -> Location:
        properties = datastore.body["properties"]
        account, container = properties["accountName"], properties["containerName"]
        endpoint, protocol = properties.get("endpoint", "core.windows.net"), properties.get("protocol", "https")
        blob_endpoint = _blob_endpoint(account, endpoint, protocol)
        options: dict[str, Any] = {"account_name": account}
        secrets = datastore.private
        if secrets.get("key"):
            options["connection_string"] = (
                f"DefaultEndpointsProtocol={protocol};AccountName={account};AccountKey={secrets['key']};"
                f"BlobEndpoint={blob_endpoint};"
            )
        elif secrets.get("sasToken"):
            options["connection_string"] = (
                f"BlobEndpoint={blob_endpoint};SharedAccessSignature={secrets['sasToken'].lstrip('?')};"
            )
        else:
            options["anon"] = True
        path = f"{container}/{relative.as_posix()}".rstrip("/.")
        return Location(uri=uri, protocol="abfs", path=path, writable=True, storage_options=options)

    def _data_asset(self, workspace_id: str, uri: str) -> Location:
        data_uri = load_version(self.store, workspace_id, "data", uri, "data asset").body["properties"].get("dataUri")
        if not data_uri or DATA_ASSET.match(data_uri):
            raise unresolvable(uri, "the data asset has no usable dataUri")
        return self.resolve(workspace_id, data_uri)

    def _url(self, uri: str) -> Location:
        parts = urlsplit(uri)
        own = OWN_BLOB_PATH.match(unquote(parts.path))
        if own:
            container = self.datastores.accounts.container(own["account"], own["container"])
            self.datastores.accounts.account(own["account"])
            relative = safe_relative(own["path"]) if own["path"] else Path()
            return Location(uri=uri, protocol="file", path=str(container.root / relative), writable=True)
        return Location(uri=uri, protocol=parts.scheme.lower(), path=uri, writable=False)

    def _local(self, uri: str) -> Location:
        raw = urlsplit(uri).path if uri.lower().startswith("file:") else uri
        path = Path(unquote(raw)).expanduser()
        if not path.is_absolute():
            raise unresolvable(uri, "a local path must be absolute")
        resolved = path.resolve()
        for allowed in self.allowed_local_paths:
            root = allowed.resolve()
            if resolved == root or root in resolved.parents:
                return Location(uri=uri, protocol="file", path=str(resolved), writable=True)
        raise unresolvable(
            uri, "local paths must be under a folder the operator allowed with 'batchpoint serve --allow-local-path'"
        )


def normalized(uri: str) -> str:
    """A datastore location in the short form ``azureml://datastores/{d}/paths/{p}``, which every client parses
    (azure-ai-ml's ``jobs.download`` refuses the ARM-id form); any other URI as it is. For locations a job stores
    and hands back (its outputs); the workspace check is ``resolve``'s."""
    match = LONG_DATASTORE.match(uri.strip()) or ARM_DATASTORE.match(uri.strip())
    return f"azureml://datastores/{match['datastore']}/paths/{match['path']}" if match else uri


def _blob_endpoint(account: str, endpoint: str, protocol: str) -> str:
    """Azurite and other emulators are path-style (``http://host:port/account``); Azure is host-style."""
    host = endpoint.split("://", 1)[-1].rstrip("/")
    if re.match(r"^(localhost|\d+\.\d+\.\d+\.\d+)(:\d+)?$", host):
        return f"{protocol}://{host}/{account}"
    return f"{protocol}://{account}.blob.{host}"
