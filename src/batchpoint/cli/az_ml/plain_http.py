"""azure-ai-ml against a server started with ``--http``.

Two things stand in the way, and each has its own way around:

- azure-core's bearer-token policy refuses plain-HTTP URLs ("Bearer token authentication is not permitted for
  non-TLS protected (non-https) URLs") unless the request carries azure-core's documented ``enforce_https=False``
  option. azure-ai-ml passes it on some calls only, so a per-call policy (azure-core's ``per_call_policies``
  client option, which MLClient hands to every client it builds) sets it on every request.
- azure-ai-ml builds a datastore's URL from a fixed ``https://{account}.blob.{endpoint}`` template
  (``STORAGE_ACCOUNT_URLS``), with no option to change it; the template is pointed at ``http://`` for this process.
"""

from __future__ import annotations

from typing import Any

from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy


class PlainHttpAllowed(SansIOHTTPPolicy):
    """Marks each request ``enforce_https=False``, as a caller may per request."""

    def on_request(self, request: PipelineRequest) -> None:
        request.context.options["enforce_https"] = False


def plain_http_options(base_url: str) -> dict[str, Any]:
    """MLClient's extra keyword arguments for a server at ``base_url`` (none for HTTPS)."""
    if base_url.lower().startswith("https://"):
        return {}
    from azure.ai.ml.constants._common import STORAGE_ACCOUNT_URLS

    for kind, template in STORAGE_ACCOUNT_URLS.items():
        STORAGE_ACCOUNT_URLS[kind] = template.replace("https://", "http://", 1)
    return {"per_call_policies": [PlainHttpAllowed()]}
