"""Jobs of pipeline component deployments: an invoke binds the inputs and plans every step (a child job each);
the runner runs the steps' graph, each step in its component's environment, and resumes from finished steps.

A step's process gets its node's `environment_variables` and the managed identity of its compute, through the secret
of its child job (Decision 19, docs/pipelines.md)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchpoint.arm.context import RequestContext
from batchpoint.arm.errors import bad_request
from batchpoint.arm.ids import JOB_TYPE
from batchpoint.arm.resources import new_version
from batchpoint.jobs.identity import WorkerIdentity
from batchpoint.jobs.studio_link import studio_services
from batchpoint.jobs.wire import InvokeProperties
from batchpoint.ml.assets.references import load_version, names_a_version
from batchpoint.ml.components.pipelines import (
    ASSET_TYPES,
    MODEL_TYPES,
    PARENT_INPUT,
    STEP_OUTPUT,
    BoundInput,
    Node,
    Pipeline,
    bind_inputs,
    command_line,
    load_pipeline,
)
from batchpoint.ml.components.wire import JobInput, JobOutput, Literal
from batchpoint.ml.computes.rules import BUILTIN_COMPUTE, compute_id
from batchpoint.ml.datastores.uris import UriResolver, normalized
from batchpoint.ml.endpoints.environments import DeploymentEnvironments
from batchpoint.runtime.environments.cache import EnvironmentBuildError, EnvironmentCache
from batchpoint.runtime.environments.spec import environment_from_record, environment_record
from batchpoint.runtime.pipeline import StepRun, partial, run_graph
from batchpoint.runtime.sandbox.policy import WorkerSandbox
from batchpoint.runtime.status import TERMINAL, JobStatus
from batchpoint.store import Store
from batchpoint.store.entities import Resource


def output_uri(job_name: str, output: str) -> str:
    """Azure's default place for a job's named output (also where `jobs.download` looks when all else fails)."""
    return f"azureml://datastores/workspaceblobstore/paths/azureml/{job_name}/{output}/"


def child_name(job_name: str, step: str) -> str:
    return f"{job_name}-{step}"


def step_properties(job_name: str, node: str, module: str, version: str | None, step_type: str) -> dict[str, str]:
    """The run properties Azure gives a step of a pipeline job (the batch notebooks find their steps by
    ``azureml.moduleName``: the component's name)."""
    properties = {
        "azureml.nodeid": node,
        "azureml.pipelinerunid": job_name,
        "azureml.rootpipelinerunid": job_name,
        "azureml.moduleName": module,
        "azureml.runsource": "azureml.StepRun",
        "azureml.isreused": "false",
        "StepType": step_type,
    }
    return properties | ({"azureml.moduleVersion": str(version)} if version else {})


def is_pipeline_deployment(deployment: Resource) -> bool:
    configuration = deployment.body["properties"].get("deploymentConfiguration") or {}
    return str(configuration.get("deploymentConfigurationType", "")).lower() == "pipelinecomponent"


@dataclass(frozen=True)
class PlannedPipeline:
    document: dict[str, Any]
    """The parent job's properties that differ from a model job's."""
    record: dict[str, Any]
    """What the runner needs, kept with the job."""
    children: dict[str, dict[str, Any]]
    """Child job name to its document."""


@dataclass(frozen=True)
class Requested:
    """What a job asks of a pipeline: inputs by name (unset ones take their defaults) and outputs' URIs."""

    inputs: Mapping[str, JobInput | Literal]
    outputs: Mapping[str, JobOutput]


@dataclass(frozen=True)
class Values:
    """The pipeline's input values, and which of them are paths (of data or models) a step reads."""

    values: dict[str, str]
    paths: set[str]


@dataclass
class PipelinePlanner:
    store: Store
    uris: UriResolver
    environments: DeploymentEnvironments
    jobs_root: Path

    def plan(
        self, job_name: str, workspace_id: str, deployment: Resource, request: InvokeProperties
    ) -> PlannedPipeline:
        """An invoke of a pipeline deployment."""
        configuration = deployment.body["properties"]["deploymentConfiguration"]
        pipeline = load_pipeline(self.store, workspace_id, configuration["componentId"]["assetId"])
        requested = Requested(request.inputData, request.outputData or {})
        return self.plan_pipeline(job_name, workspace_id, pipeline, requested, configuration.get("settings") or {})

    def plan_pipeline(
        self, job_name: str, workspace_id: str, pipeline: Pipeline, requested: Requested, settings: dict[str, Any]
    ) -> PlannedPipeline:
        """A pipeline's steps with the inputs and outputs asked for, each step a child job of `job_name`."""
        bound = bind_inputs(pipeline, requested.inputs)
        outputs = self._outputs(job_name, pipeline, requested.outputs)
        folders = {name: self._local(workspace_id, uri, f"output '{name}'") for name, uri in outputs.items()}
        values = {name: self._value(workspace_id, name, given) for name, given in bound.items()}
        data = {values[name] for name, given in bound.items() if given.type in ASSET_TYPES}
        steps: list[dict[str, Any]] = []
        children: dict[str, dict[str, Any]] = {}
        for name in pipeline.order():
            node = pipeline.nodes[name]
            compute = step_compute(workspace_id, node.compute or settings.get("default_compute"))
            step, child = self._step(job_name, workspace_id, node, Values(values, data), folders, steps, compute)
            steps.append(step)
            children[child_name(job_name, name)] = child
        record = {
            "steps": steps,
            "continue_on_step_failure": str(settings.get("continue_on_step_failure", "false")).lower() == "true",
        }
        document = {
            "componentId": pipeline.component_id,
            "inputs": {name: _input_document(given) for name, given in bound.items()},
            "outputs": {name: {"jobOutputType": "uri_folder", "uri": normalized(uri)} for name, uri in outputs.items()},
            "settings": settings,
        }
        return PlannedPipeline(document, record, children)

    def _outputs(self, job_name: str, pipeline: Pipeline, requested: Mapping[str, JobOutput]) -> dict[str, str]:
        unknown = sorted(set(requested) - set(pipeline.outputs))
        if unknown:
            raise bad_request(
                f"Unknown output(s) {', '.join(unknown)}; the pipeline has: {', '.join(pipeline.outputs)}.", "UserError"
            )
        given = {name: output.uri for name, output in requested.items()}
        return {name: given.get(name) or output_uri(job_name, name) for name in pipeline.outputs}

    def _value(self, workspace_id: str, name: str, given: BoundInput) -> str:
        if given.type in ASSET_TYPES:
            return str(self._asset(workspace_id, given.type, given.value, f"input '{name}'"))
        return str(given.value)

    def _asset(self, workspace_id: str, kind: str, reference: str, what: str) -> Path:
        """The local folder (or file) of a data location, a data asset or, for model inputs, a registered model."""
        if kind in MODEL_TYPES and names_a_version(reference):
            version = load_version(self.store, workspace_id, "models", reference, "model")
            model_uri = version.body["properties"].get("modelUri")
            if not model_uri:
                raise bad_request(f"The model '{reference}' of the {what} has no modelUri.", "UserError")
            reference = model_uri
        return self._local(workspace_id, reference, what)

    def _local(self, workspace_id: str, uri: str, what: str) -> Path:
        location = self.uris.resolve(workspace_id, uri)
        if location.local_path is None:
            raise bad_request(
                f"The {what} '{uri}' is on remote storage; "
                "pipeline steps read and write local datastores and allowed local paths.",
                "UserError",
            )
        return location.local_path

    def _step(
        self,
        job_name: str,
        workspace_id: str,
        node: Node,
        values: Values,
        folders: dict[str, Path],
        planned: list[dict[str, Any]],
        compute: str,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        child = child_name(job_name, node.name)
        outputs = {
            output: folders[bound]
            if bound
            else self._local(workspace_id, output_uri(child, output), f"output '{output}'")
            for output, bound in ((key, node.outputs.get(key)) for key in (node.spec.get("outputs") or {}))
        }
        earlier = {step["name"]: step["outputs"] for step in planned}
        placeholders = self._placeholders(workspace_id, node, values.values, earlier, outputs)
        command = command_line(node.spec["command"], placeholders, node.name)
        reads = _reads(node, placeholders, values.paths, earlier)
        environment = self.environments.of_reference(workspace_id, node.spec.get("environment"))
        work_dir = self.jobs_root / job_name / "steps" / node.name
        step = {
            "name": node.name,
            "command": command,
            "code_dir": str(self._code(workspace_id, node)) if node.spec.get("code") else None,
            "work_dir": str(work_dir),
            "outputs": {key: str(path) for key, path in outputs.items()},
            "depends_on": sorted(node.depends_on),
            "environment": environment_record(environment),
            "inputs": reads,
            "environment_variables": node.environment_variables,
        }
        child_outputs = {key: str(path) for key, path in outputs.items()}
        return step, _child_document(job_name, node, command, child_outputs, compute)

    def _placeholders(
        self,
        workspace_id: str,
        node: Node,
        values: dict[str, str],
        earlier: dict[str, dict[str, str]],
        outputs: dict[str, Path],
    ) -> dict[str, str]:
        """Each placeholder with a value: step defaults, then bindings; an unbound optional input has none."""
        placeholders = {
            f"inputs.{key}": str(spec["default"])
            for key, spec in (node.spec.get("inputs") or {}).items()
            if isinstance(spec, dict) and spec.get("default") is not None
        }
        for key, binding in node.inputs.items():
            if match := PARENT_INPUT.match(binding.value):
                if match["name"] in values:
                    placeholders[f"inputs.{key}"] = values[match["name"]]
            elif match := STEP_OUTPUT.match(binding.value):
                placeholders[f"inputs.{key}"] = earlier[match["step"]][match["name"]]
            elif binding.type in ASSET_TYPES:
                what = f"input '{key}' of step '{node.name}'"
                placeholders[f"inputs.{key}"] = str(self._asset(workspace_id, binding.type, binding.value, what))
            else:
                placeholders[f"inputs.{key}"] = binding.value
        placeholders.update({f"outputs.{key}": str(partial(path)) for key, path in outputs.items()})
        return placeholders

    def _code(self, workspace_id: str, node: Node) -> Path:
        reference = str(node.spec["code"])
        version = load_version(self.store, workspace_id, "codes", reference, "code")
        code_uri = version.body["properties"].get("codeUri")
        if not code_uri:
            raise bad_request(f"The step '{node.name}' code '{reference}' has no codeUri.", "UserError")
        return self._local(workspace_id, code_uri, f"code of step '{node.name}'")


def step_compute(workspace_id: str, reference: str | None) -> str:
    """The compute a step's job names (the node's, else the pipeline's `default_compute`, else the built-in one),
    whose managed identity the step gets: named as given, whether or not it exists, since the steps run on the
    server's own processes whatever compute they name."""
    name = str(reference or BUILTIN_COMPUTE).rsplit("/", 1)[-1].removeprefix("azureml:")
    return compute_id(workspace_id, name)


def _reads(node: Node, placeholders: dict[str, str], paths: set[str], earlier: dict[str, dict[str, str]]) -> list[str]:
    """What a step's command reads: the paths its inputs were given (data, models, earlier steps' outputs); never a
    literal that happens to name a path."""
    produced = {path for outputs in earlier.values() for path in outputs.values()}
    reads = set()
    for key, binding in node.inputs.items():
        value = placeholders.get(f"inputs.{key}")
        reference = PARENT_INPUT.match(binding.value) or STEP_OUTPUT.match(binding.value)
        asset = binding.type in ASSET_TYPES and not reference
        if value is not None and (asset or value in paths or value in produced):
            reads.add(value)
    return sorted(reads)


def child_rows(ctx: RequestContext, workspace_id: str, planned: PlannedPipeline) -> list[Resource]:
    """A planned pipeline's steps as child jobs, stored with the job."""
    return [
        new_version(ctx, f"{workspace_id}/jobs/{name}", JOB_TYPE, _with_link(child, workspace_id, name), None)
        for name, child in planned.children.items()
    ]


def _with_link(child: dict[str, Any], workspace_id: str, name: str) -> dict[str, Any]:
    return {**child, "properties": {**child["properties"], "services": studio_services(workspace_id, name)}}


def _input_document(given: BoundInput) -> dict[str, Any]:
    if given.type in ASSET_TYPES:
        return {"jobInputType": given.type, "uri": given.value}
    return {"jobInputType": "literal", "value": str(given.value)}


def _child_document(job_name: str, node: Node, command: str, outputs: dict[str, str], compute: str) -> dict[str, Any]:
    name = child_name(job_name, node.name)
    return {
        "properties": {
            "jobType": "Command",
            "status": JobStatus.NOT_STARTED,
            "displayName": node.name,
            "experimentName": job_name,
            "command": command,
            "componentId": node.component_id,
            "environmentId": node.spec.get("environment"),
            "environmentVariables": node.environment_variables,
            "computeId": compute,
            "properties": step_properties(
                job_name, node.name, str(node.spec.get("name") or node.name), node.spec.get("version"), "CommandStep"
            ),
            "tags": {},
            "inputs": {},
            "outputs": {key: {"jobOutputType": "uri_folder", "uri": output_uri(name, key)} for key in outputs},
        }
    }


StatusUpdate = Callable[[str, JobStatus, str], None]
"""(child job id, status, message)."""


def run_pipeline(
    record: dict[str, Any],
    workspace_id: str,
    job_name: str,
    cache: EnvironmentCache,
    child_status: Callable[[str], str | None],
    on_status: StatusUpdate,
    should_cancel: Callable[[], bool],
    sandbox: WorkerSandbox,
    identity: WorkerIdentity | None,
) -> tuple[JobStatus, str]:
    """Run (or resume) a pipeline job's steps; returns the parent's final status and message. `identity`: what each
    step gets to reach the server as its compute's managed identity (None: nothing)."""
    child_ids = {step["name"]: f"{workspace_id}/jobs/{child_name(job_name, step['name'])}" for step in record["steps"]}
    try:
        steps = [
            _step_run(step, cache, identity.variables(child_ids[step["name"]]) if identity else {})
            for step in record["steps"]
        ]
    except EnvironmentBuildError as error:
        return JobStatus.FAILED, f"A step's environment could not be built: {error}"
    statuses = {name: child_status(child) for name, child in child_ids.items()}
    ended = {name: JobStatus(status) for name, status in statuses.items() if status in TERMINAL}
    outcome = run_graph(
        steps,
        ended,
        record["continue_on_step_failure"],
        lambda step, status, message: on_status(child_ids[step], status, message),
        should_cancel,
        sandbox,
    )
    if outcome.failed:
        failures = "; ".join(outcome.errors.get(name, f"The step '{name}' failed.") for name in outcome.failed)
        return JobStatus.FAILED, failures
    if any(status == JobStatus.CANCELED for status in outcome.statuses.values()):
        return JobStatus.CANCELED, "The job was canceled."
    return JobStatus.COMPLETED, f"{len(steps)} step(s) completed."


def _step_run(step: dict[str, Any], cache: EnvironmentCache, identity: dict[str, str]) -> StepRun:
    """A planned step, its environment built if the cache lost it; without one, `python` is the server's own. Its
    variables: its `identity`'s, then its node's own (which win, as a deployment's do over its workers')."""
    spec = environment_from_record(step["environment"])
    return StepRun(
        name=step["name"],
        command=step["command"],
        code_dir=Path(step["code_dir"]) if step["code_dir"] else None,
        work_dir=Path(step["work_dir"]),
        outputs={key: Path(path) for key, path in step["outputs"].items()},
        depends_on=frozenset(step["depends_on"]),
        python=cache.ensure(spec).python if spec is not None else Path(sys.executable),
        inputs=tuple(Path(path) for path in step.get("inputs", ())),  # none in a step planned before the sandbox
        variables={**identity, **step.get("environment_variables", {})},  # none in a step planned before them
    )
