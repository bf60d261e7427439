"""Signing in to the web page, as fits a local tool: a one-time link sets a session cookie holding an access
token, and every page and action then acts as that token's caller, with its role assignments, as the API does.

The cookie is HttpOnly (scripts never read it), Secure on HTTPS, and SameSite=Lax (sent when a link from the
terminal is opened, never with a cross-site form post). Actions are POST forms that carry a CSRF token derived
from the session (an HMAC of it), and a POST whose ``Origin`` is another site is refused. The token never appears
in a URL or in a page.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from batchpoint.access.authentication import authenticate, caller_of_token, check_permission
from batchpoint.access.permissions import required
from batchpoint.access.signins import SignIns
from batchpoint.api.deps import base_url, services_of
from batchpoint.arm.context import Caller
from batchpoint.arm.errors import ArmError

COOKIE = "batchpoint_session"
SESSION_MINUTES = 12 * 60
"""How long the session of the link ``batchpoint serve`` prints lasts."""
CSRF_FIELD = "csrf"


def sign_in_required() -> ArmError:
    return ArmError(
        401,
        "SignInRequired",
        "Sign in with the link 'batchpoint serve' printed, or make a link for a token with "
        "POST /signin/links (see docs/web.md).",
    )


def session_token(request: Request) -> str:
    token = request.cookies.get(COOKIE, "")
    if not token:
        raise sign_in_required()
    return token


def web_caller(request: Request) -> Caller:
    """The signed-in caller; a missing, expired or rejected session asks to sign in again."""
    try:
        return caller_of_token(request, session_token(request), data_plane=True)
    except ArmError as error:
        if error.status == 401:
            raise sign_in_required() from None
        raise


def check_permitted(request: Request, caller: Caller, method: str, path: str) -> None:
    """403 unless the caller's role assignments allow ``method`` on ``path``, decided as for the API."""
    permission = required(method, path)
    if permission is not None:
        check_permission(request, caller, permission)


def permitted(request: Request, caller: Caller, method: str, path: str) -> bool:
    try:
        check_permitted(request, caller, method, path)
    except ArmError:
        return False
    return True


def csrf_token(session: str) -> str:
    return hmac.new(session.encode(), b"batchpoint web action", hashlib.sha256).hexdigest()


async def checked_form(request: Request) -> dict[str, str]:
    """The fields of an action's form, once its CSRF token and origin are checked (403 otherwise)."""
    session = session_token(request)
    origin = request.headers.get("origin")
    if origin is not None and origin.rstrip("/") != base_url(request):
        raise ArmError(403, "CrossSiteRequest", "The action came from another site.")
    fields = {name: values[0] for name, values in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
    if not hmac.compare_digest(fields.get(CSRF_FIELD, ""), csrf_token(session)):
        raise ArmError(403, "InvalidCsrfToken", "The form is out of date: reload the page and try again.")
    return fields


def set_session(response: Response, request: Request, token: str, claims_expiry: float) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=max(int(claims_expiry - time.time()), 0),
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="lax",
        path="/",
    )


def sign_in(request: Request, code: str) -> Response:
    """``GET /signin?code=``: redeem a one-time code, set the session, and go to the page without the code."""
    token = services_of(request).provide(SignIns).redeem(code)
    if token is None:
        raise ArmError(
            400, "SignInLinkUsed", "This sign-in link was used already or has expired. " + sign_in_required().message
        )
    claims = request.app.state.tokens.claims(token, True)
    response = RedirectResponse("/", status_code=303)
    set_session(response, request, token, float(claims["exp"]))
    return response


def new_link(request: Request) -> JSONResponse:
    """``POST /signin/links`` with a bearer token: a one-time link that signs the page in as that caller."""
    authenticate(request, data_plane=True)
    code = services_of(request).provide(SignIns).create(request.headers["authorization"].split(" ", 1)[1].strip())
    return JSONResponse({"url": f"{base_url(request)}/signin?code={code}"})


def startup_link(app: Any, base: str) -> str:
    """The link ``batchpoint serve`` prints: a session of the local user (the default user of
    ``batchpoint token``)."""
    token = app.state.issuer.mint(minutes=SESSION_MINUTES)
    return f"{base}/signin?code={app.state.services.provide(SignIns).create(token)}"


def sign_out() -> Response:
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
