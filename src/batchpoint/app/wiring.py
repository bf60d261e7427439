"""Wires the store, the operation runner and the resource services together for one server process."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar, cast, get_type_hints

from batchpoint.access.issuer import ensure_issuer
from batchpoint.access.rbac import OWNER, RoleAssignments
from batchpoint.access.signins import SignIns
from batchpoint.app.resource_types import SERVED
from batchpoint.app.sandboxing import owners, sandboxing
from batchpoint.app.tls import tls_files
from batchpoint.arm.context import Caller, RequestContext
from batchpoint.arm.ids import ALL_SUBSCRIPTIONS, WORKSPACE_TYPE, resource_group_id, workspace_id
from batchpoint.arm.mutability import CreateOnlyFields
from batchpoint.arm.operations import OperationRunner
from batchpoint.arm.registry import ResourceType, Served, UpsertService
from batchpoint.arm.resources import Resources
from batchpoint.arm.tracked import ResourceKind, TrackedResources
from batchpoint.cluster.ownership import Ownership
from batchpoint.config import (
    DEFAULT_LOCATION,
    DEFAULT_RESOURCE_GROUP,
    DEFAULT_SUBSCRIPTION,
    DEFAULT_WORKSPACE,
    Settings,
)
from batchpoint.jobs.history import History
from batchpoint.jobs.identity import WorkerIdentity
from batchpoint.jobs.invoke import JobPlanner, Jobs
from batchpoint.jobs.pipelines.planner import PipelinePlanner
from batchpoint.jobs.pipelines.submitted import SubmittedJobs
from batchpoint.jobs.runner import JobRunner
from batchpoint.ml.computes.rules import ensure_builtin_compute
from batchpoint.ml.datastores.service import Datastores
from batchpoint.ml.datastores.uris import UriResolver
from batchpoint.ml.endpoints.environments import DeploymentEnvironments
from batchpoint.ml.workspaces.service import ResourceGroups, Workspaces
from batchpoint.runtime.environments.cache import EnvironmentCache
from batchpoint.runtime.environments.installers import choose_installer
from batchpoint.runtime.environments.interpreters import PythonFinder
from batchpoint.runtime.gpus import GpuPool, discover
from batchpoint.storage.accounts import StorageAccounts
from batchpoint.store import AlreadyExists, Store, VersionConflict, open_store
from batchpoint.web.views import Studio

T = TypeVar("T")
ROOT_SCOPE = "/"
WORKSPACE_SCAN_LIMIT = 100_000
SYSTEM = RequestContext(base_url="", caller=Caller(name="batchpoint", type="Application"), api_version="")


@dataclass
class Services:
    store: Store
    runner: OperationRunner
    resources: Resources
    resource_groups: ResourceGroups
    workspaces: Workspaces
    datastores: Datastores
    storage_accounts: StorageAccounts
    uris: UriResolver
    jobs: Jobs
    submitted_jobs: SubmittedJobs
    job_runner: JobRunner
    ownership: Ownership
    history: History
    environments: DeploymentEnvironments
    roles: RoleAssignments
    studio: Studio
    signins: SignIns
    local_user: str
    """The object id ``batchpoint token`` puts in tokens by default: made Owner of the default subscription."""
    owners: tuple[str, ...] = ()
    """The object ids made Owner over the root scope at each start (``serve --owner``)."""
    writers: dict[ResourceType, TrackedResources | UpsertService] = field(default_factory=dict)
    """The service writing each resource type the registry serves."""

    by_type: dict[type[Any], Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        hints = get_type_hints(type(self))
        for each in fields(self):
            hint = hints[each.name]
            if isinstance(hint, type) and hint.__module__.startswith("batchpoint."):
                self.by_type[hint] = getattr(self, each.name)

    def provide(self, kind: type[T]) -> T:
        """This process's service of type ``kind`` (what a route's ``provided(kind)`` dependency returns)."""
        return cast(T, self.by_type[kind])

    def resource_service(self, resource_type: ResourceType) -> TrackedResources | UpsertService:
        return self.writers[resource_type]

    def serve(self, served: Iterable[Served]) -> Services:
        """Wire the writes of each served resource type: a long-running type's rules go into the tracked flow, a
        synchronous type's are its service. Returns this container."""
        for each in served:
            if each.rules is None:
                continue
            rules, resource_type = each.rules(self.provide), each.resource_type
            self.writers[resource_type] = (
                TrackedResources(
                    self.resources,
                    self.runner,
                    resource_type.type,
                    cast(ResourceKind, rules),
                    CreateOnlyFields.of_resource(resource_type.wire.model),
                )
                if resource_type.long_running
                else cast(UpsertService, rules)
            )
        return self

    @classmethod
    def open(
        cls, settings: Settings, stopping: threading.Event | None = None, served: Iterable[Served] = SERVED
    ) -> Services:
        """`stopping` is set when the server begins to stop (SIGTERM, Ctrl-C): running work stops at once."""
        settings.make_home()
        stopping = stopping or threading.Event()
        store = open_store(settings.resolved_database_url)
        ownership = Ownership(store.leases(), settings.home, settings.lease_seconds)
        runner = OperationRunner(store, ownership, stopping, delay_seconds=settings.provisioning_delay_seconds)
        resources = Resources(store)
        storage_accounts = StorageAccounts(store, settings.storage_dir)
        datastores = Datastores(resources, storage_accounts)
        uris = UriResolver(datastores, settings.allowed_local_paths)
        environment_cache = EnvironmentCache(
            settings.environments_dir, settings.package_index, choose_installer(settings.installer), stopping=stopping
        )
        environments = DeploymentEnvironments(
            store, uris, environment_cache, PythonFinder(settings.pythons, settings.nearest_python)
        )
        issuer = ensure_issuer(settings.home)
        bundle = tls_files(settings.home).bundle if settings.tls else None
        workers = sandboxing(settings)
        job_runner = JobRunner(
            store,
            environment_cache,
            settings.jobs_dir,
            ownership,
            stopping,
            ray_address=settings.ray_address,
            identity=WorkerIdentity(settings.local_url, issuer, bundle),
            ray_shared_paths=settings.ray_shared_paths,
            sandbox=workers.sandbox,
            gpus=GpuPool(discover() if settings.gpus is None else settings.gpus),
        )
        pipelines = PipelinePlanner(store, uris, environments, settings.jobs_dir)
        jobs = Jobs(resources, JobPlanner(resources, uris, environments, settings.jobs_dir), pipelines, job_runner)
        history = History(resources, datastores, settings.jobs_dir)
        return cls(
            store=store,
            runner=runner,
            resources=resources,
            resource_groups=ResourceGroups(resources),
            workspaces=Workspaces(resources, datastores),
            datastores=datastores,
            storage_accounts=storage_accounts,
            uris=uris,
            jobs=jobs,
            submitted_jobs=SubmittedJobs(resources, pipelines, job_runner),
            job_runner=job_runner,
            ownership=ownership,
            history=history,
            environments=environments,
            roles=RoleAssignments(store, None if workers.contained else owners(settings)),
            studio=Studio(resources, jobs, history, uris),
            signins=SignIns(store),
            local_user=issuer.object_id(),
            owners=tuple(issuer.principal_id(owner) for owner in settings.owners),
        ).serve(served)

    def start(self) -> None:
        for ensure in (self.ensure_defaults, self.ensure_owners):
            again_after_races(ensure)
        self.roles.start_refreshing()
        self.environments.cache.sweep()
        self.ownership.start()

    def close(self) -> None:
        """Stop the work (it stays resumable), then give back its leases for another replica to take over."""
        self.roles.stop_refreshing()
        self.job_runner.shutdown()
        self.runner.shutdown()
        self.ownership.stop()
        self.store.close()

    def ensure_defaults(self) -> None:
        """The default subscription's resource group ``local`` and workspace ``default``, on first start."""
        group = resource_group_id(DEFAULT_SUBSCRIPTION, DEFAULT_RESOURCE_GROUP)
        if self.store.get(group) is None:
            self.resource_groups.put(SYSTEM, group, {"location": DEFAULT_LOCATION})
        workspace = workspace_id(DEFAULT_SUBSCRIPTION, DEFAULT_RESOURCE_GROUP, DEFAULT_WORKSPACE)
        existing = self.store.get(workspace)
        if existing is None:
            self.workspaces.put(SYSTEM, workspace, {"location": DEFAULT_LOCATION})
        else:
            self.datastores.ensure_workspace_storage(SYSTEM, existing)
        for each in self.store.list_below(ALL_SUBSCRIPTIONS, WORKSPACE_TYPE, None, WORKSPACE_SCAN_LIMIT):
            ensure_builtin_compute(self.store, SYSTEM, each)  # workspaces made before computes existed

    def ensure_owners(self) -> None:
        """The local user owns the default subscription from the first start (while no assignment exists at all,
        so removing every assignment and restarting recovers access); ``serve --owner`` users own every scope."""
        if not self.roles.any():
            self.roles.grant(f"/subscriptions/{DEFAULT_SUBSCRIPTION}", self.local_user, OWNER)
        for owner in self.owners:
            self.roles.grant(ROOT_SCOPE, owner, OWNER)


STARTUP_TRIES = 10
"""A step creates up to six things per workspace (group, workspace, storage account, two datastores, built-in
compute); each lost race means another replica created one of them, so a few replicas starting together on a new
database need a few tries, never many (three were too few for three replicas started within a millisecond)."""


def again_after_races(ensure: Callable[[], None]) -> None:
    """Run a start-up step that creates what is missing; replicas starting at the same moment may each create some
    of it first (the loser's insert fails), so the step runs again and finds it made."""
    for _ in range(STARTUP_TRIES - 1):
        try:
            ensure()
            return
        except (AlreadyExists, VersionConflict):
            continue
    ensure()
