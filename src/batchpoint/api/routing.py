"""Route modules, one per resource family."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response


def routes(**options: Any) -> APIRouter:
    """A route module's router. Its routes build their responses: a status without a declared model has no body
    (ARM's 200/202 on PATCH and DELETE), which the OpenAPI document then says too."""
    return APIRouter(default_response_class=Response, **options)
