"""The wire models of the served operations are the 2025-12-01 spec's: for every operation of the extract, its
request body and answers have the spec's property names, required properties, read-only properties, defaults,
enums and x-ms-mutability, down through the objects they hold (``tests/spec.py``). Deliberate deviations are in
DEVIATIONS.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, create_model

import tests.spec
from batchpoint.app.asgi import create_api
from batchpoint.config import Settings
from batchpoint.ml.endpoints.wire import (
    BatchDeploymentProperties,
    BatchEndpointProperties,
    BatchEndpointTrackedResource,
    CodeConfiguration,
)
from tests.spec import ref_name, spec


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return create_api(Settings(home=tmp_path_factory.mktemp("wire")))


def served_models(route: APIRoute, operation: dict[str, Any]) -> list[tuple[type[BaseModel] | None, str]]:
    """The models the route takes and answers with, each with the spec definition it should match."""
    pairs = []
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "body":
            body = route.body_field.field_info.annotation if route.body_field else None
            pairs.append((body, ref_name(parameter["schema"])))
    for status, response in operation["responses"].items():
        if status != "default" and "schema" in response:
            pairs.append(((route.responses.get(int(status)) or {}).get("model"), ref_name(response["schema"])))
    return pairs


def test_every_operation_of_the_extract_is_served_with_the_spec_s_wire_models(app: FastAPI) -> None:
    routes = {route.operation_id: route for route in app.routes if isinstance(route, APIRoute)}
    mismatches = []
    for operation_id, (_, _, operation) in spec().operations().items():
        route = routes.get(operation_id)
        if route is None:
            mismatches.append(f"{operation_id}: not served")
            continue
        for model, definition in served_models(route, operation):
            if model is None:
                mismatches.append(f"{operation_id}: no model for {definition}")
            else:
                mismatches += spec().compare(model, definition)
    assert sorted(set(mismatches)) == []


def copy_of(model: type[BaseModel], renamed: dict[str, str] | None = None, **annotations: Any) -> type[BaseModel]:
    """A copy of ``model`` with fields renamed, or given other types."""
    fields: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        fields[(renamed or {}).get(name, name)] = (annotations.get(name, field.annotation), field)
    copied: type[BaseModel] = create_model(model.__name__, __config__=model.model_config, **fields)
    return copied


def test_a_renamed_field_is_found_in_the_resource_that_holds_it() -> None:
    properties = copy_of(BatchEndpointProperties, renamed={"authMode": "authenticationMode"})
    resource = copy_of(BatchEndpointTrackedResource, properties=properties)
    where = "BatchEndpointTrackedResource ~ BatchEndpointTrackedResource.properties(BatchEndpoint)"
    assert spec().compare(resource, "BatchEndpointTrackedResource") == [
        f"{where}.authMode: not in the model",
        f"{where}.authenticationMode: not in the spec",
    ]


def test_a_changed_default_a_new_requirement_and_a_lost_create_only_mark_are_found() -> None:
    changed = create_model(
        "BatchDeploymentProperties",
        __base__=BatchDeploymentProperties,
        miniBatchSize=(int, 20),
        outputFileName=(str, ...),
    )
    unmarked = create_model("CodeConfiguration", __base__=CodeConfiguration, codeId=(str | None, None))
    assert spec().compare(changed, "BatchDeployment") == [
        "BatchDeploymentProperties ~ BatchDeployment.miniBatchSize: default is 20, the spec's 10",
        "BatchDeploymentProperties ~ BatchDeployment.outputFileName: required is True, the spec's False",
        "BatchDeploymentProperties ~ BatchDeployment.outputFileName: default is None, the spec's 'predictions.csv'",
    ]
    assert spec().compare(unmarked, "CodeConfiguration") == [
        "CodeConfiguration ~ CodeConfiguration.codeId: x-ms-mutability is ['create', 'read', 'update'], "
        "the spec's ['create', 'read']"
    ]


def test_the_extract_missing_fails_the_tests_that_need_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tests.spec, "SPEC_DIR", tmp_path)
    with pytest.raises(pytest.fail.Exception, match="BATCHPOINT_SPEC_DIR"):
        tests.spec.reference(tests.spec.EXTRACT)
