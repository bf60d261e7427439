"""``GET /metadata/endpoints``: ARM's cloud metadata document, naming this server as the cloud ``batchpoint``.

``ARM_CLOUD_METADATA_URL`` points azure-ai-ml (and az CLI) at it. azure-ai-ml picks the cloud whose
``resourceManager`` is part of that URL, so ``resourceManager`` is the URL the request came to; it fetches the
document several times per client and at import, without a token, so the answer is a prepared text with no
authentication, database or api-version check. ``portal`` is Azure's own: azure-ai-ml derives the data-plane audience
from it (``https://ml.azure.com``, which the data-plane routes accept), and the storage suffix stays Azure's because
workspace datastores name their account as ``accountName.blob.core.windows.net`` (docs/storage.md).
"""

from __future__ import annotations

import json

from fastapi import Request, Response

from batchpoint.api.deps import base_url
from batchpoint.api.routing import routes
from batchpoint.arm.cloud import CLOUD_NAME, METADATA_PATH

router = routes(tags=["Identity"])

SERVER = "https://batchpoint.server.invalid/"
"""Stands for the server's own URL in the prepared document."""
DOCUMENT = json.dumps(
    [
        {
            "name": CLOUD_NAME,
            "portal": "https://portal.azure.com/",
            "resourceManager": SERVER,
            "authentication": {
                "loginEndpoint": "https://login.microsoftonline.com/",
                "tenant": "common",
                "audiences": [SERVER, "https://management.azure.com/"],
                "identityProvider": "AAD",
            },
            "suffixes": {
                "storage": "core.windows.net",
                "keyVaultDns": "vault.azure.net",
                "acrLoginServer": "azurecr.io",
                "sqlServerHostname": "database.windows.net",
            },
            "graph": "https://graph.windows.net/",
            "graphAudience": "https://graph.windows.net/",
            "microsoftGraphResourceId": "https://graph.microsoft.com/",
            "gallery": "https://gallery.azure.com/",
            "batch": "https://batch.core.windows.net/",
            "media": "https://rest.media.azure.net",
            "sqlManagement": "https://management.core.windows.net:8443/",
            "activeDirectoryDataLake": "https://datalake.azure.net/",
            "vmImageAliasDoc": "",
        }
    ]
)


@router.get(METADATA_PATH, operation_id="Metadata_Endpoints")
async def endpoints(request: Request) -> Response:
    """The cloud metadata document (any api-version, no token)."""
    return Response(DOCUMENT.replace(SERVER, base_url(request) + "/"), media_type="application/json")
