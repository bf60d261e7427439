"""Batch jobs: invoking an endpoint creates one, a background runner takes it to its end (and resumes it
after a crash), and its state reads as an ARM job resource."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from batchpoint import runtime as runtime_package
from batchpoint.arm.context import RequestContext
from batchpoint.arm.errors import bad_request, conflict
from batchpoint.arm.ids import JOB_TYPE, ArmPath
from batchpoint.arm.paging import Page, Position, fetch_page
from batchpoint.arm.resources import OnResources, Resources, duration_seconds, new_version
from batchpoint.jobs.pipelines.planner import (
    PipelinePlanner,
    child_rows,
    is_pipeline_deployment,
    output_uri,
)
from batchpoint.jobs.placement import Placement
from batchpoint.jobs.run_record import ModelRun, PipelineRun, RemoteInput, keep_run, model_run_of
from batchpoint.jobs.scoring_step import scoring_child, scoring_child_id
from batchpoint.jobs.studio_link import studio_services
from batchpoint.jobs.wire import InvokeProperties, RetrySettings
from batchpoint.ml.assets.references import load_model, load_version
from batchpoint.ml.components.wire import JobInput, Literal
from batchpoint.ml.computes.rules import is_builtin, max_nodes, resolve_compute
from batchpoint.ml.datastores.uris import Location, UriResolver, normalized
from batchpoint.ml.endpoints.environments import DeploymentEnvironments
from batchpoint.ml.endpoints.rules import JobSettings
from batchpoint.ml.endpoints.scoring import Scoring
from batchpoint.ml.endpoints.validation import unacted_settings
from batchpoint.runtime.environments.spec import EnvironmentSpec
from batchpoint.runtime.inputs import copy_remote_files, is_within
from batchpoint.runtime.output import OutputExistsError, check_output_available
from batchpoint.runtime.report import read_failed_items
from batchpoint.runtime.spec import (
    DEFAULT_INIT_TIMEOUT_SECONDS,
    DEFAULT_RESOURCE_MONITOR_SECONDS,
    JobSpec,
    RemoteFolder,
)
from batchpoint.runtime.status import TERMINAL, JobStatus
from batchpoint.store import AlreadyExists, Store
from batchpoint.store.entities import JobFilter, Resource, SortField, SortOrder

INVOCATION_TYPE = "batchpoint/invocations"
MLFLOW_SCORER = Path(runtime_package.__file__).parent / "scorers" / "mlflow_scorer.py"
"""Azure's generated scorer for MLflow models deployed without a scoring script."""
INPUT_TYPES = {"urifolder": "uri_folder", "urifile": "uri_file"}
INIT_TIMEOUT_VARIABLE = "BATCHPOINT_INIT_TIMEOUT"
"""A deployment's environment variable: the time limit on `init()` in seconds (Decision 1)."""
RESOURCE_MONITOR_VARIABLE = "BATCHPOINT_RESOURCE_MONITOR_INTERVAL"
"""A deployment's environment variable: seconds between samples of the workers' resource use (`logs/perf/`), as
Azure's `--resource_monitor_interval`; 0 turns them off."""


def default_output_uri(job_name: str) -> str:
    return output_uri(job_name, "score")


@dataclass(frozen=True)
class Routing:
    deployment: Resource
    reason: str
    """Why this deployment ran the job: the ``azureml-model-deployment`` header or the endpoint's default."""


@dataclass
class JobPlanner(OnResources):
    """Turns an invoke into a job: picks the deployment, resolves code, model, input and output."""

    resources: Resources
    uris: UriResolver
    environments: DeploymentEnvironments
    jobs_root: Path

    def route(self, endpoint: Resource, header: str | None) -> Routing:
        name = header.strip() if header and header.strip() else None
        reason = "header azureml-model-deployment"
        if name is None:
            name = (endpoint.body["properties"].get("defaults") or {}).get("deploymentName")
            reason = "endpoint default deployment"
        if not name:
            raise bad_request(
                "No valid deployments to route to: the endpoint has no default deployment. Set "
                "defaults.deploymentName on the endpoint or send the header azureml-model-deployment.",
                "UserError",
            )
        deployment = self.store.get(f"{endpoint.id}/deployments/{name}")
        if deployment is None:
            raise bad_request(
                f"The deployment '{name}' ({reason}) does not exist under '{endpoint.name}'.", "UserError"
            )
        state = deployment.body["properties"].get("provisioningState")
        if state != "Succeeded":
            raise bad_request(f"The deployment '{deployment.name}' is {state}; only a Succeeded one can run jobs.")
        return Routing(deployment, reason)

    def input_location(self, workspace_id: str, data: DataInput) -> Location:
        """Where the job's one data input is; resolved once per invoke, for the spec and for the fetch."""
        return self.uris.resolve(workspace_id, data.uri)

    def remote_input(self, job_name: str, location: Location) -> RemoteInput | None:
        """Where to fetch an input on remote storage from, before the job runs; None for a local input."""
        if location.local_path is not None:
            return None
        return RemoteInput(location.remote(), self._fetched_input(job_name))

    def place(self, workspace_id: str, scoring: Scoring, spec: JobSpec) -> tuple[Placement, JobSpec]:
        """The job's compute and the nodes it takes there: ``instance_count``, at most the compute's
        ``maxNodeCount`` (the built-in compute has no such cap)."""
        compute = resolve_compute(self.store, workspace_id, scoring.compute)
        capped = not is_builtin(compute.id)
        nodes = min(spec.instance_count, max_nodes(compute)) if capped else spec.instance_count
        notes = list(spec.notes)
        if nodes < spec.instance_count:  # said in the job's master_role.txt, as settings not acted on are
            notes.append(
                f"instance_count {spec.instance_count} is more than the compute '{compute.name}' has "
                f"(max_instances {nodes}): the job runs on {nodes} node(s)."
            )
        return Placement(compute.id, nodes, capped), replace(spec, instance_count=nodes, notes=notes)

    def environment(self, workspace_id: str, scoring: Scoring) -> EnvironmentSpec | None:
        return self.environments.spec_of(scoring, workspace_id)

    def spec(
        self,
        job_name: str,
        workspace_id: str,
        deployment: Resource,
        scoring: Scoring,
        request: InvokeProperties,
        source: Location,
        environment: EnvironmentSpec | None,
    ) -> JobSpec:
        settings = JobSettings.of(deployment)
        output_dir, file_name, remote_output = self._output(workspace_id, job_name, request, settings)
        code_dir, script = self._code(workspace_id, scoring)
        retry = request.retrySettings or RetrySettings()
        instances = request.compute.instanceCount if request.compute else None
        variables = scoring.environment_variables
        try:
            return JobSpec(
                job_id=uuid.uuid4().hex,
                input_paths=[source.local_path or self._fetched_input(job_name)],
                input_uri=source.uri,
                output_dir=output_dir,
                code_dir=code_dir,
                scoring_script=script,
                model_dir=self._model(workspace_id, job_name, scoring),
                output_action=settings.output_action,
                output_file_name=file_name,
                mini_batch_size=request.miniBatchSize or settings.mini_batch_size,
                instance_count=instances or settings.instance_count,
                max_concurrency_per_instance=settings.max_concurrency_per_instance,
                max_retries=_first_set(retry.maxRetries, settings.max_retries),
                timeout_seconds=duration_seconds("retrySettings.timeout", _first_set(retry.timeout, settings.timeout)),
                init_timeout_seconds=float(variables.get(INIT_TIMEOUT_VARIABLE) or DEFAULT_INIT_TIMEOUT_SECONDS),
                resource_monitor_seconds=float(
                    variables.get(RESOURCE_MONITOR_VARIABLE) or DEFAULT_RESOURCE_MONITOR_SECONDS
                ),
                error_threshold=_first_set(request.errorThreshold, settings.error_threshold),
                logging_level=settings.logging_level,
                environment_variables=variables,
                python=self.environments.python_of(environment),
                remote_output=remote_output,
                notes=unacted_settings(self.store, workspace_id, deployment.body["properties"]),
            )
        except ValueError as error:
            raise bad_request(f"The job cannot run with these settings: {error}") from None

    def _fetched_input(self, job_name: str) -> Path:
        """Where a remote input is fetched to before the first mini-batch."""
        return self.jobs_root / job_name / "input"

    def _output(
        self, workspace_id: str, job_name: str, request: InvokeProperties, settings: JobSettings
    ) -> tuple[Path, str, RemoteFolder | None]:
        """The output folder, the predictions file's name and, for an output on remote storage, where the
        completed output goes (the folder is then a local staging folder)."""
        file_name = request.outputFileName or settings.output_file_name
        uri, is_file = requested_output(request, job_name)
        location = self.uris.resolve(workspace_id, uri)
        if location.local_path is None:
            return self._remote_output(job_name, location, file_name, is_file)
        if is_file:
            return location.local_path.parent, location.local_path.name, None
        return location.local_path, file_name, None

    def _remote_output(
        self, job_name: str, location: Location, file_name: str, is_file: bool
    ) -> tuple[Path, str, RemoteFolder]:
        if not location.writable:
            raise bad_request(f"The output '{location.uri}' is read-only; write outputs to a datastore.", "UserError")
        folder = location.path.rstrip("/")
        if is_file:
            folder, _, file_name = folder.rpartition("/")
        return self.jobs_root / job_name / "output", file_name, location.remote(folder)

    def _code(self, workspace_id: str, scoring: Scoring) -> tuple[Path | None, str | None]:
        if not scoring.code_id:
            if self._model_type(workspace_id, scoring) == "mlflow_model":
                return MLFLOW_SCORER.parent, MLFLOW_SCORER.name
            return None, scoring.scoring_script
        version = load_version(self.store, workspace_id, "codes", scoring.code_id, "code")
        code_uri = version.body["properties"].get("codeUri")
        if not code_uri:
            raise bad_request("The deployment's code version has no codeUri.", "UserError")
        return _local(self.uris.resolve(workspace_id, code_uri), "code"), scoring.scoring_script

    def _model_type(self, workspace_id: str, scoring: Scoring) -> str | None:
        version = load_model(self.store, workspace_id, scoring.model_id)
        return (version.body["properties"].get("modelType") or "").lower() if version else None

    def _model(self, workspace_id: str, job_name: str, scoring: Scoring) -> Path | None:
        """AZUREML_MODEL_DIR: a private folder where the registered files appear under their own name."""
        version = load_model(self.store, workspace_id, scoring.model_id)
        model_uri = version.body["properties"].get("modelUri") if version else None
        if not model_uri:
            return None
        target = _local(self.uris.resolve(workspace_id, model_uri), "model")
        root = self.jobs_root / job_name / "model"
        root.mkdir(parents=True, exist_ok=True)
        place_model(target, root / target.name)
        return root


def place_model(target: Path, at: Path) -> None:
    """The registered model's files at `at` as real folders of hard links (Decision 17): scoring scripts walk
    AZUREML_MODEL_DIR with os.walk or Path.rglob, which do not enter a linked folder, and on Azure it is a real
    folder. Made aside and renamed, so a crash leaves it whole or absent; a job planned before (a link) keeps its
    link; where a hard link cannot be made (another file system), a link to the model's folder as before."""
    if at.exists() or at.is_symlink():
        return
    partial = at.with_name(f".{at.name}.partial")
    _remove(partial)
    try:
        if target.is_dir():
            shutil.copytree(target, partial, copy_function=os.link)
        else:
            os.link(target, partial)
    except OSError:
        _remove(partial)
        at.symlink_to(target)
        return
    partial.rename(at)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


MAX_RERUN_CHAIN = 100
"""How far back `Jobs._first_inputs` follows a chain of reruns."""


def inside_input(path: str, roots: Sequence[Path], first_inputs: Sequence[Path]) -> str:
    """`path`, a file `failed_items.txt` names, normalised, when it is one of the job's input `roots` or inside one,
    and leads inside `first_inputs` (the inputs of the first job of a chain of reruns); else a ValueError naming
    it. The list lies in the job's output folder, which its scoring script may write, so it names nothing else
    (absolute, climbing out with '..', or through a link a user placed in the input). The rerun's sandbox holds
    the same line where it counts, when its workers read (`JobSpec.input_roots`): this is the early, clear 400."""
    try:
        os.fsencode(path)
        valid = os.path.isabs(path) and "\0" not in path and ".." not in Path(path).parts
    except UnicodeError:
        valid = False
    if not valid:
        raise ValueError(f"its failed_items.txt names {path!r}, which is not an absolute path of an input file.")
    normal = os.path.normpath(path)
    real = os.path.realpath(normal)
    inside = any(is_within(normal, os.path.normpath(os.path.abspath(root))) for root in roots)
    if inside and any(is_within(real, os.path.realpath(first)) for first in first_inputs):
        return normal
    inputs = ", ".join(repr(str(root)) for root in roots)
    raise ValueError(f"its failed_items.txt names {path!r}, which is not inside its input ({inputs}).")


def link_inputs(folder: Path, roots: Sequence[Path], files: list[str]) -> None:
    """A folder of symbolic links to `files`, each at its path relative to the input root it came from, so a
    rerun lists them in their original order and its script sees their original names."""
    for path in files:
        target = Path(path)
        root = next((root for root in roots if target.is_relative_to(root.absolute())), None)
        relative = target.relative_to(root.absolute()) if root is not None and root.is_dir() else Path(target.name)
        link = folder / relative
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target)


def _copy_remote_inputs(fetched: RemoteInput | None, files: list[str]) -> None:
    """A job that ran on a Ray cluster read its remote input in place: the files to run again are copied here,
    where a local copy of the input would be, so that a rerun's links point at files."""
    if fetched is None:
        return
    try:
        copy_remote_files(fetched.source, fetched.target, files)
    except Exception as error:  # noqa: BLE001 - any storage client error: the answer says which input
        raise bad_request(
            f"Could not copy the files to run again from '{fetched.source.uri}': {error}", "UserError"
        ) from None


@dataclass(frozen=True)
class DataInput:
    """A model deployment's one data input, checked: its name (which Azure ignores), type and location."""

    name: str
    type: str
    """``uri_folder`` or ``uri_file``."""
    uri: str

    @classmethod
    def of(cls, inputs: Mapping[str, JobInput | Literal]) -> DataInput:
        data = [
            (name, value)
            for name, value in inputs.items()
            if isinstance(value, JobInput) and value.jobInputType.lower() != "literal"
        ]
        if len(data) != 1 or len(inputs) != 1:
            raise bad_request(
                f"A model deployment takes exactly one data input (uri_folder or uri_file); got {len(inputs)}.",
                "UserError",
            )
        name, given = data[0]
        kind = given.jobInputType.lower()
        if kind not in INPUT_TYPES:
            raise bad_request(f"Input type '{given.jobInputType}' is not supported; use UriFolder or UriFile.")
        if not given.uri:
            raise bad_request("The input has no 'uri'.", "UserError")
        return cls(name, INPUT_TYPES[kind], given.uri)


def _local(location: Location, what: str) -> Path:
    if location.local_path is None:
        raise bad_request(
            f"The {what} '{location.uri}' is on remote storage; batchpoint reads code and models from local "
            "datastores and allowed local paths.",
            "UserError",
        )
    return location.local_path


def _first_set(*values: Any) -> Any:
    return next(value for value in values if value is not None)


def model_job_io(job_name: str, request: InvokeProperties, data: DataInput) -> dict[str, Any]:
    """A model job's one data input and its one output, ``score``."""
    return {
        "inputs": {data.name: {"jobInputType": data.type, "uri": data.uri}},
        "outputs": {
            "score": {"jobOutputType": "uri_folder", "uri": normalized(requested_output(request, job_name)[0])}
        },
    }


def job_document(
    job_name: str, endpoint: Resource, routing: Routing, request: InvokeProperties, io: dict[str, Any]
) -> dict[str, Any]:
    """A batch job as Azure ML shows it: a Pipeline job marked ``azureml.batchrun``; ``io`` holds its inputs and
    outputs (and, for a pipeline deployment, its component and settings)."""
    properties = {
        "azureml.batchrun": "true",
        "azureml.endpointname": endpoint.name,
        "azureml.deploymentname": routing.deployment.name,
        "batchpoint.routing": routing.reason,
        **(request.properties or {}),
    }
    return {
        "properties": {
            "jobType": "Pipeline",
            "status": JobStatus.NOT_STARTED,
            "displayName": job_name,
            "experimentName": (request.properties or {}).get("experimentName") or endpoint.name,
            "properties": properties,
            "tags": {},
            "jobs": {},
            "settings": {},
            **io,
            "services": studio_services(endpoint.parent_id, job_name),
            "progress": _empty_progress(),
        }
    }


def requested_output(request: InvokeProperties, job_name: str) -> tuple[str, bool]:
    """Where a model job's output goes, and whether that is a file: the invoke's one output, else the legacy
    ``outputDataset`` (a datastore and a path), else Azure's default place."""
    outputs = list((request.outputData or {}).values())
    dataset = request.outputDataset
    if outputs and outputs[0].uri:
        return outputs[0].uri, (outputs[0].jobOutputType or "").lower() == "urifile"
    if dataset is not None and dataset.datastoreId:
        datastore = dataset.datastoreId.rstrip("/").rsplit("/", 1)[-1]
        return f"azureml://datastores/{datastore}/paths/{(dataset.path or '').lstrip('/')}", False
    return default_output_uri(job_name), False


def _empty_progress() -> dict[str, Any]:
    return {
        "miniBatches": {"total": 0, "succeeded": 0, "failed": 0, "running": 0},
        "items": {"succeeded": 0, "failed": 0},
    }


def insert_job(store: Store, runner: Any, job: Resource, children: list[Resource]) -> None:
    """Store a job with its child jobs and its lease, owned by this process until `runner.submit` (in the caller's
    transaction); 409 when a name is taken."""
    try:
        store.insert_many([*children, job])
    except AlreadyExists:
        raise conflict(f"A job named '{job.name}' (or one of its steps) already exists in this workspace.") from None
    if not runner.reserve(job.id):
        raise conflict(f"A job named '{job.name}' is still running in this workspace.")


@dataclass
class Jobs(OnResources):
    resources: Resources
    planner: JobPlanner
    pipelines: PipelinePlanner
    runner: Any
    """The JobRunner that takes accepted jobs to their end."""

    def invoke(
        self,
        ctx: RequestContext,
        endpoint_id: str,
        request: InvokeProperties,
        header: str | None,
        request_id: str | None,
        source: Location | None = None,
        input_roots: Sequence[Path] = (),
    ) -> Resource:
        """Start a job; `source` is its input already resolved (a rerun's folder of failed files, with the inputs
        its links point into, `input_roots`), else the request's `inputData` is resolved."""
        endpoint = self.resources.get(endpoint_id)
        repeated = self._repeated(endpoint, request_id)
        if repeated is not None:
            return repeated
        routing = self.planner.route(endpoint, header)
        workspace_id = ArmPath.parse(endpoint.id).workspace_id
        job_name = request.name or f"batchjob-{uuid.uuid4()}"
        job_id = f"{workspace_id}/jobs/{job_name}"
        if self.store.get_body_json(job_id) is not None:
            raise conflict(f"A job named '{job_name}' already exists in this workspace.")
        children: list[Resource] = []
        if is_pipeline_deployment(routing.deployment):
            planned = self.pipelines.plan(job_name, workspace_id, routing.deployment, request)
            job = new_version(
                ctx, job_id, JOB_TYPE, job_document(job_name, endpoint, routing, request, planned.document), None
            )
            keep_run(job, PipelineRun(planned.record))
            children = child_rows(ctx, workspace_id, planned)
        else:
            job, children = self._model_job(ctx, job_id, endpoint, routing, request, source, input_roots)
        if not self._accept(endpoint, request_id, job, children):
            return self._repeated(endpoint, request_id) or self.resources.get(job_id)
        self.runner.submit(job.id)
        return job

    def _accept(self, endpoint: Resource, request_id: str | None, job: Resource, children: list[Resource]) -> bool:
        """Store the job, its child jobs and the request id's claim in one transaction; False (and nothing
        stored) when an identical invoke claimed the request id first."""
        with self.store.transaction():
            if request_id is not None and not self._claim(endpoint, request_id, job.id):
                return False
            insert_job(self.store, self.runner, job, children)
        return True

    def _model_job(
        self,
        ctx: RequestContext,
        job_id: str,
        endpoint: Resource,
        routing: Routing,
        request: InvokeProperties,
        source: Location | None,
        input_roots: Sequence[Path],
    ) -> tuple[Resource, list[Resource]]:
        """A model deployment's job, its run record kept, and its scoring step."""
        workspace_id, job_name = job_id.rsplit("/jobs/", 1)
        data = DataInput.of(request.inputData)
        source = source or self.planner.input_location(workspace_id, data)
        scoring = Scoring.of(routing.deployment)
        environment = self.planner.environment(workspace_id, scoring)
        spec = self.planner.spec(job_name, workspace_id, routing.deployment, scoring, request, source, environment)
        spec = replace(spec, input_roots=input_roots) if input_roots else spec
        placement, spec = self.planner.place(workspace_id, scoring, spec)
        try:
            check_output_available(spec)
        except OutputExistsError as error:
            raise bad_request(
                f"The output file '{spec.output_file_name}' already exists in the output folder; a batch job never "
                "overwrites or appends to it. Choose another output path or file name.",
                "UserError",
            ) from error
        io = model_job_io(job_name, request, data)
        job = new_version(ctx, job_id, JOB_TYPE, job_document(job_name, endpoint, routing, request, io), None)
        job.body["properties"]["computeId"] = placement.compute_id
        step = scoring_child(ctx, job, spec.scoring_script, scoring.environment_id)
        fetch = self.planner.remote_input(job_name, source)
        keep_run(job, ModelRun(spec, placement, fetch, environment, scoring_child=step.id))
        return job, [step]

    def rerun_failed(self, ctx: RequestContext, job_id: str) -> Resource:
        """Start a job of the same deployment over the items that failed, or never ran, in the ended job
        `job_id`: an invoke whose input is a folder of links to those files (docs/runtime.md)."""
        job = self.resources.get(job_id)
        properties = job.body["properties"]
        if properties["status"] not in TERMINAL:
            raise bad_request(f"The job '{job.name}' is {properties['status']}; rerun its failures once it has ended.")
        run = model_run_of(job)
        if run is None:
            raise bad_request(f"The job '{job.name}' is not a job of a model deployment; only those can be rerun.")
        spec = run.spec
        roots = [*spec.input_paths, *([run.fetch.target] if run.fetch is not None else [])]
        first_inputs = spec.input_roots or self._first_inputs(job) or roots
        try:
            failed = [inside_input(path, roots, first_inputs) for path in read_failed_items(spec)]
        except ValueError as error:
            raise bad_request(f"The job '{job.name}' cannot be rerun: {error}", "UserError") from None
        if not failed:
            raise bad_request(f"The job '{job.name}' has no failed or unprocessed items to run again.", "UserError")
        _copy_remote_inputs(run.fetch, failed)
        workspace_id = job_id.rsplit("/jobs/", 1)[0]
        tags = properties["properties"]
        endpoint_id = f"{workspace_id}/batchEndpoints/{tags['azureml.endpointname']}"
        name = f"batchjob-{uuid.uuid4()}"
        folder = self.planner.jobs_root / name / "input"
        request = InvokeProperties(
            name=name,
            inputData={"failed": JobInput(jobInputType="UriFolder", uri=str(folder))},
            properties={"batchpoint.rerunOf": job.name},
        )
        source = Location(uri=str(folder), protocol="file", path=str(folder), writable=False)
        try:  # a rerun that fails leaves no folder behind, whether linking or invoking failed
            try:
                link_inputs(folder, spec.input_paths, failed)
            except OSError as error:
                raise bad_request(
                    f"Could not link the files to run again in '{folder}': {error}", "UserError"
                ) from None
            return self.invoke(ctx, endpoint_id, request, tags["azureml.deploymentname"], None, source, first_inputs)
        except Exception:
            shutil.rmtree(folder.parent, ignore_errors=True)
            raise

    def _first_inputs(self, job: Resource) -> list[Path]:
        """The inputs of the first job of the chain of reruns `job` ends (none: it is no rerun), found through each
        one's `batchpoint.rerunOf`: for a rerun stored before reruns recorded them (`JobSpec.input_roots`)."""
        workspace_id = job.id.rsplit("/jobs/", 1)[0]
        inputs: list[Path] = []
        for _ in range(MAX_RERUN_CHAIN):
            parent = (job.body["properties"].get("properties") or {}).get("batchpoint.rerunOf")
            found = self.store.get(f"{workspace_id}/jobs/{parent}") if parent else None
            run = model_run_of(found)
            if found is None or run is None:
                return inputs
            job, inputs = found, list(run.spec.input_roots or run.spec.input_paths)
            if run.spec.input_roots:
                return inputs
        return inputs

    def of_endpoint(self, endpoint_id: str, where: JobFilter, order: SortOrder, position: Position, size: int) -> Page:
        """A page of the jobs an endpoint ran that pass ``where`` (one deployment's, ...); jobs outlive the endpoint,
        as on Azure."""
        if order.field is not SortField.CREATED:
            raise bad_request("Jobs are listed in creation order: $orderBy takes CreatedAtAsc or CreatedAtDesc.")
        workspace_id, endpoint = ArmPath.parse(endpoint_id).workspace_id, endpoint_id.rsplit("/", 1)[-1]
        return fetch_page(
            lambda after, limit: self.store.list_jobs(workspace_id, endpoint, where, order, after, limit),
            position,
            size,
        )

    def cancel(self, job_id: str) -> Resource:
        """Cancel a job; a model job's scoring step cancels its parent, whose state it follows."""
        job = self.resources.get(job_id)
        parent_name = job.body["properties"].get("properties", {}).get("azureml.pipelinerunid")
        parent = self.store.get(f"{job.parent_id}/jobs/{parent_name}") if parent_name else None
        if parent is not None and (scoring_child_id(parent) or "").lower() == job.id.lower():
            job = parent
        if job.body["properties"]["status"] not in TERMINAL:
            self.runner.cancel(job.id)
        return job

    def _repeated(self, endpoint: Resource, request_id: str | None) -> Resource | None:
        """An invoke repeating a request id already seen for this endpoint returns the first job (Decision 13)."""
        if not request_id:
            return None
        claim = self.store.get(f"{endpoint.id}/invocations/{request_id}")
        return self.store.get(claim.body["job"]) if claim else None

    def _claim(self, endpoint: Resource, request_id: str, job_id: str) -> bool:
        claim = Resource(id=f"{endpoint.id}/invocations/{request_id}", type=INVOCATION_TYPE, body={"job": job_id})
        try:
            self.store.insert(claim)
        except AlreadyExists:
            return False
        return True
