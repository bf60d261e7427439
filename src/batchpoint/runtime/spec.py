"""What one batch job runs: the deployment's settings resolved for one invoke."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any, Literal

OutputAction = Literal["AppendRow", "SummaryOnly"]
LoggingLevel = Literal["Info", "Warning", "Debug"]

APPEND_ROW: OutputAction = "AppendRow"
SUMMARY_ONLY: OutputAction = "SummaryOnly"
OUTPUT_ACTIONS = (APPEND_ROW, SUMMARY_ONLY)
LOGGING_LEVELS = ("Info", "Warning", "Debug")
DEFAULT_INIT_TIMEOUT_SECONDS = 300.0
DEFAULT_RESOURCE_MONITOR_SECONDS = 600.0
LOGS_FOLDER = "logs"
PRIVATE_FOLDER = ".batchpoint"
RESERVED_NAMES = (LOGS_FOLDER, PRIVATE_FOLDER)
"""What the job keeps in its output folder besides the output file, whose name cannot be one of these: named
`logs`, the output was never written (the job's logs were taken for it, committed before) and its rows were lost."""
NAME_BYTES = 255
"""The longest file name Linux's file systems take (`NAME_MAX`): a longer output file name failed the job at its
start, with an error of the server's."""


@dataclass(frozen=True)
class RemoteFolder:
    """A folder on fsspec-reachable storage: `path` is the protocol's path (for `abfs`, `container/folder`)."""

    uri: str
    protocol: str
    path: str
    storage_options: Mapping[str, Any] = field(default_factory=dict)

    def filesystem(self) -> Any:
        import fsspec  # heavy: only jobs with remote inputs or outputs need it

        return fsspec.filesystem(self.protocol, **self.storage_options)

    def child(self, relative: str) -> str:
        return f"{self.path.rstrip('/')}/{relative}"


@dataclass(frozen=True, kw_only=True)
class JobSpec:
    """A job's inputs, code, model and settings; defaults are the deployment schema's (Decision 2).

    `output_dir` is both `AZUREML_BI_OUTPUT_PATH` and the folder `output_file_name` is written to; the job's
    logs go to `output_dir/logs`."""

    job_id: str
    input_paths: Sequence[Path]
    output_dir: Path
    code_dir: Path | None = None
    scoring_script: str | None = None
    """Relative to `code_dir`; without a `code_dir`, a path of its own."""
    model_dir: Path | None = None
    output_action: OutputAction = APPEND_ROW
    output_file_name: str = "predictions.csv"
    mini_batch_size: int = 10
    instance_count: int = 1
    max_concurrency_per_instance: int = 1
    max_retries: int = 3
    timeout_seconds: float = 30.0
    init_timeout_seconds: float = DEFAULT_INIT_TIMEOUT_SECONDS
    """The time limit on each worker's `init()` (Decision 1)."""
    resource_monitor_seconds: float = DEFAULT_RESOURCE_MONITOR_SECONDS
    """How often the resource use of the workers is sampled into `logs/perf/` (0: never)."""
    error_threshold: int = -1
    logging_level: LoggingLevel = "Info"
    environment_variables: Mapping[str, str] = field(default_factory=dict)
    """The deployment's variables (they win over `job_variables`)."""
    job_variables: Mapping[str, str] = field(default_factory=dict)
    """Variables of this job alone, such as its managed identity's secret: a worker gets them after it has entered
    its sandbox, and a warm template (`templates.py`), which serves every job, never does."""
    python: Path | None = None
    """The interpreter of the deployment's environment; None runs the workers in the server's own."""
    remote_input: RemoteFolder | None = None
    """The input on remote storage, when the job reads it in place: the nodes of a cluster read their mini-batches'
    files there. `input_paths[0]` is then where a local copy would be, which is never made; the job still names its
    files by their place in it (`inputs.iter_remote_files`). None: the input is `input_paths`."""
    remote_output: RemoteFolder | None = None
    """Where a completed job's output files are uploaded (`remote_output.py`); `output_dir` is then a local staging
    folder. None: `output_dir` is the output."""
    input_roots: Sequence[Path] = ()
    """A rerun's (`rerunFailed`): the inputs of the job it reruns (or their local copy), which its input folder's
    links point into: all its workers may read of the input, as that job's could (a link leading elsewhere is not
    followed). Empty: `input_paths` are the inputs."""
    input_uri: str | None = None
    """How the invoke named the input (`azureml://datastores/...`, a data asset's path, ...), for messages about
    it; None names it by `input_paths`."""
    notes: Sequence[str] = ()
    """Lines for the job's `sys/master_role.txt` from whoever made the spec, such as the settings of the
    deployment that the runtime records but does not act on."""

    stored: InitVar[bool] = False
    """Read back from a job's stored record: not checked again, so that a rule made stricter since it was stored
    (an output file name it may no longer have) leaves the job's record, logs and pages readable. A changed copy
    (`dataclasses.replace`) is checked."""

    def __post_init__(self, stored: bool) -> None:
        object.__setattr__(self, "input_paths", tuple(Path(path) for path in self.input_paths))
        object.__setattr__(self, "input_roots", tuple(Path(path) for path in self.input_roots))
        object.__setattr__(self, "notes", tuple(self.notes))
        for name in ("remote_input", "remote_output"):
            fields = getattr(self, name)
            if isinstance(fields, Mapping):  # as a job's stored run record holds them
                object.__setattr__(self, name, RemoteFolder(**fields) if fields else None)
        if not stored:
            self._check()

    def _check(self) -> None:
        _check_path_component("job_id", self.job_id)
        check_deployment_settings(
            output_file_name=self.output_file_name,
            mini_batch_size=self.mini_batch_size,
            instance_count=self.instance_count,
            max_concurrency_per_instance=self.max_concurrency_per_instance,
            environment_variables=self.environment_variables,
            max_retries=self.max_retries,
        )
        _check_at_least("error_threshold", self.error_threshold, -1)
        _check_positive("timeout_seconds", self.timeout_seconds)
        _check_positive("init_timeout_seconds", self.init_timeout_seconds)
        if not self.resource_monitor_seconds >= 0:
            raise ValueError(f"resource_monitor_seconds must be 0 or more, not {self.resource_monitor_seconds}")
        _check_choice("output_action", self.output_action, OUTPUT_ACTIONS)
        _check_choice("logging_level", self.logging_level, LOGGING_LEVELS)

    @property
    def worker_count(self) -> int:
        return self.instance_count * self.max_concurrency_per_instance

    @property
    def init_tries(self) -> int:
        """How many times in a row `init()` may fail on one worker slot before the slot is given up: as many
        tries as a mini-batch gets."""
        return 1 + self.max_retries

    @property
    def script_path(self) -> Path | None:
        if self.scoring_script is None:
            return None
        script = Path(self.scoring_script)
        return (self.code_dir / script if self.code_dir else script).absolute()

    @property
    def output_file(self) -> Path | None:
        """The predictions file; None for summary_only, which writes none (Decision 9)."""
        return self.output_dir / self.output_file_name if self.output_action == APPEND_ROW else None

    @property
    def logs_dir(self) -> Path:
        return self.output_dir / LOGS_FOLDER

    @property
    def private_dir(self) -> Path:
        """Where the job keeps its committed rows until the output file is written; hidden from listings."""
        return self.output_dir / PRIVATE_FOLDER / self.job_id


def check_deployment_settings(
    *,
    output_file_name: str = "predictions.csv",
    mini_batch_size: int = 1,
    instance_count: int = 1,
    max_concurrency_per_instance: int = 1,
    environment_variables: Mapping[str, str | None] | None = None,
    max_retries: int = 0,
) -> None:
    """The settings a deployment writes that no job could run with (a ValueError naming the first, by its
    azure-ai-ml name): its PUT is refused for them, and a job of one stored before is refused at invoke."""
    _check_path_component("output_file_name", output_file_name)
    _check_at_least("mini_batch_size", mini_batch_size, 1)
    _check_at_least("instance_count", instance_count, 1)
    _check_at_least("max_concurrency_per_instance", max_concurrency_per_instance, 1)
    _check_at_least("max_retries", max_retries, 0)
    for name, value in (environment_variables or {}).items():
        if not name or "=" in name or "\0" in name:
            raise ValueError(f"environment variable name {name!r} is not valid: it is empty or has '=' or NUL")
        if value and "\0" in value:
            raise ValueError(f"environment variable {name!r} has a NUL character in its value")


def _check_path_component(name: str, value: str) -> None:
    if not value or value in (".", "..") or "/" in value or "\\" in value or "\0" in value:
        raise ValueError(f"{name} must be a plain file name, not {value!r}")
    size = len(os.fsencode(value))
    if size > NAME_BYTES:
        raise ValueError(f"{name} must be a file name of at most {NAME_BYTES} bytes, not {size}")
    if value in RESERVED_NAMES:
        raise ValueError(f"{name} cannot be {value!r}: the job keeps its logs and its uncommitted rows in the output "
                         f"folder as {' and '.join(RESERVED_NAMES)}")  # fmt: skip


def _check_at_least(name: str, value: int, minimum: int) -> None:
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value}")


def _check_positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be positive, not {value}")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
