"""Azure's rules for what a new batch endpoint or deployment may be named and set, with Azure's messages, and the
settings of a deployment that batchpoint records but does not act on (docs/management-plane.md, "Azure's
validations"; Decision 21).

The rules are checked when a resource is created only: an endpoint or deployment created before a rule existed
keeps working, and a PUT that changes it is not refused for its name. Settings no job could run with
(`check_runnable`) are refused on every PUT: a deployment that has them never worked.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from batchpoint.arm.errors import ArmError, bad_request
from batchpoint.arm.mutability import value_at
from batchpoint.ml.assets.references import is_registry_reference, load_version
from batchpoint.runtime.spec import check_deployment_settings
from batchpoint.store import Store

NAME_LENGTH = (3, 32)
NAME_PATTERN = re.compile(r"[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?")
"""Endpoint and deployment names: azure-ai-ml's `EndpointConfigurations` (the service's own rule)."""
INVALID = "UserError"
"""The code Azure ML's front end gives a request it refuses for what it asks (docs/management-plane.md)."""

Named = Literal["an endpoint", "a deployment"]


def check_new_name(what: Named, name: str) -> None:
    """A new endpoint's or deployment's name, checked as Azure checks it, with its message."""
    shortest, longest = NAME_LENGTH
    if not shortest <= len(name) <= longest:
        raise _invalid(
            f"The name for {what} must be at least {shortest} and at most {longest} characters long (inclusive of "
            "both limits)."
        )
    if not NAME_PATTERN.fullmatch(name):
        raise _invalid(
            f"The name for {what} must start with an upper- or lowercase letter and only consist of '-'s and "
            "alphanumeric characters."
        )


RUNTIME_NAMES = {
    "outputFileName": "output_file_name",
    "miniBatchSize": "mini_batch_size",
    "resources.instanceCount": "instance_count",
    "maxConcurrencyPerInstance": "max_concurrency_per_instance",
    "environmentVariables": "environment_variables",
    "retrySettings.maxRetries": "max_retries",
}
"""Each deployment property a job's settings take (its path under ``properties``), by its name in the runtime's
`check_deployment_settings` (azure-ai-ml's)."""


def check_runnable(properties: dict[str, Any]) -> None:
    """A deployment's settings must be ones a job can run with (`miniBatchSize` 0, an `outputFileName` with a `/`,
    an environment variable named `A=B`, `retrySettings.maxRetries` -1, ...): refused on every PUT, with the
    runtime's own message and the property's path, rather than stored as `Succeeded` and refused at each invoke
    (Decision 21)."""
    for path, name in RUNTIME_NAMES.items():
        value = value_at(properties, tuple(path.split(".")))
        if value is None:
            continue
        try:
            check_deployment_settings(**{name: value})
        except ValueError as error:
            raise _invalid(f"No job can run with this deployment's settings: {error} (properties.{path}).") from None


def unacted_settings(store: Store, workspace_id: str, properties: dict[str, Any]) -> list[str]:
    """What a deployment of the workspace (its `properties`) and the environment version it names set that
    batchpoint records but does not act on, one sentence each: its provisioning and each of its jobs say so. An
    environment version that does not exist is an error (`UserError`)."""
    environment_id = properties.get("environmentId")
    environment = {}
    if environment_id and not is_registry_reference(environment_id):
        version = load_version(store, workspace_id, "environments", environment_id, "environment")
        environment = version.body["properties"]
    return _deployment_notes(properties) + _environment_notes(environment)


def _deployment_notes(properties: dict[str, Any]) -> list[str]:
    resources = properties.get("resources") or {}
    notes = []
    if resources.get("instanceType"):
        notes.append(
            f"resources.instanceType '{resources['instanceType']}' is recorded, not acted on: the jobs run on the "
            "compute's workers (this server's processes or its Ray cluster's nodes), whatever the instance type."
        )
    if resources.get("properties"):
        notes.append("resources.properties is recorded, not acted on.")
    return notes


def _environment_notes(environment: dict[str, Any]) -> list[str]:
    notes = []
    if environment.get("image"):
        notes.append(
            f"The environment's image '{environment['image']}' is recorded, not pulled: the workers run in "
            + (
                "a virtual environment built from its conda file."
                if environment.get("condaFile")
                else "the server's own Python (the environment has no conda file)."
            )  # fmt: skip
        )
    if environment.get("build"):
        notes.append("The environment's build context is recorded, not built: batchpoint builds no images.")
    return notes


def _invalid(message: str) -> ArmError:
    return bad_request(message, INVALID)
