"""``batchpoint token``: an access token from the embedded issuer, for the SDKs, curl or ``BATCHPOINT_TOKEN``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from batchpoint.access.issuer import DEFAULT_AUDIENCE, DEFAULT_MINUTES, audience_of, ensure_issuer
from batchpoint.config import default_home


def token(
    user: Annotated[str | None, typer.Option(help="The caller (upn) systemData names (default: your login).")] = None,
    role: Annotated[list[str] | None, typer.Option(help="An app role for the 'roles' claim (repeatable).")] = None,
    scope: Annotated[list[str] | None, typer.Option(help="A delegated scope for the 'scp' claim (repeatable).")] = None,
    audience: Annotated[
        list[str] | None,
        typer.Option(
            help=f"The audience, or a scope as the SDKs ask for one ('https://ml.azure.com/.default': the "
            f"token's audience is what precedes '/.default') (repeatable; default {DEFAULT_AUDIENCE}, which "
            "every route takes)."
        ),
    ] = None,
    minutes: Annotated[float, typer.Option(help="How long the token is valid.", min=0)] = DEFAULT_MINUTES,
    home: Annotated[
        Path | None, typer.Option(help="The server's data directory (default $BATCHPOINT_HOME or ~/.batchpoint).")
    ] = None,
) -> None:
    """Print an access token signed by the server's embedded issuer (made in the data directory if need be)."""
    audiences = [audience_of(value) for value in audience or [DEFAULT_AUDIENCE]]
    issuer = ensure_issuer(home or default_home())
    print(issuer.mint(audiences[0] if len(audiences) == 1 else audiences, user, role or (), scope or (), minutes))
