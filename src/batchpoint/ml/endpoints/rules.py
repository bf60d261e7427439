"""Batch endpoints and batch deployments: their properties, create-only rules and provisioning checks."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from batchpoint.arm.context import BASE_URL
from batchpoint.arm.errors import bad_request, conflict
from batchpoint.arm.identity import resolve_identity
from batchpoint.arm.ids import ArmPath, name_of
from batchpoint.arm.mutability import refuse_change
from batchpoint.arm.operations import Progress
from batchpoint.arm.resources import check_duration
from batchpoint.ml.assets.references import resolve_version, version_id_of
from batchpoint.ml.components.pipelines import load_pipeline
from batchpoint.ml.computes.rules import resolve_compute
from batchpoint.ml.endpoints.environments import DeploymentEnvironments
from batchpoint.ml.endpoints.validation import check_new_name, check_runnable, unacted_settings
from batchpoint.ml.endpoints.wire import BatchDeploymentProperties, BatchRetrySettings, DeploymentResourceConfiguration
from batchpoint.runtime.spec import LoggingLevel, OutputAction
from batchpoint.store import Store
from batchpoint.store.entities import Resource

log = logging.getLogger(__name__)

DEFAULT_RESOURCES = DeploymentResourceConfiguration().model_dump(exclude_none=True)
DEFAULT_RETRY = BatchRetrySettings().model_dump(exclude_none=True)
JOB_SETTINGS = (
    "miniBatchSize",
    "maxConcurrencyPerInstance",
    "errorThreshold",
    "loggingLevel",
    "outputAction",
    "outputFileName",
    "resources",
    "retrySettings",
)
"""The deployment's properties that set how each of its jobs runs."""


@dataclass(frozen=True)
class JobSettings:
    """What a deployment sets for each of its jobs. What it leaves out takes the schema's default (Decision 2),
    which the deployment's wire model holds; a job's own overrides go on top (`jobs/invoke.py`)."""

    mini_batch_size: int
    instance_count: int
    max_concurrency_per_instance: int
    max_retries: int
    timeout: str
    """An ISO-8601 duration."""
    error_threshold: int
    output_action: OutputAction
    output_file_name: str
    logging_level: LoggingLevel

    @classmethod
    def of(cls, deployment: Resource) -> JobSettings:
        properties = deployment.body["properties"]
        wire = BatchDeploymentProperties.model_validate(
            {name: properties[name] for name in JOB_SETTINGS if properties.get(name) is not None}
        )
        resources = wire.resources or DeploymentResourceConfiguration()
        retry = wire.retrySettings or BatchRetrySettings()
        return cls(
            mini_batch_size=wire.miniBatchSize,
            instance_count=resources.instanceCount,
            max_concurrency_per_instance=wire.maxConcurrencyPerInstance,
            max_retries=retry.maxRetries,
            timeout=retry.timeout,
            error_threshold=wire.errorThreshold,
            output_action=wire.outputAction.value,
            output_file_name=wire.outputFileName,
            logging_level=wire.loggingLevel.value,
        )


def scoring_uri(endpoint_id: str) -> str:
    return f"{BASE_URL}/inference{endpoint_id}/jobs"


def swagger_uri(endpoint_id: str) -> str:
    return f"{BASE_URL}/inference{endpoint_id}/swagger.json"


def merge_add_only(before: dict[str, Any] | None, requested: dict[str, Any] | None) -> dict[str, Any]:
    """``properties`` maps: new keys may be added; existing ones are neither removed nor altered."""
    merged = dict(before or {})
    for name, value in (requested or {}).items():
        if name in merged and merged[name] != value:
            raise bad_request(f"Property '{name}' cannot be altered: properties can be added, not changed.")
        merged[name] = value
    return merged


def _before_properties(existing: Resource | None) -> dict[str, Any]:
    return existing.body["properties"] if existing else {}


class BatchEndpointKind:
    def build_properties(
        self, resource_id: str, requested: dict[str, Any], existing: Resource | None
    ) -> dict[str, Any]:
        if existing is None:
            check_new_name("an endpoint", name_of(resource_id))
        before = _before_properties(existing)
        endpoint_id = existing.id if existing else resource_id
        properties: dict[str, Any] = {"authMode": requested["authMode"]}
        if requested.get("description") is not None:
            properties["description"] = requested["description"]
        properties["properties"] = merge_add_only(before.get("properties"), requested.get("properties"))
        properties["scoringUri"] = scoring_uri(endpoint_id)
        properties["swaggerUri"] = swagger_uri(endpoint_id)
        properties["defaults"] = requested.get("defaults") or {"deploymentName": None}
        return properties

    def build_secrets(self, requested: dict[str, Any], existing: Resource | None) -> dict[str, Any]:
        """The keys are create-only and never returned: they are kept here, so they are checked here (a PUT may
        leave them out or repeat them)."""
        keys = requested.get("keys") or {}
        if existing is not None:
            for name, value in keys.items():
                if value is not None:
                    refuse_change(f"properties.keys.{name}", existing.private.get(name), value)
            return existing.private
        return {
            "primaryKey": keys.get("primaryKey") or secrets.token_urlsafe(32),
            "secondaryKey": keys.get("secondaryKey") or secrets.token_urlsafe(32),
        }

    def as_written_now(self, resource_id: str, stored: dict[str, Any]) -> dict[str, Any]:
        """Endpoints are stored as written now."""
        return stored

    def check_parent(self, parent: Resource) -> None:
        """Workspaces have no state that blocks endpoint writes."""

    def provision(self, resource: Resource, progress: Progress) -> None:
        """An endpoint has nothing to check: deployments are validated on their own."""

    def apply_patch(self, body: dict[str, Any], patch: dict[str, Any]) -> None:
        if patch.get("identity") is not None:
            identity = resolve_identity(patch["identity"], body.get("identity"), patch=True)
            if identity:
                body["identity"] = identity


@dataclass
class BatchDeploymentKind:
    store: Store
    environments: DeploymentEnvironments

    def build_properties(
        self, resource_id: str, requested: dict[str, Any], existing: Resource | None
    ) -> dict[str, Any]:
        if existing is None:
            check_new_name("a deployment", name_of(resource_id))
        before = _before_properties(existing)
        properties = {name: value for name, value in requested.items() if value is not None}
        properties["resources"] = {**DEFAULT_RESOURCES, **(requested.get("resources") or {})}
        properties["retrySettings"] = {**DEFAULT_RETRY, **(requested.get("retrySettings") or {})}
        check_duration("retrySettings.timeout", properties["retrySettings"]["timeout"])
        check_runnable(properties)
        properties["properties"] = merge_add_only(before.get("properties"), requested.get("properties"))
        configuration = properties.get("deploymentConfiguration")
        if configuration is not None:
            configuration.setdefault("settings", {})
        properties = self._with_code_id(resource_id, properties)
        workspace_id = ArmPath.parse(resource_id).workspace_id
        compute = resolve_compute(self.store, workspace_id, properties.get("compute"))
        if properties.get("compute"):
            properties["compute"] = compute.id  # one spelling of the reference: 'azureml:x' and names become ids
        return properties

    def as_written_now(self, resource_id: str, stored: dict[str, Any]) -> dict[str, Any]:
        """Servers before codeId was written as an ARM id stored it as sent: 'azureml:name:version' compares as the
        id of that version, 'azureml:name@latest' as the id of the version latest now (what that server's invokes
        ran: they resolved it at each invoke), so a later PUT, with or without codeConfiguration, is not a change of
        it (docs/management-plane.md, Create-only fields)."""
        return self._with_code_id(resource_id, stored)

    def _with_code_id(self, resource_id: str, properties: dict[str, Any]) -> dict[str, Any]:
        """``properties`` with one spelling of codeConfiguration.codeId, the ARM id azure-ai-ml sends for
        'azureml:x:1' (it is create-only); ``properties`` itself is not changed."""
        code = properties.get("codeConfiguration")
        if not (code and code.get("codeId")):
            return properties
        workspace_id = ArmPath.parse(resource_id).workspace_id
        code_id = version_id_of(self.store, workspace_id, "codes", code["codeId"])
        if code_id == code["codeId"]:
            return properties
        return {**properties, "codeConfiguration": {**code, "codeId": code_id}}

    def build_secrets(self, requested: dict[str, Any], existing: Resource | None) -> dict[str, Any]:
        return {}

    def check_parent(self, parent: Resource) -> None:
        if parent.body["properties"].get("provisioningState") == "Deleting":
            raise conflict(f"The batch endpoint '{parent.name}' is being deleted.")

    def provision(self, resource: Resource, progress: Progress) -> None:
        """Every asset the deployment names must exist in its workspace; its environment is built (or found).
        What it sets that batchpoint does not act on is in every step's progress (`warnings`) and in the log."""
        properties = resource.body["properties"]
        workspace_id = ArmPath.parse(resource.id).workspace_id
        model = properties.get("model")
        if model and model.get("referenceType") == "Id":
            resolve_version(self.store, workspace_id, "models", model["assetId"], "model")
        code_id = (properties.get("codeConfiguration") or {}).get("codeId")
        if code_id:
            resolve_version(self.store, workspace_id, "codes", code_id, "code")
        warnings = unacted_settings(self.store, workspace_id, properties)  # it reads the environment's version
        if warnings:
            log.warning("The deployment %s sets what batchpoint does not act on: %s", resource.id, " ".join(warnings))
            progress = _with_warnings(progress, warnings)
            progress({})
        component = (properties.get("deploymentConfiguration") or {}).get("componentId")
        if component:
            self._prepare_pipeline(workspace_id, component["assetId"], progress)
        self.environments.prepare(resource, progress)

    def _prepare_pipeline(self, workspace_id: str, component_id: str, progress: Progress) -> None:
        """The component must be a valid pipeline; every step's environment is built now, as a model's is."""
        pipeline = load_pipeline(self.store, workspace_id, component_id)
        for node in pipeline.nodes.values():
            spec = self.environments.of_reference(workspace_id, node.spec.get("environment"))
            self.environments.build(spec, f"step '{node.name}'", progress)

    def apply_patch(self, body: dict[str, Any], patch: dict[str, Any]) -> None:
        description = (patch.get("properties") or {}).get("description")
        if description is not None:
            body["properties"]["description"] = description


def _with_warnings(progress: Progress, warnings: list[str]) -> Progress:
    """Progress that always carries `warnings`, so the operation's status keeps them to its end."""
    return lambda detail: progress({**detail, "warnings": warnings})
