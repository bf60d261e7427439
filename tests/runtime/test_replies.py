"""A scoring script that writes into its worker's reply pipe (`runtime/replies.py`): its worker is stopped as one
that crashed, and the job goes on; on Ray in test_ray_executor.py."""

from __future__ import annotations

import pytest

from tests.runtime.conftest import WRITES_INTO_ITS_PIPE, Kit, bad_reply_variables, lines


@pytest.mark.parametrize("bad", ["not json", "a stranger's index", "no timing", "negative rows", "deep"])
def test_a_bad_reply_in_run_costs_its_mini_batch_a_try_and_the_job_goes_on(kit: Kit, bad: str) -> None:
    kit.inputs("a.txt", "b.txt")
    kit.script(WRITES_INTO_ITS_PIPE)

    outcome = kit.run(mini_batch_size=1, max_retries=0, environment_variables=bad_reply_variables(kit, bad, "run"))

    kit.check(outcome, "Completed", 1, [1, 1], lines("b.txt"))
    assert "wrote into the pipe batchpoint reads its answers from" in kit.log("job_error.txt")


def test_a_bad_reply_in_init_is_a_failed_init_and_costs_no_try(kit: Kit) -> None:
    kit.inputs("a.txt", "b.txt")
    kit.script(WRITES_INTO_ITS_PIPE)

    outcome = kit.run(mini_batch_size=1, environment_variables=bad_reply_variables(kit, "not json", "init"))

    kit.check(outcome, "Completed", 0, [1, 1], lines("a.txt", "b.txt"))
