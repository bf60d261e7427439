"""The FastAPI application: routes, middleware, error handlers, and the services it runs on."""

from __future__ import annotations

import gc
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from prometheus_client import REGISTRY

from batchpoint import __version__
from batchpoint.access import managed_identity, openid
from batchpoint.access import routes as roles
from batchpoint.access.authentication import authorized_caller, token_validator
from batchpoint.access.issuer import ensure_issuer
from batchpoint.api.crud import crud_router
from batchpoint.api.errors import install_error_handlers
from batchpoint.api.fastpath import FastReads, ReadFastPath
from batchpoint.api.http_metrics import HttpMetrics, RouteRecorder
from batchpoint.api.limits import RequestLimits
from batchpoint.api.middleware import ApiVersionGate, ArmMiddleware
from batchpoint.api.paths import PathCanonicalizer
from batchpoint.app import cloud_metadata, metrics_endpoint
from batchpoint.app.metrics_collector import ServerCollector
from batchpoint.app.resource_types import SERVED
from batchpoint.app.wiring import Services
from batchpoint.arm.registry import Served
from batchpoint.config import Settings
from batchpoint.jobs import routes as jobs
from batchpoint.ml.assets import routes as assets
from batchpoint.ml.computes import routes as computes
from batchpoint.ml.datastores import routes as datastores
from batchpoint.ml.endpoints import routes as batch
from batchpoint.ml.operations import routes as operations
from batchpoint.ml.workspaces import routes as workspaces
from batchpoint.storage import routes as blob
from batchpoint.web import pages
from batchpoint.web.session import startup_link

STATIC = Path(pages.__file__).parent / "static"
for _served in SERVED:  # built at import, like the modules' routers: a server forked after the import (the tests'
    crud_router(_served.resource_type)  # warm process) starts without building them again


def create_app(
    settings: Settings, stopping: threading.Event | None = None, served: tuple[Served, ...] = SERVED
) -> HttpMetrics:
    """The server's ASGI application: the HTTP metrics, ARM path and header handling, the api-version gate, then
    the request body limits, then the read fast path, then FastAPI.

    These layers sit outside FastAPI, so the hot reads skip its middleware stack too; the limits answer inside
    the ARM layer, so that their refusals carry request ids like every other answer. `stopping` is set when the
    server begins to stop: background work stops at once, while open requests finish. `served`: the resource
    types the registry serves (``app/resource_types.py``).
    """
    api = create_api(settings, stopping, served)
    types = [each.resource_type for each in served]
    fast_path = ReadFastPath(RouteRecorder(api), api, FastReads(types))
    limits = RequestLimits(fast_path, settings.max_body_bytes)
    gate = ApiVersionGate(limits, settings.strict_api_versions)
    return HttpMetrics(ArmMiddleware(gate, PathCanonicalizer(types)), fast_path.reads.route_template)


def create_api(
    settings: Settings, stopping: threading.Event | None = None, served: tuple[Served, ...] = SERVED
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = Services.open(settings, stopping, served)
        services.start()
        app.state.services = services
        collector = ServerCollector(services.store, services.job_runner.activity)
        REGISTRY.register(collector)
        print(f"open the studio web page (a one-time sign-in link): {startup_link(app, settings.base_url)}", flush=True)
        gc.freeze()  # what start-up built lives until exit: later collections (and the one at exit, ~1 s) skip it
        try:
            yield
        finally:
            REGISTRY.unregister(collector)
            services.close()

    app = FastAPI(
        title="batchpoint",
        version=__version__,
        description=(
            "Azure Machine Learning batch endpoints (Microsoft.MachineLearningServices 2025-12-01), self-hosted."
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.issuer = ensure_issuer(settings.home)
    app.state.tokens = token_validator(settings, app.state.issuer)
    app.state.authenticator = authorized_caller
    # The modules' routes themselves, built once at import, rather than include_router(): FastAPI builds every
    # included route again for each app, at the first request that looks through its router, which made a new
    # server's first request wait up to 0.26 s. What include_router() would add from the app (its
    # dependency_overrides, app-wide body limits) these routes do not see: the app sets none.
    for each in served:
        app.router.routes.extend(crud_router(each.resource_type).routes)
    for module in (
        batch,
        computes,
        workspaces,
        datastores,
        assets,
        jobs,
        operations,
        blob,
        openid,
        managed_identity,
        cloud_metadata,
        roles,
        metrics_endpoint,
        pages,
    ):
        app.router.routes.extend(module.router.routes)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    install_error_handlers(app)
    return app
