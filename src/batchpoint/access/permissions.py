"""The ARM action a request needs and the scope it needs it over, read off its method and path.

One derivation serves the routes and the read fast path, so both decide alike. ARM paths give the action
(``{namespace}/{types}/read|write|delete``, or ``.../{name}/action`` for a POST to a named action) and the
scope (the path itself). Data-plane paths map to job actions: invoking is ``batchEndpoints/jobs/write`` over the
endpoint, run history and job lists are ``jobs/read``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from batchpoint.arm.ids import WORKSPACE_TYPE, provider_hops

INVOKE_PREFIX = "/inference"
INVOKE_ACTION = f"{WORKSPACE_TYPE}/batchEndpoints/jobs/write"
JOBS_READ = f"{WORKSPACE_TYPE}/jobs/read"
READ_PREFIXES = ("/history/v1.0/", "/mferp/managementfrontend/", "/data/v1.0/")
OPERATIONS = ("/mfeoperationsstatus/", "/mfeoperationresults/")
VERBS = {"GET": "read", "HEAD": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete"}
REQUIRED_CACHE = 256
"""The (method, path) pairs whose permission is kept: few, since the path is the client's (up to h11's 16 KiB)."""


@dataclass(frozen=True)
class Permission:
    action: str
    scope: str


@functools.lru_cache(maxsize=REQUIRED_CACHE)
def required(method: str, path: str) -> Permission | None:
    """What ``method`` on ``path`` needs; ``None`` for operation status paths, which check their resource. Cached:
    clients poll the same few paths, and deriving it took 3.7 µs of a read's 70."""
    if path.startswith(INVOKE_PREFIX + "/"):
        return Permission(INVOKE_ACTION, path.removeprefix(INVOKE_PREFIX).removesuffix("/jobs"))
    for prefix in READ_PREFIXES:
        if path.startswith(prefix):
            return Permission(JOBS_READ, path[len(prefix) - 1 :])
    if any(marker in path.lower() for marker in OPERATIONS):
        return None
    return Permission(arm_action(method, path), path.rstrip("/") or "/")


def arm_action(method: str, resource_path: str) -> str:
    """``Microsoft.Resources/subscriptions/resourceGroups/read``,
    ``Microsoft.MachineLearningServices/workspaces/batchEndpoints/listkeys/action``, ..."""
    segments = resource_path.strip("/").split("/")
    hop = max(provider_hops(segments), default=None)
    if hop is None:
        namespace, types = "Microsoft.Resources", segments[0::2]
    else:
        namespace, types = segments[hop + 1], segments[hop + 2 :: 2]
    if method == "POST":
        return "/".join([namespace, *types[:-1], types[-1].lower(), "action"])
    return "/".join([namespace, *types, VERBS.get(method, "write")])
