"""Pydantic models of the ARM wire format, shared by the API (validation, OpenAPI) and the services."""
