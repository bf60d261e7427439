"""The Create job form of an endpoint's page: a deployment, one input (a registered data asset, or a datastore path
or a local path the server allows) and optional overrides, submitted as the invoke azure-ai-ml sends
(``batch_endpoints.invoke``): the same request model, the same ``Jobs.invoke`` and its errors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from pydantic import ValidationError

from batchpoint.access.permissions import INVOKE_PREFIX
from batchpoint.arm.context import RequestContext
from batchpoint.arm.errors import ArmError, bad_request
from batchpoint.jobs.invoke import Jobs
from batchpoint.jobs.wire import InvokeProperties, InvokeRequest
from batchpoint.ml.assets.resource_types import DATA_VERSIONS
from batchpoint.ml.datastores.resource_types import DATASTORE_TYPE
from batchpoint.ml.datastores.uris import UriResolver
from batchpoint.store.base import Store
from batchpoint.store.entities import Resource
from batchpoint.web.views import LISTED

INPUT_TYPES = {"uri_folder": "UriFolder", "uri_file": "UriFile"}
"""A data asset's type, and the job input type it is given as (other types do not feed a model deployment)."""
PATH_TYPES = {"UriFolder": "a folder", "UriFile": "a file"}


def invoke_path(endpoint_id: str) -> str:
    """The invoke route's path, whose permission (``batchEndpoints/jobs/write``) the form needs."""
    return f"{INVOKE_PREFIX}{endpoint_id}/jobs"


@dataclass(frozen=True)
class CreateJobForm:
    """The form's fields as posted (all text, as a form sends them; empty when left blank)."""

    deployment: str = ""
    asset: str = ""
    """``azureml:{name}:{version}`` of a data asset."""
    path: str = ""
    path_type: str = "UriFolder"
    mini_batch_size: str = ""
    instance_count: str = ""
    output_file_name: str = ""

    @classmethod
    def of(cls, posted: Mapping[str, str]) -> CreateJobForm:
        return cls(**{each.name: posted[each.name].strip() for each in fields(cls) if posted.get(each.name)})


@dataclass(frozen=True)
class CreateJob:
    """What the form offers, with what was posted and the error it met (if any)."""

    deployments: list[str]
    assets: dict[str, str]
    """The job input type of each data asset (``data_assets``)."""
    datastores: list[str]
    local_roots: list[str]
    """The folders under which the server reads local paths (``serve --allow-local-path``)."""
    posted: CreateJobForm = field(default_factory=CreateJobForm)
    error: ArmError | None = None
    path_types: dict[str, str] = field(default_factory=lambda: PATH_TYPES)


def offered(uris: UriResolver, workspace_id: str, deployments: list[str], default: str) -> CreateJob:
    """The form of an endpoint of ``workspace_id`` whose deployments are ``deployments``."""
    return CreateJob(
        deployments=deployments,
        assets=data_assets(uris.store, workspace_id),
        datastores=[datastore.name for datastore in uris.store.list_below(workspace_id, DATASTORE_TYPE, None, LISTED)],
        local_roots=[str(root) for root in uris.allowed_local_paths],
        posted=CreateJobForm(deployment=default or next(iter(deployments), "")),
    )


def data_assets(store: Store, workspace_id: str) -> dict[str, str]:
    """The workspace's data assets a model deployment can read (a folder or a file), archived ones aside: the job
    input type of each by its reference, ``azureml:{name}:{version}``, as an invoke names it."""
    assets = {}
    for version in store.list_below(workspace_id, DATA_VERSIONS.type, None, LISTED):
        properties = version.body.get("properties") or {}
        input_type = INPUT_TYPES.get(str(properties.get("dataType", "")).lower())
        if input_type is not None and not properties.get("isArchived"):
            name = version.id.rsplit("/versions/", 1)[0].rsplit("/", 1)[-1]
            assets[f"azureml:{name}:{version.name}"] = input_type
    return assets


def invoke_request(form: CreateJobForm, assets: dict[str, str]) -> InvokeProperties:
    """The invoke's ``properties`` as azure-ai-ml sends them for this form, checked by the invoke route's model."""
    if bool(form.asset) == bool(form.path):
        raise bad_request("Choose a registered data asset or type a path (one of them) as the job's input.")
    if form.asset:
        data = {"jobInputType": assets.get(form.asset, "UriFolder"), "uri": form.asset}
    else:
        if form.path_type not in PATH_TYPES:
            raise bad_request(f"The input type '{form.path_type}' is not one of {', '.join(PATH_TYPES)}.")
        data = {"jobInputType": form.path_type, "uri": form.path}
    properties: dict[str, Any] = {"inputData": {"input_data": data}}
    if form.mini_batch_size:
        properties["miniBatchSize"] = form.mini_batch_size
    if form.instance_count:
        properties["compute"] = {"instanceCount": form.instance_count}
    if form.output_file_name:
        properties["outputFileName"] = form.output_file_name
    try:
        return InvokeRequest.model_validate({"properties": properties}).properties
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, each['loc']))}: {each['msg']}" for each in error.errors())
        raise bad_request(f"The request is invalid. {problems}") from None


def submit(jobs: Jobs, ctx: RequestContext, endpoint_id: str, form: CreateJobForm, assets: dict[str, str]) -> Resource:
    """Start the job the form asks for, on the deployment it names, as ``POST {scoringUri}`` does."""
    if not form.deployment:
        raise bad_request("Choose the deployment that runs the job.")
    return jobs.invoke(ctx, endpoint_id, invoke_request(form, assets), form.deployment, None)
