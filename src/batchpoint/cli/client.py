"""A small client of a batchpoint server, for the CLI: the same HTTP API the Azure SDKs use."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from batchpoint.access.issuer import IssuerCredential, ensure_issuer
from batchpoint.arm.ids import workspace_id
from batchpoint.config import DEFAULT_RESOURCE_GROUP, DEFAULT_SUBSCRIPTION, DEFAULT_URL, DEFAULT_WORKSPACE, default_home
from batchpoint.jobs.logs import streamed_log
from batchpoint.runtime.status import TERMINAL

API_VERSION = "2025-12-01"
AUTHORIZATION_API_VERSION = "2022-04-01"
ASSIGNMENTS = "/providers/Microsoft.Authorization/roleAssignments"
FOLLOW_SECONDS = 1.0


class ServerError(Exception):
    """The server refused a request; the message is its ARM error."""


@dataclass
class Target:
    url: str = field(default_factory=lambda: os.environ.get("BATCHPOINT_URL", DEFAULT_URL))
    token: str = field(default_factory=lambda: os.environ.get("BATCHPOINT_TOKEN", ""))
    home: Path | None = None
    subscription: str = DEFAULT_SUBSCRIPTION
    resource_group: str = DEFAULT_RESOURCE_GROUP
    workspace: str = DEFAULT_WORKSPACE
    token_given: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        """Without ``$BATCHPOINT_TOKEN``, a token of the embedded issuer of the server's data directory."""
        self.token_given = bool(self.token)
        if not self.token:
            self.token = ensure_issuer(self.home or default_home()).mint()

    def credential(self, static: Callable[[str], Any]) -> Any:
        """The credential the SDKs get: ``static(token)`` for a token that was given; otherwise the embedded
        issuer's, minted for the audience each SDK call asks for (docs/security.md)."""
        return static(self.token) if self.token_given else IssuerCredential(ensure_issuer(self.home or default_home()))

    @property
    def workspace_id(self) -> str:
        return workspace_id(self.subscription, self.resource_group, self.workspace)

    def verify(self) -> str | bool:
        """Trust the server's own certificate authority, as created in its data directory."""
        if not self.url.startswith("https"):
            return False
        ca = (self.home or default_home()) / "tls" / "ca.pem"
        return str(ca) if ca.exists() else True


class BatchpointClient:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.http = httpx.Client(
            base_url=target.url, headers={"Authorization": f"Bearer {target.token}"}, verify=target.verify(), timeout=60
        )

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, url: str, **kwargs: Any) -> Any:
        response = self.http.request(method, url, **kwargs)
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                raise ServerError(f"{error['code']}: {error['message']}")
            except (ValueError, KeyError):
                raise ServerError(f"HTTP {response.status_code}: {response.text[:500]}") from None
        return response.json() if response.content else None

    def _arm(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._call(method, self.target.workspace_id + path, params={"api-version": API_VERSION}, **kwargs)

    def invoke(
        self, endpoint: str, input_uri: str, input_type: str, deployment: str | None, overrides: dict[str, Any]
    ) -> dict[str, Any]:
        scoring_uri = self._arm("GET", f"/batchEndpoints/{endpoint}")["properties"]["scoringUri"]
        body = {"properties": {"inputData": {input_type: {"jobInputType": input_type, "uri": input_uri}}, **overrides}}
        headers = {"azureml-model-deployment": deployment} if deployment else {}
        return self._call("POST", scoring_uri, json=body, headers=headers)

    def job(self, name: str) -> dict[str, Any]:
        return self._arm("GET", f"/jobs/{name}")

    def jobs(self) -> list[dict[str, Any]]:
        found, page = [], self._arm("GET", "/jobs")
        while True:
            found += page["value"]
            if not page.get("nextLink"):
                return found
            page = self._call("GET", page["nextLink"])

    def cancel(self, name: str) -> None:
        self._arm("POST", f"/jobs/{name}/cancel")

    def rerun_failed(self, name: str) -> dict[str, Any]:
        """Start a job over the items that failed or never ran in the ended job `name`; returns the new job."""
        return self._arm("POST", f"/jobs/{name}/rerunFailed")

    def logs(self, name: str) -> dict[str, str]:
        """Each log file of the job (name -> text), job_result.txt first."""
        details = self._call("GET", f"/history/v1.0{self.target.workspace_id}/runs/{name}/details")
        links = details["logFiles"]
        order = sorted(links, key=lambda log: (log != "job_result.txt", log))
        return {log: self.http.get(links[log]).text for log in order}

    def follow_log(self, name: str, write: Callable[[str], None]) -> str:
        """Write the job's streamed log as it grows, whole lines only, until the job ends; return its status."""
        printed = 0
        while True:
            details = self._call("GET", f"/history/v1.0{self.target.workspace_id}/runs/{name}/details")
            log = streamed_log(list(details["logFiles"]))
            if log is not None:
                text = self.http.get(details["logFiles"][log]).text
                whole = text[: text.rfind("\n") + 1]
                write(whole[printed:])
                printed = len(whole)
            if details["status"] in TERMINAL:
                return details["status"]
            time.sleep(FOLLOW_SECONDS)

    def _authorization(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._call(method, path, params={"api-version": AUTHORIZATION_API_VERSION}, **kwargs)

    def role_assignments(self, scope: str) -> list[dict[str, Any]]:
        """The assignments that hold at ``scope`` and those below it."""
        return self._authorization("GET", scope.rstrip("/") + ASSIGNMENTS)["value"]

    def assign_role(self, scope: str, principal_id: str, role: str) -> dict[str, Any]:
        name = uuid.uuid4()
        body = {"properties": {"roleDefinitionId": role, "principalId": principal_id}}
        return self._authorization("PUT", f"{scope.rstrip('/')}{ASSIGNMENTS}/{name}", json=body)

    def remove_role_assignment(self, assignment_id: str) -> None:
        self._authorization("DELETE", assignment_id)
