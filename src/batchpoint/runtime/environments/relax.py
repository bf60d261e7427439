"""Moving pins that do not install on the Python an environment is built with (the opt-in `--nearest-python`
mode, for environments whose own Python is not on this machine).

A failed install names what it could not install (pip: `Could not find a version that satisfies the requirement
x==1.0`, `Failed building wheel for x`, `Cannot install x==1.0 because ...`; uv: `Because ... x==1.0 depends on
Python>=3.9 ...`, `Failed to build x==1.0`); those requirements lose their version constraint and the install is
tried again, until it succeeds or names nothing left to move.
"""

from __future__ import annotations

import re

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name


def pinned_name(line: str) -> str | None:
    """The canonical name of a requirement line that constrains its version; None for anything else."""
    if line.lstrip().startswith("-"):
        return None
    try:
        requirement = Requirement(line)
    except InvalidRequirement:
        return None
    return canonicalize_name(requirement.name) if requirement.specifier else None


def named_in(error: str, requirements: list[str]) -> list[str]:
    """The pinned requirements an installer's error names."""
    words = {canonicalize_name(word) for word in re.findall(r"[A-Za-z0-9][A-Za-z0-9._-]*", error)}
    return [line for line in requirements if pinned_name(line) in words]


def unpinned(line: str) -> str:
    """The requirement without its version constraint (extras and markers kept)."""
    requirement = Requirement(line)
    requirement.specifier = requirement.specifier.__class__()
    return str(requirement)
