"""The scoring script of MLflow models deployed without one, as Azure ML generates it (Decision 15).

It reads each input file (``.csv``, ``.parquet``/``.pqt``) and casts its columns to the model's input signature;
``predict()`` is called once per mini-batch over its files' rows together (once per file when their columns or types
differ); it returns one ``row,prediction,file`` line per input row (``row`` is the 0-based index within its file).
A mini-batch's plain CSV files with the same header are parsed as one table (Decision 24): pandas' per-call cost was
two thirds of a small file's read.
An image (``.png .jpg .jpeg .tiff .bmp .gif``, read with Pillow) is one array, shaped and typed by the model's tensor
signature (else uint8 pixels), predicted alone, and gives one line with ``row`` 0. A prediction with several values
(a DataFrame row, a dict, a vector) is written as compact JSON in one quoted field, so every line keeps exactly three
CSV fields. A file it cannot read or cast fails its mini-batch with a message naming the file and, for a cast, the
column; so does a prediction dict whose columns differ in length.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from batchpoint.runtime.scorers.mlmodel import model_folder

IMAGE_TYPES = (".png", ".jpg", ".jpeg", ".tiff", ".bmp", ".gif")
READERS: dict[str, Callable[[str], pd.DataFrame]] = {
    ".csv": pd.read_csv,
    ".parquet": pd.read_parquet,
    ".pqt": pd.read_parquet,
}
TOGETHER_BYTES = 64 * 2**20
"""The largest mini-batch of CSV files parsed as one table: its bytes are held whole while they are parsed."""
PLAIN_SCALARS = {int, float, str, bool, type(None)}
"""Values that `flatten` writes as `str` does."""
MLFLOW_TYPES = {
    "integer": "int32",
    "long": "int64",
    "float": "float32",
    "double": "float64",
    "string": "str",
    "boolean": "bool",
}

model: Any = None
_signature_types: tuple[Any, dict[str, Any]] | None = None
"""The schema they were read from, and the types (`signature_types`)."""


def init() -> None:
    global model
    import mlflow.pyfunc  # heavy, and only workers of MLflow deployments need it

    # suppress_warnings: no check of the model's requirements against the installed packages (it reads the
    # metadata of every installed distribution, about a second per worker): batchpoint checked them, or built
    # this environment from them, before the job started.
    model = mlflow.pyfunc.load_model(
        str(model_folder(Path(os.environ["AZUREML_MODEL_DIR"])).resolve()), suppress_warnings=True
    )


def run(mini_batch: list[str]) -> list[str]:
    together = predict_csv_together(mini_batch)
    if together is not None:
        return [line for path, values in zip(mini_batch, together) for line in table_lines(path, values)]  # noqa: B905
    inputs = [read_cast(path) for path in mini_batch]
    rows: list[str] = []
    for path, data, values in zip(mini_batch, inputs, predictions_per_file(inputs)):  # noqa: B905 - Python 3.8
        if isinstance(data, pd.DataFrame):
            rows += table_lines(path, values)
        else:
            rows.append(f"0,{flatten(values[0] if len(values) == 1 else values)},{os.path.basename(path)}")
    return rows


def table_lines(path: str, values: list[Any]) -> list[str]:
    name = os.path.basename(path)
    return [f"{index},{text},{name}" for index, text in enumerate(field_texts(values))]


def predict_csv_together(paths: list[str]) -> list[list[Any]] | None:
    """Each file's predictions from one parse and one ``predict()`` of the files' rows as one table; None when
    they are not plain CSV files of one header (`read_csv_together`), or when the table fails to cast or predict:
    then the files are read and predicted as before, so that an error names (and its traceback points at) the file
    that causes it."""
    read = read_csv_together(paths)
    if read is None:
        return None
    frame, counts = read
    try:
        frame = cast_to_signature(frame, paths[0])
    except ValueError:
        return None
    return predict_split(frame, counts)


def read_csv_together(paths: list[str]) -> tuple[pd.DataFrame, list[int]] | None:
    """The rows of several CSV files as one table, with each file's number of rows, when that table holds each
    file's rows as ``pd.read_csv`` reads the file alone; else None. So every file is a ``.csv`` with the first
    one's header line, at least one row and no carriage return (the one line end that adds rows: the others of
    pandas, a blank line or a quoted line end, remove some, so that the table has fewer rows than the files have
    lines after their headers); its first row is no longer than the header (else pandas takes the first column for
    the index); the files are at most `TOGETHER_BYTES` together; every column of the table is numeric or boolean
    (text in one file would be text in all); and a float column would be float in every file read alone
    (`typed_as_alone`)."""
    if len(paths) < 2 or any(Path(path).suffix.lower() != ".csv" for path in paths):
        return None
    if sum(os.path.getsize(path) for path in paths) > TOGETHER_BYTES:
        return None
    header, bodies = b"", []
    for path in paths:
        with open(path, "rb") as file:
            data = file.read()
        head, _, body = data.partition(b"\n")
        header = header or head
        if head != header or b"\r" in data:
            return None
        if body.partition(b"\n")[0].count(b",") > head.count(b","):
            return None
        bodies.append(body if body.endswith(b"\n") else body + b"\n")
    counts = [body.count(b"\n") for body in bodies]
    try:
        frame = pd.read_csv(io.BytesIO(b"".join([header, b"\n", *bodies])))
    except Exception:  # noqa: BLE001 - read again file by file, where the error names its file
        return None
    if len(frame) != sum(counts) or not all(map(pd.api.types.is_numeric_dtype, frame.dtypes)):
        return None
    return (frame, counts) if typed_as_alone(frame, counts) else None


def typed_as_alone(frame: pd.DataFrame, counts: list[int]) -> bool:
    """Whether each float column of the files' table is float in each file read alone, or cast to a number by the
    signature: a file whose values in it are all integers reads them as integers alone (which a cast to text, or
    a model without a signature, would see). A file's values that are all integers written as ``1.0`` count
    as integers here, which only costs reading the files one by one."""
    starts = np.cumsum([0, *counts[:-1]])
    for name in frame.columns:
        if frame[name].dtype.kind != "f" or signature_types().get(name) not in (None, "str"):
            continue
        values = frame[name].to_numpy()
        not_integer = ~np.isfinite(values) | (values != np.floor(values))
        if not np.logical_or.reduceat(not_integer, starts).all():
            return False
    return True


def read_cast(path: str) -> pd.DataFrame | np.ndarray:
    data = read(path)
    return cast_to_signature(data, path) if isinstance(data, pd.DataFrame) else data


def predictions_per_file(inputs: list[pd.DataFrame | np.ndarray]) -> Iterator[list[Any]]:
    """Each input's predictions: from one ``predict()`` over all of them when they are tables of the same columns
    and types (a model's per-call cost is paid once per mini-batch, not per file), else from one per input."""
    together = predict_together(inputs)
    if together is not None:
        yield from together
        return
    for data in inputs:
        yield prediction_values(model.predict(data))


def predict_together(inputs: list[pd.DataFrame | np.ndarray]) -> list[list[Any]] | None:
    """The tables' predictions from one ``predict()`` over their rows concatenated, split back per table; None when
    they cannot be predicted together, or fail to: then each is predicted alone, so that an error comes from (and
    its traceback points at) the file that causes it."""
    frames = [data for data in inputs if isinstance(data, pd.DataFrame)]
    if len(frames) < 2 or len(frames) != len(inputs) or any(not f.dtypes.equals(frames[0].dtypes) for f in frames):
        return None
    return predict_split(pd.concat(frames, ignore_index=True), [len(frame) for frame in frames])


def predict_split(table: pd.DataFrame, counts: list[int]) -> list[list[Any]] | None:
    """The predictions of a table of several files' rows (`counts` of each, in order), split back per file; None
    when the model fails, or does not make one prediction per row: then each file is predicted alone."""
    try:
        values = prediction_values(model.predict(table))
    except Exception:  # noqa: BLE001 - predicted again file by file, where the error is raised for its file
        return None
    if len(values) != len(table):
        return None  # not one prediction per row: each file's predictions as the model makes them for that file
    ends = np.cumsum(counts)
    return [values[end - count : end] for count, end in zip(counts, ends)]  # noqa: B905 - Python 3.8


def read(path: str) -> pd.DataFrame | np.ndarray:
    suffix = Path(path).suffix.lower()
    if suffix in IMAGE_TYPES:
        return read_image(path)
    reader = READERS.get(suffix)
    if reader is None:
        raise ValueError(
            f"Error processing input file '{os.path.basename(path)}': file type '{suffix.lstrip('.')}' "
            f"is not supported (supported: {', '.join(sorted([*READERS, *IMAGE_TYPES]))})."
        )
    return reader(path)


def read_image(path: str) -> np.ndarray:
    """The image as an array shaped and typed by the model's tensor signature if it has one, else uint8 pixels."""
    try:
        from PIL import Image  # only image inputs need Pillow
    except ImportError:
        raise ValueError(
            f"Error processing input file '{os.path.basename(path)}': reading images needs Pillow in the "
            "deployment's environment (add 'pillow' to its requirements)."
        ) from None
    with Image.open(path) as image:
        pixels = np.asarray(image)
    schema = model.metadata.get_input_schema()
    if schema is None or not schema.is_tensor_spec():
        return pixels.astype(np.uint8)
    tensor = schema.inputs[0]
    try:
        return pixels.reshape(tensor.shape).astype(tensor.type)
    except ValueError as error:
        raise ValueError(
            f"Error processing input file '{os.path.basename(path)}': the image ({pixels.shape}) does not fit the "
            f"model's input tensor {tensor.shape}: {error}"
        ) from None


def cast_to_signature(frame: pd.DataFrame, path: str) -> pd.DataFrame:
    have = dict(zip(frame.columns, map(str, frame.dtypes)))  # noqa: B905 - Python 3.8; one Series, not one per column
    for name, dtype in signature_types().items():
        if name not in have or have[name] == dtype:
            continue
        try:
            frame[name] = frame[name].astype(dtype)
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"Error processing input file '{os.path.basename(path)}': column '{name}' cannot be read as "
                f"{dtype}: {error}"
            ) from None
    return frame


def signature_types() -> dict[str, Any]:
    """The pandas type of each named column of the model's input signature that has one; read once per model."""
    global _signature_types
    schema = model.metadata.get_input_schema()
    if _signature_types is None or _signature_types[0] is not schema:
        types: dict[str, Any] = {}
        if schema is not None and schema.has_input_names():
            for column in schema.inputs:
                dtype = MLFLOW_TYPES.get(str(column.type).lower().split(".")[-1])
                if dtype is not None:
                    types[column.name] = dtype
        _signature_types = (schema, types)
    return _signature_types[1]


def prediction_values(predictions: Any) -> list[Any]:
    if isinstance(predictions, pd.DataFrame):
        return predictions.to_dict(orient="records")
    if isinstance(predictions, dict):
        columns = [list(values) for values in predictions.values()]
        if len({len(values) for values in columns}) > 1:
            lengths = ", ".join(f"{name}: {len(values)}" for name, values in zip(predictions, columns))  # noqa: B905
            raise ValueError(f"The model's prediction dict has columns of different lengths ({lengths}).")
        # zip without strict=: workers may run on Python 3.8 (the lengths are checked above)
        return [dict(zip(predictions, values)) for values in zip(*columns)]  # noqa: B905
    return list(getattr(predictions, "tolist", lambda: predictions)())


def field_texts(values: list[Any]) -> Iterable[str]:
    """`flatten` of each value, without a call per value when all of them are plain scalars (a classifier's or a
    regressor's predictions: the common case, thousands per mini-batch)."""
    if set(map(type, values)) <= PLAIN_SCALARS:
        return map(str, values)
    return map(flatten, values)


def flatten(value: Any) -> str:
    """A scalar as is; several values as compact JSON, quoted as one CSV field so its commas stay inside it."""
    if isinstance(value, (dict, list, tuple)):  # not `dict | list`: workers may run on Python 3.8
        text = json.dumps(value, separators=(",", ":"), default=str)
        return '"' + text.replace('"', '""') + '"'
    return str(value)
