"""What a deployment sets for its jobs: the schema's defaults fill what it leaves out (Decision 2)."""

from __future__ import annotations

from dataclasses import astuple
from pathlib import Path

import pytest

from batchpoint.arm.ids import workspace_id
from batchpoint.ml.endpoints.resource_types import BATCH_DEPLOYMENT_TYPE
from batchpoint.ml.endpoints.rules import JobSettings
from batchpoint.runtime.spec import JobSpec
from batchpoint.store.entities import Resource

DEPLOYMENT_ID = workspace_id("s", "g", "w") + "/batchEndpoints/e/deployments/d"


def settings_of(**properties: object) -> JobSettings:
    return JobSettings.of(Resource(id=DEPLOYMENT_ID, type=BATCH_DEPLOYMENT_TYPE, body={"properties": properties}))


def test_a_deployment_that_sets_nothing_gets_the_documented_defaults_which_are_the_runtimes_too() -> None:
    settings = settings_of()

    assert settings == JobSettings(
        mini_batch_size=10,
        instance_count=1,
        max_concurrency_per_instance=1,
        max_retries=3,
        timeout="PT30S",
        error_threshold=-1,
        output_action="AppendRow",
        output_file_name="predictions.csv",
        logging_level="Info",
    )
    spec = JobSpec(job_id="j", input_paths=[], output_dir=Path("out"))
    assert astuple(settings) == (
        spec.mini_batch_size,
        spec.instance_count,
        spec.max_concurrency_per_instance,
        spec.max_retries,
        f"PT{spec.timeout_seconds:.0f}S",
        spec.error_threshold,
        spec.output_action,
        spec.output_file_name,
        spec.logging_level,
    )


def test_what_a_deployment_sets_is_kept_and_a_partial_retry_setting_keeps_the_other_default() -> None:
    settings = settings_of(
        miniBatchSize=3,
        errorThreshold=5,
        outputAction="SummaryOnly",
        loggingLevel="Debug",
        resources={"instanceCount": 2},
        retrySettings={"maxRetries": 0},
    )

    assert (settings.mini_batch_size, settings.error_threshold, settings.output_action, settings.logging_level) == (
        3,
        5,
        "SummaryOnly",
        "Debug",
    )
    assert (settings.instance_count, settings.max_retries, settings.timeout) == (2, 0, "PT30S")


def test_a_job_spec_refuses_environment_variables_no_process_can_have() -> None:
    """A deployment stored before its PUT checked them (Decision 21) gets a 400 at invoke, not workers that die
    at their start with "exited with code 1"."""
    for variables, message in (({"A=B": "1"}, "name 'A=B' is not valid"), ({"A": "x\0y"}, "'A' has a NUL")):
        with pytest.raises(ValueError, match=message):
            JobSpec(job_id="j", input_paths=[], output_dir=Path("out"), environment_variables=variables)
    JobSpec(job_id="j", input_paths=[], output_dir=Path("out"), environment_variables={"A": "b=c\nd", "E": ""})
