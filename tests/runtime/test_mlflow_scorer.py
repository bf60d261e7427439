"""The MLflow scorer's file handling: what it reads, how it casts, and how it names what went wrong."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from batchpoint.runtime.scorers import mlflow_scorer

if importlib.util.find_spec("mlflow") is None:  # imported by the fixtures that use it, not at collection
    pytest.skip("MLflow scoring needs the 'mlflow' extra", allow_module_level=True)


@pytest.fixture
def signature(monkeypatch: pytest.MonkeyPatch) -> None:
    """A model whose input signature has a long column ``a`` and a double column ``b``."""
    from mlflow.models import infer_signature

    schema = infer_signature(pd.DataFrame({"a": [1], "b": [0.5]})).inputs
    metadata = SimpleNamespace(get_input_schema=lambda: schema)
    monkeypatch.setattr(mlflow_scorer, "model", SimpleNamespace(metadata=metadata))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real MLflow model: a linear regression on the columns ``a`` and ``b``, saved with its signature."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LinearRegression

    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.5, 0.0, 1.5, 2.0]})
    fitted = LinearRegression().fit(frame, [1.0, 2.5, 3.0, 5.5])
    root = tmp_path_factory.mktemp("model")
    signature = infer_signature(frame, fitted.predict(frame))
    mlflow.sklearn.save_model(
        fitted, str(root / "model"), signature=signature, serialization_format="cloudpickle", pip_requirements=[]
    )
    return root


@pytest.fixture
def loaded(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The scorer's init() on the real model; yields the number of rows of each predict() call."""
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_dir))
    monkeypatch.setattr(mlflow_scorer, "model", None)
    mlflow_scorer.init()
    calls: list[int] = []
    predict = mlflow_scorer.model.predict

    def counted(data: Any) -> Any:
        calls.append(len(data))
        return predict(data)

    monkeypatch.setattr(mlflow_scorer.model, "predict", counted)
    yield calls


def csv_files(folder: Path, *frames: pd.DataFrame) -> list[str]:
    paths = []
    for index, frame in enumerate(frames):
        paths.append(str(folder / f"part-{index}.csv"))
        frame.to_csv(paths[-1], index=False)
    return paths


def test_a_mini_batch_of_tables_is_predicted_in_one_call_with_the_rows_of_one_call_per_file(
    loaded: list[int], tmp_path: Path
) -> None:
    files = csv_files(
        tmp_path,
        pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 1.0, 1.5]}),  # `a` read as int64: cast to the signature's double
        pd.DataFrame({"a": [4.5], "b": [2.0]}),
        pd.DataFrame({"a": [0.25, 7.0], "b": [3.0, -1.0]}),
    )
    together = mlflow_scorer.run(files)
    assert loaded == [6]
    assert together == [row for path in files for row in mlflow_scorer.run([path])]
    assert loaded == [6, 3, 1, 2]
    assert [row.split(",")[0::2] for row in together] == [
        ["0", "part-0.csv"], ["1", "part-0.csv"], ["2", "part-0.csv"], ["0", "part-1.csv"],
        ["0", "part-2.csv"], ["1", "part-2.csv"],
    ]  # fmt: skip


def test_tables_of_different_columns_are_predicted_one_by_one(loaded: list[int], tmp_path: Path) -> None:
    files = csv_files(
        tmp_path, pd.DataFrame({"a": [1.0], "b": [2.0]}), pd.DataFrame({"a": [3.0], "b": [4.0], "note": ["x"]})
    )
    assert len(mlflow_scorer.run(files)) == 2
    assert loaded == [1, 1]


AWKWARD_CSV = {
    "no newline at the end": [b"a,b\n1,2\n3,4", b"a,b\n5,6\n"],
    "CRLF line ends": [b"a,b\r\n1,2\r\n", b"a,b\n3,4\n"],
    "a blank line": [b"a,b\n1,2\n\n3,4\n", b"a,b\n5,6\n"],
    "a line of spaces": [b"a,b\n1,2\n   \n3,4\n", b"a,b\n5,6\n"],
    "a header alone": [b"a,b\n", b"a,b\n1,2\n"],
    "quoted fields": [b'a,b\n"1",2\n"3,5",4\n', b"a,b\n3,4\n"],
    "integers beside floats": [b"a,b\n1,2\n", b"a,b\n1.5,2\n", b"a,b\n7,8\n"],
    "a missing value": [b"a,b\n1,\n", b"a,b\n3,4\n"],
    "a first row one field longer": [b"a,b\n1,2,3\n", b"a,b\n3,4\n"],
    "a later row one field longer": [b"a,b\n1,2\n", b"a,b\n3,4,5\n"],
    "columns in another order": [b"a,b\n1,2\n", b"b,a\n2,1\n"],
    "a byte order mark": [b"\xef\xbb\xbfa,b\n1,2\n", b"a,b\n3,4\n"],
    "text in one file": [b"a,b\n1,2\n", b"a,b\nx,4\n"],
    "booleans": [b"a,b\nTrue,2\n", b"a,b\nFalse,4\n"],
    "a quoted line end in one, a lone CR in another": [b'a,b\n1,"2\n"\n3,4\n', b"a,b\n5,6\n7,8\r9,10\n"],
    "a line of spaces in one, a lone CR in another": [b"a,b\n1,2\n \n3,4\n", b"a,b\n5,6\n7,8\r9,10\n"],
    "floats in every file": [b"a,b\n1.5,2.5\n", b"a,b\n3.5,4.5\n3.25,\n"],
}


def outcome(paths: list[str]) -> list[str] | str:
    try:
        return mlflow_scorer.run(paths)
    except Exception as error:  # noqa: BLE001 - the error is the outcome compared
        return f"{type(error).__name__}: {error}"


@pytest.fixture(params=["regression", "echo", "echo with a signature"])
def any_model(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real regression model (which fails on a missing value) or one that predicts each row's values as they
    were read (so that a row given to the wrong file, or a value read as another, changes the lines), without a
    signature or with the `signature` fixture's."""
    if request.param == "regression":
        request.getfixturevalue("loaded")
        return
    schema = None
    if request.param == "echo with a signature":
        request.getfixturevalue("signature")
        schema = mlflow_scorer.model.metadata.get_input_schema()
    echo = SimpleNamespace(
        predict=lambda frame: [list(row) for row in frame.itertuples(index=False)],
        metadata=SimpleNamespace(get_input_schema=lambda: schema),
    )
    monkeypatch.setattr(mlflow_scorer, "model", echo)


@pytest.mark.parametrize("contents", AWKWARD_CSV.values(), ids=AWKWARD_CSV)
def test_a_mini_batch_of_awkward_csv_files_scores_as_when_each_file_is_read_alone(
    any_model: None, tmp_path: Path, contents: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mini-batch's CSV files are parsed as one table only when that gives each file's rows as parsing it alone
    does: the lines, or the error, are those of the files each parsed alone."""
    paths = [str(tmp_path / f"part-{index}.csv") for index in range(len(contents))]
    for path, content in zip(paths, contents, strict=True):
        Path(path).write_bytes(content)
    scored = outcome(paths)
    monkeypatch.setattr(mlflow_scorer, "read_csv_together", lambda _paths: None)
    assert scored == outcome(paths)


def test_plain_csv_files_of_one_header_are_parsed_as_one_table(loaded: list[int], tmp_path: Path) -> None:
    files = csv_files(tmp_path, *(pd.DataFrame({"a": [1.0, 2.0], "b": [0.5, 3.0]}) for _ in range(3)))
    parsed: list[object] = []
    read_csv = pd.read_csv
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pd, "read_csv", lambda source, **options: parsed.append(source) or read_csv(source, **options))
        assert len(mlflow_scorer.run(files)) == 6
    assert len(parsed) == 1 and loaded == [6]


def test_unsupported_file_types_are_named(tmp_path: Path) -> None:
    path = tmp_path / "data.avro"
    path.write_bytes(b"x")
    with pytest.raises(ValueError, match=r"'data\.avro': file type 'avro' is not supported"):
        mlflow_scorer.read(str(path))


def test_columns_are_cast_to_the_signature(signature: None, tmp_path: Path) -> None:
    frame = mlflow_scorer.cast_to_signature(pd.DataFrame({"a": ["1", "2"], "b": ["0.5", "1"]}), str(tmp_path / "f.csv"))
    assert str(frame["a"].dtype) == "int64" and str(frame["b"].dtype) == "float64"


def test_a_cast_error_names_the_file_and_the_column(signature: None) -> None:
    with pytest.raises(ValueError, match=r"'bad\.csv': column 'a' cannot be read as int64"):
        mlflow_scorer.cast_to_signature(pd.DataFrame({"a": ["x"], "b": [1.0]}), "/in/bad.csv")


@pytest.mark.parametrize(
    ("predictions", "expected"),
    [
        (pd.Series([1.5, 2.0]).to_numpy(), ["1.5", "2.0"]),
        (pd.DataFrame({"p": [1, 2], "q": ["x", "y"]}), ['"{""p"":1,""q"":""x""}"', '"{""p"":2,""q"":""y""}"']),
        ({"p": [1, 2]}, ['"{""p"":1}"', '"{""p"":2}"']),
    ],
)
def test_multi_output_predictions_become_one_quoted_json_field(predictions: object, expected: list[str]) -> None:
    assert [mlflow_scorer.flatten(value) for value in mlflow_scorer.prediction_values(predictions)] == expected


def test_an_image_is_one_array_shaped_by_the_tensor_signature(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import numpy as np
    from mlflow.types.schema import Schema, TensorSpec
    from PIL import Image

    schema = Schema([TensorSpec(np.dtype("float32"), (-1, 4, 4))])
    seen = []

    def predict(pixels: np.ndarray) -> np.ndarray:
        seen.append((pixels.shape, pixels.dtype))
        return pixels.reshape(len(pixels), -1).mean(axis=1)

    metadata = SimpleNamespace(get_input_schema=lambda: schema)
    monkeypatch.setattr(mlflow_scorer, "model", SimpleNamespace(metadata=metadata, predict=predict))
    Image.fromarray(np.full((4, 4), 8, dtype=np.uint8)).save(tmp_path / "digit.png")
    assert mlflow_scorer.run([str(tmp_path / "digit.png")]) == ["0,8.0,digit.png"]
    assert seen == [((1, 4, 4), np.dtype("float32"))]


def test_an_image_that_does_not_fit_the_tensor_names_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import numpy as np
    from mlflow.types.schema import Schema, TensorSpec
    from PIL import Image

    metadata = SimpleNamespace(get_input_schema=lambda: Schema([TensorSpec(np.dtype("float32"), (-1, 3, 3))]))
    monkeypatch.setattr(mlflow_scorer, "model", SimpleNamespace(metadata=metadata))
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(tmp_path / "big.png")
    with pytest.raises(ValueError, match=r"'big\.png': the image"):
        mlflow_scorer.read(str(tmp_path / "big.png"))


def test_a_structured_value_among_scalars_stays_one_quoted_field() -> None:
    assert list(mlflow_scorer.field_texts([1, 2.5, "x", None])) == ["1", "2.5", "x", "None"]
    assert list(mlflow_scorer.field_texts([1, [2, 3]])) == ["1", '"[2,3]"']
