"""The ``batchpoint`` command: one module per command group."""

from __future__ import annotations

import typer

from batchpoint.cli.az_ml import batch_deployment, batch_endpoint, component, compute, data, environment, job, model
from batchpoint.cli.native.env import env
from batchpoint.cli.native.jobs import invoke, jobs_app
from batchpoint.cli.native.roles import role_app
from batchpoint.cli.native.serve import serve
from batchpoint.cli.native.token import token

app = typer.Typer(help="Self-hosted Azure Machine Learning batch endpoints.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """batchpoint: Azure ML batch endpoints, locally."""


app.command()(serve)
app.command()(invoke)
app.add_typer(jobs_app, name="jobs")
app.add_typer(role_app, name="role")
app.command()(token)
app.command()(env)
app.add_typer(batch_endpoint.app, name="batch-endpoint")
app.add_typer(batch_deployment.app, name="batch-deployment")
app.add_typer(model.app, name="model")
app.add_typer(environment.app, name="environment")
app.add_typer(data.app, name="data")
app.add_typer(component.app, name="component")
app.add_typer(job.app, name="job")
app.add_typer(compute.app, name="compute")
