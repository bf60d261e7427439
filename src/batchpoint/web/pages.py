"""The pages and actions of the studio web page; every one acts as the signed-in caller (``session.py``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import FileResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from markupsafe import escape
from starlette.concurrency import run_in_threadpool

from batchpoint.api.deps import base_url, checked_workspace_id, services_of
from batchpoint.api.routing import routes
from batchpoint.arm.context import Caller, RequestContext
from batchpoint.arm.errors import ArmError
from batchpoint.arm.resources import Resources
from batchpoint.jobs.invoke import Jobs
from batchpoint.jobs.studio_link import workspace_of_wsid
from batchpoint.ml.endpoints.resource_types import BATCH_ENDPOINTS
from batchpoint.store.entities import Resource
from batchpoint.web import charts, session
from batchpoint.web.create_job import CreateJobForm, data_assets, invoke_path, offered, submit
from batchpoint.web.job_details import job_details
from batchpoint.web.job_list import STATUSES, JobQuery, job_list, ran_seconds
from batchpoint.web.pipeline_graph import pipeline_graph
from batchpoint.web.views import JobView, Studio

LIVE_SECONDS = 1.0
"""How often a job page's live parts are refreshed."""
CHARTS_SHARE = 0.2
"""At most this share of a job page's time goes to redrawing its charts while the job runs: a job of many
mini-batches, whose ledger takes longer to read, has them redrawn less often than every LIVE_SECONDS."""
TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
TITLES = {400: "Bad request", 401: "Sign in", 403: "Not allowed", 404: "Not found", 409: "Conflict"}
PAGE_HEADERS = {
    # Scripts and styles from this server only (htmx adds one inline style), no framing, forms post here only.
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
LIVE_PARTS = {"progress": "_live.html", "charts": "_job_charts.html", "results": "_job_results.html"}
"""The parts of a job page that its events replace while it runs (each event named as the part it replaces)."""
RERUN_FAILED = "/rerunFailed"
"""The API's action on a job that runs its failed items again (``routes/jobs.py``)."""


def endpoint_url(endpoint_id: str) -> str:
    """The page of an endpoint: ``/workspaces/{subscription}/{group}/{workspace}/endpoints/{endpoint}``."""
    parts = endpoint_id.split("/")
    return f"/workspaces/{parts[2]}/{parts[4]}/{parts[8]}/endpoints/{parts[10]}"


TEMPLATES.env.globals["endpoint_url"] = endpoint_url
TEMPLATES.env.globals.update(charts.TEMPLATE_GLOBALS)
TEMPLATES.env.globals["ran_seconds"] = ran_seconds
TEMPLATES.env.globals["pipeline_graph"] = pipeline_graph


def render(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    token = request.cookies.get(session.COOKIE, "")
    context.setdefault("caller", None)
    context = {"csrf": session.csrf_token(token) if token else "", **context}
    return TEMPLATES.TemplateResponse(request, template, context, status_code=status, headers=PAGE_HEADERS)


class WebRoute(APIRoute):
    """Answers a page's refusals and errors with a page, where the API answers JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except ArmError as error:
                title = TITLES.get(error.status, "Error")
                return render(request, "message.html", error.status, title=title, message=error.message)

        return handle


router = routes(route_class=WebRoute, include_in_schema=False)


def _studio(request: Request) -> Studio:
    return services_of(request).provide(Studio)


@router.get("/")
def overview(request: Request) -> Response:
    caller = session.web_caller(request)
    workspaces = [
        replace(
            workspace,
            endpoints=[
                endpoint for endpoint in workspace.endpoints if session.permitted(request, caller, "GET", endpoint.id)
            ],
        )
        for workspace in _studio(request).workspaces(base_url(request))
        if session.permitted(request, caller, "GET", workspace.id)
    ]
    return render(request, "index.html", caller=caller, title="Batch endpoints", workspaces=workspaces)


@router.get("/signin")
def sign_in(request: Request, code: str = "") -> Response:
    return session.sign_in(request, code)


@router.post("/signin/links")
def new_sign_in_link(request: Request) -> Response:
    return session.new_link(request)


@router.post("/signout")
async def sign_out(request: Request) -> Response:
    await session.checked_form(request)
    return session.sign_out()


ENDPOINT_PAGE = "/workspaces/{subscription}/{group}/{workspace}/endpoints/{endpoint}"


def _endpoint_id(subscription: str, group: str, workspace: str, endpoint: str) -> str:
    return f"{checked_workspace_id(subscription, group, workspace)}/batchEndpoints/{endpoint}"


@router.get(ENDPOINT_PAGE)
def endpoint_page(request: Request, subscription: str, group: str, workspace: str, endpoint: str) -> Response:
    caller = session.web_caller(request)
    endpoint_id = _endpoint_id(subscription, group, workspace, endpoint)
    session.check_permitted(request, caller, "GET", endpoint_id)
    return _endpoint_page(request, caller, endpoint_id)


def _endpoint_page(
    request: Request,
    caller: Caller,
    endpoint_id: str,
    posted: CreateJobForm | None = None,
    error: ArmError | None = None,
) -> Response:
    """The endpoint with its deployments, its job list (as the query string asks) and, for those who may invoke
    it, the Create job form (holding what was posted, and the error it met)."""
    studio = _studio(request)
    view = studio.endpoint_by_id(endpoint_id, base_url(request))
    jobs = job_list(studio, services_of(request).provide(Jobs), view.id, JobQuery.of(request.query_params))
    create = None
    if session.permitted(request, caller, "POST", invoke_path(view.id)):
        create = offered(studio.uris, view.workspace_id, [each.name for each in view.deployments], view.default)
        create = replace(create, posted=posted or create.posted, error=error)
    return render(
        request,
        "endpoint.html",
        error.status if error else 200,
        caller=caller,
        title=f"Endpoint {view.name}",
        endpoint=view,
        jobs=jobs,
        statuses=STATUSES,
        create=create,
    )


@router.post(ENDPOINT_PAGE + "/jobs")
async def create_job(request: Request, subscription: str, group: str, workspace: str, endpoint: str) -> Response:
    """Start a job from the Create job form, as ``batch_endpoints.invoke`` does, and show it; a refused request
    shows the form again with the error."""
    fields = await session.checked_form(request)
    caller = session.web_caller(request)
    endpoint_id = _endpoint_id(subscription, group, workspace, endpoint)
    session.check_permitted(request, caller, "POST", invoke_path(endpoint_id))
    form = CreateJobForm.of(fields)
    try:
        job = await run_in_threadpool(_submit, request, caller, endpoint_id, form)
    except ArmError as error:
        if error.status in (401, 403):
            raise
        return await run_in_threadpool(_endpoint_page, request, caller, endpoint_id, form, error)
    return RedirectResponse(f"/jobs/{job.name}", status_code=303)


def _submit(request: Request, caller: Caller, endpoint_id: str, form: CreateJobForm) -> Resource:
    services = services_of(request)
    assets = data_assets(services.provide(Resources).store, endpoint_id.rsplit("/batchEndpoints/", 1)[0])
    return submit(services.provide(Jobs), _context(request, caller), endpoint_id, form, assets)


@router.post(ENDPOINT_PAGE + "/default")
async def set_default_deployment(
    request: Request, subscription: str, group: str, workspace: str, endpoint: str
) -> Response:
    """Make a deployment the endpoint's default, as ``batch_endpoints.begin_create_or_update`` does (a PUT)."""
    fields = await session.checked_form(request)
    caller = session.web_caller(request)
    endpoint_id = _endpoint_id(subscription, group, workspace, endpoint)
    session.check_permitted(request, caller, "PUT", endpoint_id)
    await run_in_threadpool(_set_default, request, caller, endpoint_id, fields.get("deployment", ""))
    return RedirectResponse(request.url.path.removesuffix("/default"), status_code=303)


def _set_default(request: Request, caller: Caller, endpoint_id: str, deployment: str) -> None:
    services = services_of(request)
    existing = services.provide(Resources).get(endpoint_id)
    if not services.provide(Studio).has_deployment(existing.id, deployment):
        raise ArmError(404, "DeploymentNotFound", f"The endpoint has no deployment '{deployment}'.")
    body = {
        key: value
        for key, value in existing.body.items()
        if key in ("location", "tags", "identity", "kind", "properties")
    }
    body["properties"] = {**body["properties"], "defaults": {"deploymentName": deployment}}
    services.resource_service(BATCH_ENDPOINTS).put(_context(request, caller), endpoint_id, body)


def _context(request: Request, caller: Caller) -> RequestContext:
    return RequestContext(base_url=base_url(request), caller=caller, api_version="")


def _readable_job(request: Request, name: str) -> tuple[Caller, Resource]:
    caller = session.web_caller(request)
    studio = _studio(request)
    # A job stored before its link had a query string has azure-ai-ml's "&tid=..." appended to its path; job
    # names never hold a "&".
    name = name.split("&", 1)[0]
    asked = workspace_of_wsid(request.query_params.get("wsid", ""))
    job = studio.find_job(name, iter([asked]) if asked else studio.workspace_ids())
    if job is None:
        raise ArmError(404, "JobNotFound", f"There is no job named '{name}'.")
    session.check_permitted(request, caller, "GET", job.id)
    return caller, job


@router.get("/runs/{name}")  # Azure's path of a job's page (jobs/studio_link.py)
@router.get("/jobs/{name}")
def job_page(request: Request, name: str) -> Response:
    caller, job = _readable_job(request, name)
    studio = _studio(request)
    view = studio.job(job)
    tail, offset = studio.tail(job, view.streamed_log)
    may_rerun = _may_rerun(request, caller, job)
    return render(
        request,
        "job.html",
        caller=caller,
        title=f"Job {view.name}",
        job=view,
        details=job_details(studio, job, view),
        log_tail=tail,
        log_offset=offset,
        may_rerun=may_rerun,
    )


def _may_rerun(request: Request, caller: Caller, job: Resource) -> bool:
    """Whether the caller's roles allow re-running the job's failures, decided as for the API's ``rerunFailed``."""
    return session.permitted(request, caller, "POST", job.id + RERUN_FAILED)


@router.get("/jobs/{name}/events")
def job_events(request: Request, name: str, offset: int = 0) -> Response:
    """Server-sent events while the job runs: ``progress`` (the live panel), ``charts`` (the throughput chart and the
    timeline), ``results`` (the failed files and outputs), ``log`` (new log lines), ``end``."""
    caller, job = _readable_job(request, name)
    events = _events(request, name, max(offset, 0), _may_rerun(request, caller, job))
    return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-store"})


async def _events(request: Request, name: str, offset: int, may_rerun: bool) -> AsyncIterator[str]:
    studio = _studio(request)
    csrf = session.csrf_token(request.cookies.get(session.COOKIE, ""))
    shown: dict[str, str] = {}
    charts_due = time.monotonic() + LIVE_SECONDS  # the page was drawn with them just now
    while True:
        job = await run_in_threadpool(lambda: studio.find_job(name, studio.workspace_ids()))
        if job is None:
            return
        view: JobView = await run_in_threadpool(studio.job, job)
        parts, details = {"progress": LIVE_PARTS["progress"]}, None
        if view.finished or time.monotonic() >= charts_due:
            began = time.monotonic()
            parts, details = LIVE_PARTS, await run_in_threadpool(job_details, studio, job, view)
            charts_due = time.monotonic() + max(LIVE_SECONDS, (time.monotonic() - began) / CHARTS_SHARE)
        for part, template in parts.items():
            html = TEMPLATES.get_template(template).render(job=view, details=details, csrf=csrf, may_rerun=may_rerun)
            if html != shown.get(part):
                yield _event(part, html)
                shown[part] = html
        if view.streamed_log:
            text, offset = await run_in_threadpool(studio.log_since, job, view.streamed_log, offset)
            if text:
                yield _event("log", str(escape(text)))
        if view.finished:
            yield _event("end", "")
            return
        await asyncio.sleep(LIVE_SECONDS)


def _event(name: str, data: str) -> str:
    lines = "".join(f"data: {line}\n" for line in data.split("\n"))
    return f"event: {name}\n{lines}\n"


@router.get("/jobs/{name}/logs/{log:path}")
def job_log(request: Request, name: str, log: str) -> Response:
    _, job = _readable_job(request, name)
    return PlainTextResponse(_studio(request).history.log_path(job, log).read_bytes())


@router.get("/jobs/{name}/outputs/{output}/{file:path}")
def job_output(request: Request, name: str, output: str, file: str) -> Response:
    _, job = _readable_job(request, name)
    studio = _studio(request)
    uri = ((job.body["properties"].get("outputs") or {}).get(output) or {}).get("uri", "")
    folder = studio.output_folder(job.parent_id, uri) if uri else None
    path = (folder / file).resolve() if folder is not None else None
    if folder is None or path is None or folder.resolve() not in path.parents or not path.is_file():
        raise ArmError(404, "OutputFileNotFound", f"The job's output '{output}' has no file '{file}'.")
    return FileResponse(path, filename=path.name)


@router.post("/jobs/{name}/cancel")
async def cancel_job(request: Request, name: str) -> Response:
    await session.checked_form(request)
    caller, job = await run_in_threadpool(_readable_job, request, name)
    session.check_permitted(request, caller, "POST", job.id + "/cancel")
    await run_in_threadpool(services_of(request).provide(Jobs).cancel, job.id)
    return RedirectResponse(f"/jobs/{name}", status_code=303)


@router.post("/jobs/{name}/rerun")
async def rerun_failed_items(request: Request, name: str) -> Response:
    """Run the ended job's failed (or never run) items again, as ``POST .../rerunFailed`` does, and show the new job."""
    await session.checked_form(request)
    caller, job = await run_in_threadpool(_readable_job, request, name)
    session.check_permitted(request, caller, "POST", job.id + RERUN_FAILED)
    rerun = await run_in_threadpool(services_of(request).provide(Jobs).rerun_failed, _context(request, caller), job.id)
    return RedirectResponse(f"/jobs/{rerun.name}", status_code=303)
