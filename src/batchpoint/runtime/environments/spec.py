"""Resolving what an environment asks for into pip requirements: conda files, python_env.yaml, requirements.txt."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from batchpoint.runtime.environments.interpreters import Interpreter, PythonFinder, parse_request

READY_FILE = "batchpoint-environment.json"
"""In a built environment: its spec (and what it was built on), written once the build is complete."""


def built_on(folder: Path) -> Path | None:
    """The interpreter the environment in `folder` was built on, as batchpoint recorded it; None when it did not
    build it."""
    record = folder / READY_FILE
    return Path(json.loads(record.read_text())["interpreter"]["path"]) if record.is_file() else None


BUILD_TOOLS = {"pip", "setuptools", "wheel", "conda"}
"""Installer tools a conda file or python_env.yaml lists; the environment's installer provides its own."""
CONDA_ONLY = {"ca-certificates", "openssl", "ncurses", "readline", "sqlite", "tk", "xz", "zlib", "bzip2", "libffi"}
"""System libraries conda packages; pip has no such packages (names starting with `lib` or `_` are skipped too)."""
CONDA_SPEC = re.compile(r"^(?:[\w.-]+::)?(?P<name>[A-Za-z0-9_.-]+)\s*(?P<op>==|>=|<=|!=|>|<|=)?\s*(?P<rest>[^\s]*)$")
PROVIDED_BY = {"mlflow": "mlflow-skinny"}
"""A requirement on the left is met by the package on the right at the same version (same import package)."""
MLFLOW_MODEL_FILES = ("conda.yaml", "python_env.yaml", "requirements.txt")


class EnvironmentSpecError(ValueError):
    """The environment definition cannot be read; the message says where."""


@dataclass(frozen=True)
class EnvironmentSpec:
    """What a deployment's workers need: pip requirement lines, and the Python version the definition names."""

    requirements: tuple[str, ...]
    python: str | None = None
    image: str | None = None
    """Recorded for the build log; batchpoint builds on this machine and never pulls images."""
    source: str = ""
    skipped: tuple[str, ...] = field(default=(), compare=False)
    """Conda packages that have no pip counterpart and were left out."""
    interpreter: Interpreter | None = None
    """The interpreter the environment is built with (chosen for `python`); None until it is chosen."""

    @property
    def built_on(self) -> Interpreter:
        if self.interpreter is None:
            raise ValueError("An environment's interpreter is chosen before it is looked up or built.")
        return self.interpreter

    @property
    def key(self) -> str:
        """The cache key: the resolved requirements and the interpreter the environment is built with."""
        built_with = f"{self.built_on.implementation}{self.built_on.version}:{self.built_on.path}"
        resolved = {"requirements": list(self.requirements), "python": built_with}
        return hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()[:32]

    @property
    def on_nearest_python(self) -> bool:
        """Built on an interpreter other than the one asked for (the `--nearest-python` mode)."""
        return self.python is not None and not parse_request(self.python).matches(self.built_on)

    def built_with(self, interpreter: Interpreter) -> EnvironmentSpec:
        return replace(self, interpreter=interpreter)


def from_conda_file(text: str, source: str, image: str | None = None) -> EnvironmentSpec:
    document = _yaml(text, source)
    dependencies = (document.get("dependencies") or []) if isinstance(document, dict) else None
    if not isinstance(dependencies, list):
        raise EnvironmentSpecError(f"{source}: 'dependencies' must be a list.")
    requirements: list[str] = []
    skipped: list[str] = []
    python = None
    for entry in dependencies:
        if isinstance(entry, dict):
            requirements.extend(str(line) for line in entry.get("pip") or [])
            continue
        match = CONDA_SPEC.match(str(entry).strip())
        if match is None:
            raise EnvironmentSpecError(f"{source}: the conda dependency '{entry}' cannot be read.")
        name = match["name"].lower()
        if name == "python":
            python = _python_version(match["op"], match["rest"], source)
        elif name in BUILD_TOOLS:
            continue
        elif name in CONDA_ONLY or name.startswith(("lib", "_")):
            skipped.append(str(entry))
        else:
            requirements.append(_pip_pin(match["name"], match["op"], match["rest"]))
    return EnvironmentSpec(tuple(requirements), python, image, source, tuple(skipped))


def from_python_env(text: str, folder: Path, source: str) -> EnvironmentSpec:
    """MLflow's python_env.yaml: `python`, `build_dependencies` (installer tools) and `dependencies`."""
    document = _yaml(text, source)
    if not isinstance(document, dict):
        raise EnvironmentSpecError(f"{source}: expected a mapping with 'python' and 'dependencies'.")
    lines: list[str] = []
    for line in document.get("dependencies") or []:
        lines.extend(_expand(str(line), folder, source))
    python = document.get("python")
    return EnvironmentSpec(tuple(lines), _python_version(None, str(python or ""), source), None, source)


def from_requirements(text: str, folder: Path, source: str) -> EnvironmentSpec:
    lines: list[str] = []
    for line in text.splitlines():
        lines.extend(_expand(line, folder, source))
    return EnvironmentSpec(tuple(lines), None, None, source)


def from_mlflow_model(model_folder: Path) -> EnvironmentSpec | None:
    """The environment an MLflow model declares, in the order Azure ML reads it; None if it declares none.
    A file that names no Python gets the `python_version` the MLmodel file records."""
    for name in MLFLOW_MODEL_FILES:
        path = model_folder / name
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            source = f"the model's {name}"
            if name == "conda.yaml":
                spec = from_conda_file(text, source)
            elif name == "python_env.yaml":
                spec = from_python_env(text, model_folder, source)
            else:
                spec = from_requirements(text, model_folder, source)
            return spec if spec.python else replace(spec, python=_mlmodel_python(model_folder))
    return None


def _mlmodel_python(model_folder: Path) -> str | None:
    path = model_folder / "MLmodel"
    document = _yaml(path.read_text(encoding="utf-8"), "the model's MLmodel") if path.is_file() else None
    flavors = document.get("flavors") if isinstance(document, dict) else None
    pyfunc = flavors.get("python_function") if isinstance(flavors, dict) else None
    version = pyfunc.get("python_version") if isinstance(pyfunc, dict) else None
    return _python_version(None, str(version or ""), "the model's MLmodel")


def unmet_on_host(requirements: Iterable[str]) -> list[str]:
    """The requirements the server's own interpreter does not satisfy (all of them if one cannot be checked)."""
    unmet = []
    for line in requirements:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            return list(requirements)
        if requirement.marker and not requirement.marker.evaluate():
            continue
        if requirement.url or not _installed_satisfies(requirement):
            unmet.append(line)
    return unmet


def _installed_satisfies(requirement: Requirement) -> bool:
    name = canonicalize_name(requirement.name)
    for candidate in (name, PROVIDED_BY.get(name)):
        if candidate is None:
            continue
        try:
            version = metadata.version(candidate)
        except metadata.PackageNotFoundError:
            continue
        if requirement.specifier.contains(version, prereleases=True):
            return True
    return False


def _pip_pin(name: str, operator: str | None, version: str) -> str:
    """Conda's `name=1.2` means any 1.2 release (`1.2.*`); `name=1.2=build` drops the build string."""
    if not operator:
        return name
    if operator == "=":
        version = version.split("=", 1)[0].rstrip("*").rstrip(".")
        return f"{name}=={version}.*"
    return f"{name}{operator}{version}"


def _expand(line: str, folder: Path, source: str) -> list[str]:
    """A requirement line, with `-r other.txt` replaced by that file's lines (relative to the model folder)."""
    line = line.split(" #", 1)[0].strip()
    if not line or line.startswith("#"):
        return []
    if line.startswith(("-r ", "--requirement ")):
        path = (folder / line.split(maxsplit=1)[1]).resolve()
        if not path.is_relative_to(folder.resolve()) or not path.is_file():
            raise EnvironmentSpecError(f"{source}: '{line}' names no file inside the model folder.")
        return list(from_requirements(path.read_text(encoding="utf-8"), folder, source).requirements)
    return [line]


def _yaml(text: str, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise EnvironmentSpecError(f"{source} is not valid YAML: {error}") from None


def _python_version(operator: str | None, version: str, source: str) -> str | None:
    """The Python a definition asks for (`python=3.8.5`, `python>=3.8`), checked now so a typo fails early."""
    if not version:
        return None
    requested = version if operator in (None, "=", "==") else f"{operator}{version}"
    try:
        parse_request(requested)
    except ValueError as error:
        raise EnvironmentSpecError(f"{source}: {error}") from None
    return requested


def environment_record(spec: EnvironmentSpec | None) -> dict[str, Any] | None:
    return asdict(spec) if spec is not None else None


def environment_from_record(record: dict[str, Any] | None) -> EnvironmentSpec | None:
    """A spec a job recorded; one recorded before interpreters were chosen was built on the server's own."""
    if record is None:
        return None
    interpreter = record.get("interpreter")
    return EnvironmentSpec(
        **{
            **record,
            "requirements": tuple(record["requirements"]),
            "skipped": tuple(record["skipped"]),
            "interpreter": Interpreter(**interpreter) if interpreter else PythonFinder().host,
        }
    )
