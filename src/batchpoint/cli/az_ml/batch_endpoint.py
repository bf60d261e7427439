"""``batchpoint batch-endpoint create|update|show|list|delete|invoke|list-jobs``, as ``az ml batch-endpoint``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from batchpoint.cli.az_ml.sdk import (
    File,
    Name,
    Session,
    Sets,
    Yes,
    as_dict,
    check_existence,
    exists,
    group,
    required,
    verb,
)
from batchpoint.cli.az_ml.yaml_files import Source, load, parse_sets, set_fields
from batchpoint.cli.common import errors
from batchpoint.cli.native.jobs import follow

app = group("Batch endpoints, as az ml batch-endpoint.")

InputsFile = Annotated[
    Path | None,
    typer.Option(
        "--file",
        "-f",
        "--f",
        exists=True,
        dir_okay=False,
        help="A YAML file with inputs: and outputs: for the job (and name: for the endpoint).",
    ),
]
DataInput = Annotated[
    str | None, typer.Option("--input", help="A local file or folder (uploaded), a URI or azureml:data@latest.")
]
InputType = Annotated[
    str | None, typer.Option("--input-type", help="uri_folder or uri_file (default: from a local --input).")
]
OutputPath = Annotated[
    str | None, typer.Option("--output-path", help="Where the job's output goes, e.g. azureml://datastores/D/paths/P.")
]
DeploymentName = Annotated[
    str | None, typer.Option("--deployment-name", "-d", help="Run on this deployment instead of the default.")
]
MiniBatchSize = Annotated[int | None, typer.Option("--mini-batch-size", help="Files per mini-batch for this job.")]
InstanceCount = Annotated[int | None, typer.Option("--instance-count", help="Instances for this job.")]
JobName = Annotated[str | None, typer.Option("--job-name", help="The job's name (default: a new one).")]
ExperimentName = Annotated[str | None, typer.Option("--experiment-name", help="The job's experiment.")]
Wait = Annotated[bool, typer.Option("--wait", help="batchpoint's own: follow the job (on stderr) until it ends.")]
LITERALS = {bool: "boolean", int: "integer", float: "number", str: "string"}


def endpoint_source(file: Path | None, name: str | None, sets: list[str] | None) -> Source:
    return Source(file, sets or [], {"name": ("--name", name)})


def endpoint_name(name: str | None, file: Path | None) -> str:
    """From --name, else from the YAML file's name:."""
    return required(name or Source(file).data().get("name"), "--name")


@verb(app, "create")
def create(session: Session, file: File = None, name: Name = None, set_: Sets = None) -> Any:
    """Create a batch endpoint from a YAML file and/or --name."""
    from azure.ai.ml import load_batch_endpoint

    endpoint = load(load_batch_endpoint, endpoint_source(file, name, set_))
    check_existence(
        exists(lambda: session.ml.batch_endpoints.get(endpoint.name)), False, f"batch endpoint {endpoint.name}"
    )
    return as_dict(session.ml.batch_endpoints.begin_create_or_update(endpoint).result())


@verb(app, "update")
def update(session: Session, file: File = None, name: Name = None, set_: Sets = None) -> Any:
    """Update a batch endpoint from a YAML file, or --set fields of the one on the server (--name)."""
    from azure.ai.ml import load_batch_endpoint

    if file is None:
        endpoint = set_fields(session.ml.batch_endpoints.get(required(name, "--name")), set_ or [])
    else:
        endpoint = load(load_batch_endpoint, endpoint_source(file, name, set_))
        check_existence(
            exists(lambda: session.ml.batch_endpoints.get(endpoint.name)), True, f"batch endpoint {endpoint.name}"
        )
    return as_dict(session.ml.batch_endpoints.begin_create_or_update(endpoint).result())


@verb(app, "show")
def show(session: Session, name: Name = None, file: File = None) -> Any:
    """Show a batch endpoint."""
    return as_dict(session.ml.batch_endpoints.get(endpoint_name(name, file)))


@verb(app, "list")
def list_(session: Session) -> Any:
    """The workspace's batch endpoints."""
    return [as_dict(endpoint) for endpoint in session.ml.batch_endpoints.list()]


@verb(app, "delete")
def delete(session: Session, name: Name = None, file: File = None, yes: Yes = False) -> None:
    """Delete a batch endpoint and its deployments."""
    resolved = endpoint_name(name, file)
    if not yes:
        typer.confirm(f"Delete batch endpoint {resolved} and its deployments?", abort=True, err=True)
    session.ml.batch_endpoints.begin_delete(resolved).result()


@verb(app, "invoke")
def invoke(
    session: Session,
    name: Name = None,
    file: InputsFile = None,
    input: DataInput = None,  # noqa: A002
    input_type: InputType = None,
    output_path: OutputPath = None,
    deployment_name: DeploymentName = None,
    mini_batch_size: MiniBatchSize = None,
    instance_count: InstanceCount = None,
    job_name: JobName = None,
    experiment_name: ExperimentName = None,
    set_: Sets = None,
    wait: Wait = False,
) -> Any:
    """Start a batch job: one --input (a model deployment), the inputs: and outputs: of -f (a pipeline), or none
    (a pipeline without inputs). Local inputs are uploaded to the workspace's default datastore first."""
    from azure.ai.ml import Input, Output

    spec = Source(file).data()
    base = file.parent if file else Path.cwd()
    inputs = {key: job_input(value, base) for key, value in (spec.get("inputs") or {}).items()}
    outputs = {key: Output(**value) for key, value in (spec.get("outputs") or {}).items()}
    if output_path:
        outputs["score"] = Output(type="uri_folder", path=output_path)
    overrides: list[dict[str, Any]] = [{key: value} for key, value in parse_sets(set_ or [])]
    overrides += [{"mini_batch_size": mini_batch_size}] if mini_batch_size else []
    overrides += [{"compute.instance_count": instance_count}] if instance_count else []
    single = Input(type=input_type or kind_of(input), path=local_or_uri(input, Path.cwd())) if input else None
    job = session.ml.batch_endpoints.invoke(
        endpoint_name=required(name or spec.get("name"), "--name"),
        deployment_name=deployment_name,
        input=single,
        inputs=inputs or None,
        outputs=outputs or None,
        params_override=overrides,
        job_name=job_name,
        experiment_name=experiment_name,
    )
    if wait and follow(session.rest, job.name, errors()) != 0:
        raise typer.Exit(1)
    return as_dict(session.ml.jobs.get(job.name)) if wait else as_dict(job)


def job_input(value: Any, base: Path) -> Any:
    """An entry of the inputs file: ``{type, path}`` (a local path relative to the file), ``{type, default}`` for a
    literal, or a bare literal."""
    from azure.ai.ml import Input

    if not isinstance(value, dict):
        return Input(type=LITERALS.get(type(value), "string"), default=value)
    if value.get("path"):
        value = {**value, "path": local_or_uri(str(value["path"]), base)}
    return Input(**value)


def local_or_uri(value: str, base: Path) -> str:
    """An existing local path (relative to ``base``) as an absolute one, for the SDK to upload; anything else as is."""
    local = (base / value).expanduser()
    return str(local.resolve()) if "://" not in value and local.exists() else value


def kind_of(value: str | None) -> str:
    return "uri_file" if value and Path(value).expanduser().is_file() else "uri_folder"


@verb(app, "list-jobs")
def list_jobs(session: Session, name: Name = None, file: File = None) -> Any:
    """The endpoint's batch jobs."""
    return [as_dict(job) for job in session.ml.batch_endpoints.list_jobs(endpoint_name(name, file))]
