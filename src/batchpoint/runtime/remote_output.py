"""Outputs on remote storage (an AzureBlob datastore): the job runs on a local staging folder and, once it has
completed, its output files are copied there, each as one upload that readers see whole or not at all.

The staging folder is the job's `output_dir` (`AZUREML_BI_OUTPUT_PATH`, the private rows log, the logs), so the
exactly-once machinery of `output.py` is the same for every destination: the predictions file is assembled in
input order and renamed into place locally, then uploaded. A blob upload is committed in one request (Put Blob,
or Put Block List after uncommitted blocks), so a reader listing the container never sees a partial file. The
logs stay in the staging folder, where `batchpoint jobs logs` and the run history read them.

After a crash during the upload the job resumes, finds its local output complete and uploads again; a file that
was uploaded before the crash is left as it is (uploads never overwrite), so nothing is written twice.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from batchpoint.runtime.spec import RESERVED_NAMES, JobSpec


class PublishError(Exception):
    """The output could not be copied to its remote destination."""


def remote_output_problem(spec: JobSpec) -> str | None:
    """Why a job that starts now cannot write its remote output: its predictions file exists there already
    (Decision 10), or the storage cannot be reached. Checked when the job starts rather than in the invoke, so
    that an unreachable storage account (whose client retries for a minute) never holds up the invoke."""
    remote = spec.remote_output
    if remote is None or spec.output_file is None:
        return None
    target = remote.child(spec.output_file_name)
    try:
        exists = remote.filesystem().exists(target)
    except Exception as error:  # noqa: BLE001 - any storage client error: the job says where it could not look
        return f"Could not reach the output '{remote.uri}': {type(error).__name__}: {error}"
    if exists:
        return (
            f"The output file '{spec.output_file_name}' already exists in '{remote.uri}'; "
            "a batch job never overwrites or appends to it."
        )
    return None


def publish(spec: JobSpec) -> None:
    """Upload the completed job's output files from the staging folder, the predictions file last (so that its
    presence means the output is complete). Raises PublishError naming the destination."""
    remote = spec.remote_output
    if remote is None:
        return
    files = staged_files(spec)
    try:
        filesystem = remote.filesystem()
        for relative in files:
            try:
                filesystem.put_file(str(spec.output_dir / relative), remote.child(relative), overwrite=False)
            except FileExistsError:
                continue  # uploaded before the server died; the job's own output, whole
    except Exception as error:  # any storage client error: the job fails saying where it could not write
        raise PublishError(f"Could not write the output to '{remote.uri}': {type(error).__name__}: {error}") from error


def staged_files(spec: JobSpec) -> list[str]:
    """The staging folder's files to publish, as relative POSIX paths; the predictions file comes last. Every
    file, whatever its name (`.preds.csv` too), but for the job's own folders at the top (`RESERVED_NAMES`: its
    logs, which stay here, and its private rows). Regular files only: the scripts write this folder, and a link (or
    a FIFO) there must not make the server upload (or wait on) what it points to (the sandbox lets a worker make
    neither; this does not rely on it)."""
    found: list[str] = []
    for folder, subfolders, files in os.walk(spec.output_dir):
        relative = Path(folder).relative_to(spec.output_dir)
        if relative == Path():
            subfolders[:] = [name for name in subfolders if name not in RESERVED_NAMES]
        regular = [name for name in files if stat.S_ISREG(os.lstat(os.path.join(folder, name)).st_mode)]
        found += sorted((relative / name).as_posix() for name in regular)
    predictions = spec.output_file_name if spec.output_file is not None else None
    return sorted(found, key=lambda path: path == predictions)
