"""``batchpoint invoke`` and ``batchpoint jobs ...``: start and follow batch jobs from a terminal."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from batchpoint.cli.client import BatchpointClient
from batchpoint.cli.common import Home, Url, connect, console, guard
from batchpoint.runtime.status import TERMINAL, JobStatus

jobs_app = typer.Typer(help="List, show, follow and cancel batch jobs.", no_args_is_help=True)

POLL_SECONDS = 0.5


def input_reference(value: str) -> tuple[str, str]:
    """A local path becomes an absolute path (the server must allow its folder); URIs pass unchanged."""
    if "://" in value or value.startswith(("azureml:", "/subscriptions/")):
        return value, "UriFolder"
    path = Path(value).expanduser().resolve()
    return str(path), "UriFile" if path.is_file() else "UriFolder"


def invoke(
    endpoint: Annotated[str, typer.Argument(help="The batch endpoint to invoke.")],
    input: Annotated[str, typer.Option("--input", help="A local file or folder, an azureml:// URI or a data asset.")],  # noqa: A002
    deployment: Annotated[str | None, typer.Option(help="Run on this deployment instead of the default.")] = None,
    mini_batch_size: Annotated[int | None, typer.Option(help="Files per mini-batch for this job.")] = None,
    wait: Annotated[bool, typer.Option(help="Follow the job with a progress bar until it ends.")] = False,
    url: Url = None,
    home: Home = None,
) -> None:
    """Start a batch job on ENDPOINT."""
    client = connect(url, home)
    uri, kind = input_reference(input)
    overrides = {"miniBatchSize": mini_batch_size} if mini_batch_size else {}
    job = guard(lambda: client.invoke(endpoint, uri, kind, deployment, overrides))
    console().print(f"job [bold]{job['name']}[/bold] {job['properties']['status']}")
    if wait:
        raise typer.Exit(follow(client, job["name"]))


def follow(client: BatchpointClient, name: str, out: Console | None = None) -> int:
    """A live progress bar on ``out`` (default: the console) until the job ends; then the output or the failure.
    Returns the exit code."""
    out = out or console()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeRemainingColumn(),
    )
    started = time.monotonic()
    with Progress(*columns, console=out) as progress:
        bar = progress.add_task("mini-batches", total=None, detail="")
        while True:
            job = guard(lambda: client.job(name))["properties"]
            progress.update(bar, **_bar_state(job.get("progress"), time.monotonic() - started))
            if job["status"] in TERMINAL:
                break
            time.sleep(POLL_SECONDS)
    return report(job, out)


def _bar_state(progress: dict[str, Any] | None, elapsed: float) -> dict[str, Any]:
    """Pipeline jobs and their steps have no mini-batches: their bar only shows that they run."""
    if not progress:
        return {"total": None, "completed": 0, "detail": ""}
    batches, items = progress["miniBatches"], progress["items"]
    done = batches["succeeded"] + batches["failed"]
    rate = items["succeeded"] / elapsed if elapsed > 0 else 0.0
    detail = f"failed {batches['failed']}  items/s {rate:,.0f}"
    return {"total": batches["total"] or None, "completed": done, "detail": detail}


def report(job: dict[str, Any], out: Console) -> int:
    status = job["status"]
    if status == JobStatus.COMPLETED:
        out.print(f"[green]Completed[/green]: {job.get('statusMessage', '')}")
        for output, where in (job.get("outputs") or {}).items():
            out.print(f"output {output}: {where.get('uri', '')}")
        return 0
    out.print(f"[red]{status}[/red]")
    out.print((job.get("error") or {}).get("message") or job.get("statusMessage", ""))
    return 1


@jobs_app.command("list")
def list_jobs(
    endpoint: Annotated[str | None, typer.Option(help="Only this endpoint's jobs.")] = None,
    url: Url = None,
    home: Home = None,
) -> None:
    """Jobs of the workspace, oldest first."""
    jobs = guard(lambda: connect(url, home).jobs())
    table = Table("endpoint", "deployment", "status", "mini-batches", "failed items")
    table.add_column("name", no_wrap=True, min_width=max((len(job["name"]) for job in jobs), default=4))
    for job in jobs:
        properties = job["properties"]
        tags = properties.get("properties", {})
        if endpoint and tags.get("azureml.endpointname", "").lower() != endpoint.lower():
            continue
        table.add_row(
            tags.get("azureml.endpointname", ""),
            tags.get("azureml.deploymentname", ""),
            properties["status"],
            *_progress_cells(properties.get("progress")),
            job["name"],
        )
    console().print(table)


def _progress_cells(progress: dict[str, Any] | None) -> tuple[str, str]:
    """Mini-batches done/total and failed items; '-' for jobs without mini-batches (pipeline steps)."""
    if not progress:
        return "-", "-"
    batches = progress["miniBatches"]
    return f"{batches['succeeded'] + batches['failed']}/{batches['total']}", str(progress["items"]["failed"])


@jobs_app.command()
def show(name: str, url: Url = None, home: Home = None) -> None:
    """The job resource, as the API returns it."""
    console().print_json(json.dumps(guard(lambda: connect(url, home).job(name))))


@jobs_app.command()
def logs(
    name: str,
    follow_log: Annotated[
        bool, typer.Option("--follow", "-f", help="Print the job's log as it runs, until it ends.")
    ] = False,
    url: Url = None,
    home: Home = None,
) -> None:
    """Every log file of the job: the result first, then progress, worker output and errors."""
    client = connect(url, home)
    if follow_log:
        status = guard(
            lambda: client.follow_log(name, lambda text: console().print(text, end="", markup=False, highlight=False))
        )
        raise typer.Exit(0 if status == JobStatus.COMPLETED else 1)
    for log, text in guard(lambda: client.logs(name)).items():
        console().rule(log)
        console().print(text, markup=False, highlight=False)


@jobs_app.command()
def cancel(name: str, url: Url = None, home: Home = None) -> None:
    """Ask the job to stop; it reads Canceled once its workers have stopped."""
    guard(lambda: connect(url, home).cancel(name))
    console().print(f"cancel requested for {name}")


@jobs_app.command()
def rerun(
    name: str,
    failed: Annotated[bool, typer.Option("--failed", help="Run only the items that failed or never ran.")] = False,
    wait: Annotated[bool, typer.Option(help="Follow the new job with a progress bar until it ends.")] = False,
    url: Url = None,
    home: Home = None,
) -> None:
    """Start a new job of the same deployment over the items of job NAME that failed (or never ran)."""
    if not failed:
        console().print("[red]Only '--failed' reruns exist: say 'batchpoint jobs rerun NAME --failed'.[/red]")
        raise typer.Exit(2)
    client = connect(url, home)
    job = guard(lambda: client.rerun_failed(name))
    console().print(f"job [bold]{job['name']}[/bold] {job['properties']['status']} (rerun of the failures of {name})")
    if wait:
        raise typer.Exit(follow(client, job["name"]))


@jobs_app.command("wait")
def wait_for(name: str, url: Url = None, home: Home = None) -> None:
    """Follow a job with a progress bar until it ends."""
    raise typer.Exit(follow(connect(url, home), name))
