"""Environment definitions resolve to pip requirements the way Azure ML users write them."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchpoint.runtime.environments.interpreters import Interpreter
from batchpoint.runtime.environments.spec import (
    EnvironmentSpecError,
    from_conda_file,
    from_mlflow_model,
    unmet_on_host,
)

CONDA = """
name: legacy
channels: [conda-forge]
dependencies:
  - python=3.8.10
  - pip=21.0
  - scikit-learn=1.1.2
  - numpy>=1.20
  - conda-forge::xgboost=1.3.3=py38h_0
  - libgcc-ng
  - openssl
  - pip:
      - azureml-defaults==1.49.0
      - --extra-index-url https://mirror.example/simple
"""


def test_conda_pins_become_pip_pins_and_the_pip_section_is_kept() -> None:
    spec = from_conda_file(CONDA, "environment legacy", image="mcr.microsoft.com/azureml/base:latest")
    assert spec.requirements == (
        "scikit-learn==1.1.2.*",
        "numpy>=1.20",
        "xgboost==1.3.3.*",
        "azureml-defaults==1.49.0",
        "--extra-index-url https://mirror.example/simple",
    )
    assert spec.python == "3.8.10" and spec.skipped == ("libgcc-ng", "openssl")
    assert spec.image == "mcr.microsoft.com/azureml/base:latest"


PY38 = Interpreter("/opt/python3.8/bin/python3", "3.8.18")
PY311 = Interpreter("/opt/python3.11/bin/python3", "3.11.7")


@pytest.mark.parametrize(
    ("dependency", "requested"),
    [("python=3.8.5", "3.8.5"), ("python==3.8", "3.8"), ("python>=3.8,<3.10", ">=3.8,<3.10"), ("python", None)],
)
def test_the_python_a_conda_file_asks_for_is_kept(dependency: str, requested: str | None) -> None:
    assert from_conda_file(f"dependencies: ['{dependency}']", "x").python == requested


def test_a_python_that_is_no_version_is_refused_with_its_source(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentSpecError, match="env-x: '>latest' is not a Python version"):
        from_conda_file("dependencies: [python>latest]", "env-x")
    (tmp_path / "python_env.yaml").write_text("python: three\ndependencies: [six]\n")
    with pytest.raises(EnvironmentSpecError, match="python_env.yaml: 'three' is not a Python version"):
        from_mlflow_model(tmp_path)


def test_the_cache_key_follows_the_requirements_and_the_interpreter_not_the_image_or_name() -> None:
    one = from_conda_file("dependencies: [{pip: [six]}]", "a", image="one").built_with(PY311)
    other = from_conda_file("name: other\ndependencies: [{pip: [six]}]", "b", image="two").built_with(PY311)
    assert one.key == other.key
    assert one.key != from_conda_file("dependencies: [{pip: [six, attrs]}]", "a").built_with(PY311).key
    assert one.key != one.built_with(PY38).key


def test_an_mlflow_models_python_comes_from_its_mlmodel_when_its_files_name_none(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("scikit-learn==1.1.2\n")
    (tmp_path / "MLmodel").write_text("flavors:\n  python_function:\n    python_version: 3.8.18\n")
    spec = from_mlflow_model(tmp_path)
    assert spec is not None and spec.python == "3.8.18"


@pytest.mark.parametrize("text", ["dependencies: [unclosed", "dependencies: {pip: []}", "- just a list"])
def test_an_unreadable_conda_file_is_refused_with_its_source(text: str) -> None:
    with pytest.raises(EnvironmentSpecError, match="env-x"):
        from_conda_file(text, "env-x")


def test_an_mlflow_models_python_env_reads_its_requirements_file(tmp_path: Path) -> None:
    (tmp_path / "python_env.yaml").write_text(
        "python: 3.11.7\nbuild_dependencies: [pip]\ndependencies: [-r requirements.txt]\n"
    )
    (tmp_path / "requirements.txt").write_text("mlflow==2.9.0\n# a comment\nscikit-learn==1.3.0  # pinned\n")
    spec = from_mlflow_model(tmp_path)
    assert spec is not None and spec.requirements == ("mlflow==2.9.0", "scikit-learn==1.3.0")
    assert spec.python == "3.11.7"


def test_an_mlflow_model_may_not_read_requirements_outside_its_folder(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("-r ../../etc/passwd\n")
    with pytest.raises(EnvironmentSpecError, match="inside the model folder"):
        from_mlflow_model(tmp_path)


def test_requirements_the_servers_interpreter_meets_need_no_environment() -> None:
    from importlib import metadata

    pandas = metadata.version("pandas")
    skinny = metadata.version("mlflow-skinny")
    assert unmet_on_host([f"pandas=={pandas}", f"mlflow=={skinny}", 'numpy; python_version < "3"']) == []
    assert unmet_on_host(["pandas<1", "no-such-package-here"]) == ["pandas<1", "no-such-package-here"]
