"""Which Python environment a deployment's workers run in, and building it while the deployment provisions.

- An environment version with a conda file: that file's packages (conda pins become pip pins).
- An environment with only an image, or a registry (curated) environment: the server's interpreter; the image is
  recorded, not pulled.
- No environment and an MLflow model: the model's own `conda.yaml` / `python_env.yaml` / `requirements.txt`,
  unless the server's interpreter already satisfies every requirement and is the Python the model asks for
  (then nothing is built).
- Otherwise: the server's interpreter.

An environment is built with the interpreter on this machine that matches the Python it asks for
(`runtime/environments/interpreters.py`); when none does, the deployment fails and the error says what was found.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchpoint.arm.errors import ArmError
from batchpoint.arm.ids import ArmPath
from batchpoint.ml.assets.references import is_registry_reference, load_model, load_version
from batchpoint.ml.datastores.uris import UriResolver
from batchpoint.ml.endpoints.scoring import Scoring
from batchpoint.runtime.environments.cache import BuiltEnvironment, EnvironmentBuildError, EnvironmentCache
from batchpoint.runtime.environments.interpreters import PythonFinder, PythonNotFound, parse_request
from batchpoint.runtime.environments.spec import (
    EnvironmentSpec,
    EnvironmentSpecError,
    from_conda_file,
    from_mlflow_model,
    unmet_on_host,
)
from batchpoint.runtime.scorers.mlmodel import model_folder
from batchpoint.store import Store
from batchpoint.store.entities import Resource

Progress = Callable[[dict[str, Any]], None]
PROGRESS_INTERVAL_SECONDS = 0.5
MLFLOW_MODEL = "mlflow_model"


@dataclass
class DeploymentEnvironments:
    store: Store
    uris: UriResolver
    cache: EnvironmentCache
    pythons: PythonFinder

    def spec_of(self, scoring: Scoring, workspace_id: str) -> EnvironmentSpec | None:
        """The environment a deployment asks for (its own, else its MLflow model's), with the interpreter it is
        built on; None runs it in the server's interpreter."""
        return self._spec(workspace_id, scoring.environment_id, scoring.model_id)

    def _spec(self, workspace_id: str, environment_id: str | None, model_id: str | None) -> EnvironmentSpec | None:
        try:
            if environment_id:
                spec = self._declared(workspace_id, environment_id)
            else:
                spec = self._mlflow_model_environment(workspace_id, model_id)
        except EnvironmentSpecError as error:
            raise ArmError(400, "InvalidEnvironment", str(error)) from None
        return None if spec is None else self._on_its_python(spec)

    def _on_its_python(self, spec: EnvironmentSpec) -> EnvironmentSpec:
        try:
            return spec.built_with(self.pythons.choose(spec.python))
        except PythonNotFound as error:
            raise ArmError(400, "PythonVersionNotFound", f"{error} (asked for by {spec.source})") from None

    def prepare(self, deployment: Resource, progress: Progress) -> None:
        """Build the deployment's environment unless it is cached; raises ArmError with the installer's error."""
        spec = self.spec_of(Scoring.of(deployment), ArmPath.parse(deployment.id).workspace_id)
        self.build(spec, f"deployment '{deployment.name}'", progress)

    def build(self, spec: EnvironmentSpec | None, owner: str, progress: Progress) -> None:
        """Build `spec` unless it is cached (or None); `owner` names what needs it in the error message. One
        built on the nearest Python leaves that and the pins it moved in the operation status."""
        if spec is None:
            return
        built = self.cache.find(spec) or self._build(spec, owner, progress)
        if spec.on_nearest_python:
            progress(
                {
                    "phase": "EnvironmentBuiltOnNearestPython",
                    "environment": spec.key,
                    "pythonRequested": spec.python,
                    "python": spec.built_on.version,
                    "movedPins": built.moved_pins,
                }
            )

    def _build(self, spec: EnvironmentSpec, owner: str, progress: Progress) -> BuiltEnvironment:
        reporter = _ThrottledProgress(progress, spec.key, self.cache.log_path(spec))
        try:
            return self.cache.ensure(spec, reporter)
        except EnvironmentBuildError as error:
            raise ArmError(
                400,
                "EnvironmentBuildFailed",
                f"The environment of {owner} ({spec.source}) could not be built: {error} "
                f"Build log: {self.cache.log_path(spec)}",
            ) from None

    def of_reference(self, workspace_id: str, reference: str | None) -> EnvironmentSpec | None:
        """The spec of an environment named by reference (a component's `environment`), if any."""
        return self._spec(workspace_id, reference, None) if reference else None

    def python_of(self, spec: EnvironmentSpec | None) -> Path | None:
        return None if spec is None else self.cache.python_of(spec)

    def _declared(self, workspace_id: str, environment_id: str) -> EnvironmentSpec | None:
        """An environment version's spec; None for one without a conda file or from a registry."""
        if is_registry_reference(environment_id):
            return None
        version = load_version(self.store, workspace_id, "environments", environment_id, "environment")
        properties = version.body["properties"]
        if not properties.get("condaFile"):
            return None
        return from_conda_file(properties["condaFile"], f"environment '{environment_id}'", properties.get("image"))

    def _mlflow_model_environment(self, workspace_id: str, model_id: str | None) -> EnvironmentSpec | None:
        model = load_model(self.store, workspace_id, model_id)
        if model is None or (model.body["properties"].get("modelType") or "").lower() != MLFLOW_MODEL:
            return None
        model_uri = model.body["properties"].get("modelUri")
        location = self.uris.resolve(workspace_id, model_uri) if model_uri else None
        if location is None or location.local_path is None:
            return None
        try:
            spec = from_mlflow_model(model_folder(location.local_path))
        except FileNotFoundError:
            return None
        if spec is None or (not unmet_on_host(spec.requirements) and self._host_is(spec.python)):
            return None
        return spec

    def _host_is(self, requested: str | None) -> bool:
        return requested is None or parse_request(requested).matches(self.pythons.host)


class _ThrottledProgress:
    """Installer lines become operation progress at most every half second (each one is a database write)."""

    def __init__(self, progress: Progress, key: str, log: Path) -> None:
        self._progress = progress
        self._detail = {"phase": "BuildingEnvironment", "environment": key, "buildLog": str(log)}
        self._last = 0.0

    def __call__(self, line: str) -> None:
        now = time.monotonic()
        if now - self._last >= PROGRESS_INTERVAL_SECONDS:
            self._last = now
            self._progress({**self._detail, "lastLine": line[-500:]})
