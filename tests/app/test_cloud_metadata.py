"""``/metadata/endpoints``: the cloud metadata document ``ARM_CLOUD_METADATA_URL`` points azure-ai-ml at."""

from __future__ import annotations

import httpx
import pytest

from tests.server import Server


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
@pytest.mark.parametrize("query", ["?api-version=2019-05-01", "?api-version=2022-09-01", ""])
def test_served_without_a_token_naming_the_server_as_the_url_was_written(
    tls_server: Server, host: str, query: str
) -> None:
    base = f"https://{host}:{tls_server.port}"
    with httpx.Client(verify=str(tls_server.ca_cert)) as client:
        response = client.get(f"{base}/metadata/endpoints{query}")
    assert response.status_code == 200
    [cloud] = response.json()
    assert cloud["name"] == "batchpoint" and cloud["resourceManager"] == base + "/"
    assert cloud["portal"] == "https://portal.azure.com/"  # azure-ai-ml's data-plane audience: https://ml.azure.com
    assert cloud["suffixes"]["storage"] == "core.windows.net" and cloud["authentication"]["loginEndpoint"]
