"""This server as an Azure cloud: the name and the address of its cloud metadata document (``/metadata/endpoints``,
served by ``app/cloud_metadata.py``), which ``ARM_CLOUD_METADATA_URL`` points azure-ai-ml and az CLI at."""

from __future__ import annotations

CLOUD_NAME = "batchpoint"
METADATA_PATH = "/metadata/endpoints"
METADATA_API_VERSION = "2019-05-01"


def metadata_url(server_url: str) -> str:
    """``ARM_CLOUD_METADATA_URL`` for a server."""
    return f"{server_url.rstrip('/')}{METADATA_PATH}?api-version={METADATA_API_VERSION}"
