"""A job's status, spelled as Azure ML's job statuses are on the wire (`JobStatus` of the 2025-12-01 API).

The one place job states are named: the runtime's outcomes, the runner's writes, the store's `jobs.status` column,
the CLI and the web page all use these. Members are `str`s, so they compare equal to, and serialize as, the strings
stored in job bodies.
"""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    NOT_STARTED = "NotStarted"
    QUEUED = "Queued"
    PREPARING = "Preparing"
    STARTING = "Starting"
    RUNNING = "Running"
    FINALIZING = "Finalizing"
    CANCEL_REQUESTED = "CancelRequested"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"
    NOT_RESPONDING = "NotResponding"
    PAUSED = "Paused"
    UNKNOWN = "Unknown"


TERMINAL: frozenset[JobStatus] = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED})
"""The states a job never leaves. Holds the members, which hash as their strings, so a status read from a stored
body (a plain `str`) can be looked up directly."""
