"""What a model deployment scores with, read once from its stored properties: the model, the code and its scoring
script, the environment, the compute and the variables its workers get. The invoke (`jobs/invoke.py`) and the
environment of the deployment (`environments.py`) work on this instead of reading the properties' keys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from batchpoint.store.entities import Resource


@dataclass(frozen=True)
class Scoring:
    model_id: str | None
    """The registered model version it names by id (``model.referenceType`` ``Id``); None when it names none."""
    code_id: str | None
    scoring_script: str | None
    """Relative to the code version's folder; without a code version, the MLflow scorer scores an MLflow model."""
    environment_id: str | None
    compute: str | None
    environment_variables: Mapping[str, str]
    """As the workers get them: a variable set to null is empty."""

    @classmethod
    def of(cls, deployment: Resource) -> Scoring:
        properties = deployment.body["properties"]
        model = properties.get("model") or {}
        code = properties.get("codeConfiguration") or {}
        return cls(
            model_id=model["assetId"] if model.get("referenceType") == "Id" else None,
            code_id=code.get("codeId") or None,
            scoring_script=code.get("scoringScript"),
            environment_id=properties.get("environmentId"),
            compute=properties.get("compute"),
            environment_variables={
                name: value or "" for name, value in (properties.get("environmentVariables") or {}).items()
            },
        )
