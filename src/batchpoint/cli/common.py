"""What every command group shares: the console, the server options and the client they make."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from batchpoint.cli.client import BatchpointClient, ServerError, Target

T = TypeVar("T")


@cache
def console() -> Console:
    """Made at first use, so that it reads the terminal settings (``COLUMNS``, ``NO_COLOR``...) of the process that
    prints, not those of one that imported the CLI and forked."""
    return Console()


@cache
def errors() -> Console:
    """Where failures go, so that ``$(batchpoint ... -o tsv)`` captures only the result."""
    return Console(stderr=True)


Url = Annotated[str | None, typer.Option(help="Server URL (default $BATCHPOINT_URL or https://127.0.0.1:8443).")]
Home = Annotated[Path | None, typer.Option(help="The server's data directory, to trust its certificate.")]


def connect(url: str | None, home: Path | None) -> BatchpointClient:
    target = Target(home=home)
    if url:
        target.url = url
    return BatchpointClient(target)


def guard(call: Callable[[], T]) -> T:
    """Run a client call; a server refusal is printed plainly and exits 2."""
    try:
        return call()
    except ServerError as error:
        console().print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
