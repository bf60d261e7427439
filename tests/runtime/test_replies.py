"""A scoring script that writes into its worker's reply pipe (`runtime/replies.py`): its worker is stopped as one
that crashed, and the job goes on; on Ray in test_ray_executor.py."""

from __future__ import annotations

import pytest

from tests.runtime.conftest import WRITES_INTO_ITS_PIPE, Kit, bad_reply_variables, lines

IN_RUN = [
    "not json",
    "deep",
    "a list for a kind",
    "a stranger's index",
    "no timing",
    "a timing of NaN",
    "a timing of 400 digits",
    "negative rows",
    "ready again",
    "init_failed in run()",
]


@pytest.mark.parametrize("bad", IN_RUN)
def test_a_bad_reply_in_run_costs_its_mini_batch_a_try_and_the_job_goes_on(kit: Kit, bad: str) -> None:
    kit.inputs("a.txt", "b.txt")
    kit.script(WRITES_INTO_ITS_PIPE)

    outcome = kit.run(mini_batch_size=1, max_retries=0, environment_variables=bad_reply_variables(kit, bad, "run"))

    kit.check(outcome, "Completed", 1, [1, 1], lines("b.txt"))
    assert "wrote into the pipe batchpoint reads its answers from" in kit.log("job_error.txt")
    assert "wrote into the pipe" in kit.log("sys/node/0/_main.txt")


@pytest.mark.parametrize("bad", ["not json", "done in init()"])
def test_a_bad_reply_in_init_is_a_failed_init_and_costs_no_try(kit: Kit, bad: str) -> None:
    kit.inputs("a.txt", "b.txt")
    kit.script(WRITES_INTO_ITS_PIPE)

    outcome = kit.run(mini_batch_size=1, environment_variables=bad_reply_variables(kit, bad, "init"))

    kit.check(outcome, "Completed", 0, [1, 1], lines("a.txt", "b.txt"))


def test_a_reply_that_claims_more_than_it_sends_times_out_and_the_job_goes_on(kit: Kit) -> None:
    """The executor does not wait for the rest (before, its thread did, for ever: the job could not even be
    canceled); the try runs out its time limit."""
    kit.inputs("a.txt", "b.txt")
    kit.script(WRITES_INTO_ITS_PIPE)
    variables = bad_reply_variables(kit, "a length it does not send", "run")

    outcome = kit.run(mini_batch_size=1, max_retries=0, timeout_seconds=2, environment_variables=variables)

    kit.check(outcome, "Completed", 1, [1, 1], lines("b.txt"))
    assert "did not finish mini-batch 0 within 2 seconds" in kit.log("job_error.txt")


def test_a_reply_before_a_length_that_is_no_frames_is_taken_and_the_worker_stopped(kit: Kit) -> None:
    """What came whole before the bad length counts (here the script's own answer for its mini-batch, which it may
    give); then its worker is stopped, and the next mini-batch starts on another."""
    kit.inputs("a.txt", "b.txt")
    kit.script(WRITES_INTO_ITS_PIPE)
    variables = bad_reply_variables(kit, "its own done, then a length that is no frame's", "run")

    outcome = kit.run(mini_batch_size=1, max_retries=0, timeout_seconds=5, environment_variables=variables)

    kit.check(outcome, "Completed", 0, [1, 1], lines("a.txt", "b.txt"))
    assert "a frame of length -5" in kit.log("sys/node/0/_main.txt")


def test_a_result_larger_than_many_reads_of_the_pipe_arrives_whole(kit: Kit) -> None:
    """40 MB of rows: more than the pipe holds and than one pass of the executor reads (16 MB), so the frame is
    assembled over many wake-ups, beside a second worker's small answers."""
    kit.inputs("big.txt", "a.txt", "b.txt")
    kit.script("""
        import os

        def run(mini_batch):
            name = os.path.basename(mini_batch[0])
            return [f"{name} {index:07d} " + "x" * 190 for index in range(200_000 if name == "big.txt" else 2)]
    """)

    outcome = kit.run(mini_batch_size=1, max_concurrency_per_instance=2)

    assert outcome.status == "Completed", outcome.message
    rows = (kit.output_dir / "predictions.csv").read_text().splitlines()
    assert len(rows) == 200_004
    big = [row for row in rows if row.startswith("big.txt")]
    assert [row.split()[1] for row in big] == [f"{index:07d}" for index in range(200_000)]


def test_a_reply_over_1_gib_stops_its_worker_at_once_saying_to_return_less(kit: Kit) -> None:
    kit.inputs("a.txt", "b.txt")
    kit.script(WRITES_INTO_ITS_PIPE)
    variables = bad_reply_variables(kit, "a length over 1 GiB", "run")

    outcome = kit.run(mini_batch_size=1, max_retries=0, environment_variables=variables)

    kit.check(outcome, "Completed", 1, [1, 1], lines("b.txt"))
    error = kit.log("job_error.txt")
    assert "a reply of 2,147,483,647 bytes, more than the 1,073,741,824 a reply may hold" in error
    assert "return smaller results" in error
