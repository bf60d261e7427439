"""``api-version``: required everywhere; the provider's routes take the published versions clients send.

A well-formed Microsoft.MachineLearningServices version dated after the newest batchpoint knows is served as that
newest one (``ApiVersionGate`` says so in a response header), so that a new azure-ai-ml keeps working the day it
moves on; ``serve --strict-api-versions`` refuses it instead, as Azure refuses versions a provider does not have.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from batchpoint.arm.errors import ArmError

VERSION_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")

ML_API_VERSIONS = (
    "2021-10-01",
    "2022-02-01-preview",
    "2022-05-01",
    "2022-06-01-preview",
    "2022-10-01",
    "2022-10-01-preview",
    "2022-12-01-preview",
    "2023-02-01-preview",
    "2023-04-01",
    "2023-04-01-preview",
    "2023-06-01-preview",
    "2023-08-01-preview",
    "2023-10-01",
    "2024-01-01-preview",
    "2024-04-01",
    "2024-04-01-preview",
    "2024-07-01-preview",
    "2024-10-01",
    "2024-10-01-preview",
    "2025-01-01-preview",
    "2025-04-01",
    "2025-04-01-preview",
    "2025-06-01",
    "2025-07-01-preview",
    "2025-09-01",
    "2025-10-01-preview",
    "2025-12-01",
)
_ML_LOWER = {version.lower() for version in ML_API_VERSIONS}
NEWEST_ML_VERSION = ML_API_VERSIONS[-1]

MISSING = ArmError(
    400,
    "MissingApiVersionParameter",
    "The api-version query parameter (?api-version=) is required for all requests.",
)


def _invalid(version: str, supported: str) -> ArmError:
    return ArmError(
        400,
        "InvalidApiVersionParameter",
        f"The api-version '{version}' is invalid. The supported versions are '{supported}'.",
    )


def is_known_ml_version(api_version: str) -> bool:
    return api_version.lower() in _ML_LOWER


def is_newer_ml_version(api_version: str) -> bool:
    """A well-formed version (a preview too) dated after the newest known."""
    return bool(VERSION_FORMAT.match(api_version)) and api_version[:10] > NEWEST_ML_VERSION[:10]


def check_ml_version(api_version: str | None) -> str:
    """Versions of Microsoft.MachineLearningServices the official clients send, and newer ones (served as the
    newest known; ``ApiVersionGate`` has refused them already where the server is strict)."""
    if not api_version:
        raise MISSING
    if not (is_known_ml_version(api_version) or is_newer_ml_version(api_version)):
        raise _invalid(api_version, ",".join(ML_API_VERSIONS))
    return api_version


def no_registered_provider(
    api_version: str, resource_type: str, location: str, locations: Sequence[str] = ()
) -> ArmError:
    """Azure's answer to a well-formed api-version its resource provider does not have, or to a location it does
    not serve (`locations`: those it does; by default `location` alone)."""
    return ArmError(
        400,
        "NoRegisteredProviderFound",
        f"No registered resource provider found for location '{location}' and API version '{api_version}' for "
        f"type '{resource_type}'. The supported api-versions are '{', '.join(ML_API_VERSIONS)}'. The supported "
        f"locations are '{', '.join(locations or [location])}'.",
    )


def check_arm_version(api_version: str | None) -> str:
    """Other providers (resource groups): any well-formed version."""
    if not api_version:
        raise MISSING
    if not VERSION_FORMAT.match(api_version):
        raise _invalid(api_version, "YYYY-MM-DD or YYYY-MM-DD-preview")
    return api_version
