"""``batchpoint job create|show|stream|download|list|cancel``, as ``az ml job``: any job of the workspace, batch
jobs and their pipeline steps included."""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Annotated, Any

import typer

from batchpoint.cli.az_ml.sdk import Session, Sets, YamlFile, as_dict, group, required, verb
from batchpoint.cli.az_ml.yaml_files import Source, load
from batchpoint.cli.common import errors

app = group("Jobs, as az ml job.")

JobName = Annotated[str | None, typer.Option("--name", "-n", help="The job.")]
Web = Annotated[bool, typer.Option("--web", help="Also open the job's page in a browser.")]
Stream = Annotated[bool, typer.Option("--stream", help="Follow the job's logs until it ends.")]


def opened(job: Any, web: bool) -> Any:
    """The job as JSON; with ``--web`` its studio page is opened too (or named on stderr where no browser is)."""
    if web:
        url = job.studio_url or ""
        if not webbrowser.open(url):
            errors().print(f"the job's page: {url}", markup=False, soft_wrap=True)
    return as_dict(job)


@verb(app, "create")
def create(
    session: Session,
    file: YamlFile,
    name: JobName = None,
    set_: Sets = None,
    experiment_name: Annotated[str | None, typer.Option("--experiment-name", "-e", help="The experiment.")] = None,
    stream: Stream = False,
    web: Web = False,
) -> Any:
    """Submit a job (a pipeline job) from a YAML file; local inputs and code are uploaded."""
    from azure.ai.ml import load_job

    job = load(
        load_job,
        Source(file, set_ or [], {"name": ("--name", name), "experiment_name": ("--experiment-name", experiment_name)}),
    )
    created = session.ml.jobs.create_or_update(job)
    if stream:
        session.ml.jobs.stream(created.name)
        created = session.ml.jobs.get(created.name)
    return opened(created, web)


@verb(app, "show")
def show(session: Session, name: JobName = None, web: Web = False) -> Any:
    """Show a job (its status, inputs and outputs)."""
    return opened(session.ml.jobs.get(required(name, "--name")), web)


@verb(app, "stream")
def stream(session: Session, name: JobName = None) -> None:
    """Print the job's logs as it runs, until it ends."""
    session.ml.jobs.stream(required(name, "--name"))


@verb(app, "download")
def download(
    session: Session,
    name: JobName = None,
    output_name: Annotated[
        str | None, typer.Option("--output-name", help="One named output (default: the default one).")
    ] = None,
    download_path: Annotated[Path, typer.Option("--download-path", "-p", help="The folder to download into.")] = Path(
        "."
    ),
    all_: Annotated[bool, typer.Option("--all", help="Every output and the logs.")] = False,
) -> None:
    """Download a job's outputs (into DOWNLOAD_PATH/named-outputs/OUTPUT)."""
    session.ml.jobs.download(
        required(name, "--name"), download_path=str(download_path), output_name=output_name, all=all_
    )


@verb(app, "list")
def list_(
    session: Session,
    parent_job_name: Annotated[
        str | None, typer.Option("--parent-job-name", "-p", help="Only the steps of this pipeline job.")
    ] = None,
) -> Any:
    """The workspace's jobs, or a pipeline job's steps."""
    return [as_dict(job) for job in session.ml.jobs.list(parent_job_name=parent_job_name)]


@verb(app, "cancel")
def cancel(session: Session, name: JobName = None) -> None:
    """Ask a job to stop."""
    session.ml.jobs.begin_cancel(required(name, "--name")).result()
