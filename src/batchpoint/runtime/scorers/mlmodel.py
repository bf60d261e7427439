"""Finding an MLflow model in a registered model's files (standard library only: scorers import it in the
deployment's own environment)."""

from __future__ import annotations

import os
from pathlib import Path


def model_folder(root: Path) -> Path:
    """The folder holding the ``MLmodel`` file, wherever the registered files put it below the model root (which
    links to them, hence ``followlinks``)."""
    found = sorted(Path(folder) for folder, _, files in os.walk(root, followlinks=True) if "MLmodel" in files)
    if not found:
        raise FileNotFoundError(f"No MLmodel file below the model folder {root}: is this an MLflow model?")
    return found[0]
