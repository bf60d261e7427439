"""`EntryScript`, as scripts written for ParallelRunStep and Azure's batch deployments use it:

    from azureml_user.parallel_run import EntryScript

    def init():
        EntryScript().logger.info("Loading the model.")

The worker (`batchpoint.runtime.worker`) calls `_configure` before it imports the scoring script. `logger` writes
the job's `logs/user/entry_script_log/<node>/<process>.log.txt` (on a Ray node, a file the actor relays there).

Standard library only, Python 3.8+: it runs in the deployment's own interpreter (docs/runtime.md, "EntryScript").
"""

from __future__ import annotations

import logging
import os
from typing import Any

LOG_FORMAT = "%(asctime)s|%(name)s|%(funcName)s()|%(levelname)s|%(message)s"
"""The lines of `logger`'s file: the format of the stand-in Azure's samples give for running scripts locally."""
LOGGER_NAME = "ParallelRunStep"

_settings: dict[str, Any] = {}


def _configure(*, log_file: str, agent_name: str, output_dir: str, logging_level: int, config: dict[str, str]) -> None:
    """What this worker process's `EntryScript` answers (called once, by the worker, before the script loads)."""
    _settings.update(
        log_file=log_file,
        log_dir=os.path.dirname(log_file),
        agent_name=agent_name,
        output_dir=output_dir,
        working_dir=os.getcwd(),
        logging_level=logging_level,
        config=dict(config),
    )


class EntryScript:
    """What a scoring script learns of the process it runs in. One instance per process: `EntryScript()` always
    gives the same object, so that a script may call it in `init()` and again in `run()`."""

    _instance: EntryScript | None = None
    _logger: logging.Logger | None = None

    def __new__(cls, *args: Any, **kwargs: Any) -> EntryScript:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __reduce__(self) -> Any:
        return (self.__class__, ())

    @property
    def logger(self) -> logging.Logger:
        """A logger writing to `<log_dir>/<agent_name>.log.txt` at the deployment's logging level (its lines go
        to that file only, not to the process's stdout)."""
        if EntryScript._logger is None:
            EntryScript._logger = _file_logger(_setting("log_file"), _setting("logging_level"))
        return EntryScript._logger

    @property
    def log_dir(self) -> str:
        """The folder of this node's entry script logs (`logs/user/entry_script_log/<node>`): a script may write
        files of its own there, named after `agent_name` so that processes do not share one."""
        return str(_setting("log_dir"))

    @property
    def agent_name(self) -> str:
        """This process's name in the job's logs: `processNNN`."""
        return str(_setting("agent_name"))

    @property
    def output_dir(self) -> str:
        """The job's output folder (`AZUREML_BI_OUTPUT_PATH`): where the output file is written, and where the
        script may write files of its own."""
        return str(_setting("output_dir"))

    @property
    def working_dir(self) -> str:
        """This process's own working folder (its current folder when it started)."""
        return str(_setting("working_dir"))

    @property
    def config(self) -> dict[str, str]:
        """The job's settings as the driver's arguments name them: `logging_level`, `mini_batch_size`, `output`
        and `output_action`."""
        return dict(_setting("config"))


def _setting(name: str) -> Any:
    if name not in _settings:
        raise RuntimeError("EntryScript is only available in a batch scoring job's worker process.")
    return _settings[name]


def _file_logger(path: str, level: int) -> logging.Logger:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger.addHandler(handler)
    return logger
