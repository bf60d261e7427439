"""What run() returns and what lands in the output (Decisions 4, 6, 8, 9, 10)."""

from __future__ import annotations

import os

import pytest

from batchpoint.runtime.coordinator import run_job
from batchpoint.runtime.local import LocalProcessExecutor
from batchpoint.runtime.output import OutputExistsError, check_output_available
from batchpoint.runtime.report import Counts
from tests.runtime.conftest import ECHO, Kit, lines

NAMES = [f"f{index}.txt" for index in range(7)]


def test_list_results_are_written_one_per_line_grouped_per_mini_batch_in_input_order(kit: Kit) -> None:
    kit.inputs(*NAMES)
    kit.script(
        """
        import os, random, time

        def run(mini_batch):
            time.sleep(random.random() / 20)  # finish out of order
            rows = [f"{os.path.basename(path)} {open(path).read()}" for path in mini_batch]
            return rows + [("extra", len(mini_batch))]
        """
    )
    progress: list[Counts] = []

    outcome = run_job(
        kit.spec(max_concurrency_per_instance=2), kit.ledger, LocalProcessExecutor(), on_progress=progress.append
    )

    expected = lines(
        "f0.txt f0", "f1.txt f1", "('extra', 2)",
        "f2.txt f2", "f3.txt f3", "('extra', 2)",
        "f4.txt f4", "f5.txt f5", "('extra', 2)",
        "f6.txt f6", "('extra', 1)",
    )  # fmt: skip
    kit.check(outcome, "Completed", 0, [1, 1, 1, 1], expected)
    assert outcome.output_file == kit.output_dir / "predictions.csv"
    assert outcome.counts == Counts(4, 4, 0, 0, 7, 7, 0)
    assert progress[-1] == outcome.counts
    assert not (kit.output_dir / ".batchpoint").exists()
    assert "Status: Completed" in kit.log("job_result.txt")
    assert "Processed 4 of 4 mini batches in 0:00:0" in kit.overview()


def test_dataframe_results_are_space_delimited_without_header_or_index(kit: Kit) -> None:
    kit.inputs("a.csv", "b.csv", "c.csv")
    kit.script(
        """
        import os
        import pandas as pd

        def run(mini_batch):
            names = [os.path.basename(path) for path in mini_batch]
            return pd.DataFrame({"file": names, "score": [0.5] * len(names), "label": ["two words"] * len(names)})
        """
    )

    outcome = kit.run()

    kit.check(
        outcome,
        "Completed",
        0,
        [1, 1],
        lines('a.csv 0.5 "two words"', 'b.csv 0.5 "two words"', 'c.csv 0.5 "two words"'),
    )


def test_fewer_results_than_inputs_count_the_gap_as_failed_items(kit: Kit) -> None:
    kit.inputs(*NAMES[:5])
    kit.script(
        """
        import os

        def run(mini_batch):
            names = [os.path.basename(path) for path in mini_batch]
            return names[:1] if "f2.txt" in names else names
        """
    )

    outcome = kit.run()

    kit.check(outcome, "Completed", 1, [1, 1, 1], lines("f0.txt", "f1.txt", "f2.txt", "f4.txt"))
    assert outcome.counts.items_succeeded == 4
    assert [(batch.succeeded_items, batch.failed_items) for batch in kit.batches()] == [(2, 0), (1, 1), (1, 0)]
    assert "run() returned 1 rows for the 2 files of mini-batch 1" in outcome.message
    assert str(kit.input_dir / "f3.txt") in outcome.message


@pytest.mark.parametrize("returned", ["None", "tuple(mini_batch)", "(path for path in mini_batch)"])
def test_a_result_that_is_neither_list_nor_dataframe_fails_the_mini_batch(kit: Kit, returned: str) -> None:
    kit.inputs("a.txt")
    kit.script(f"def run(mini_batch):\n    return {returned}\n")

    outcome = kit.run(max_retries=1)

    kit.check(outcome, "Completed", 1, [2], "")
    assert "it must return a list or a pandas DataFrame" in outcome.message


def test_summary_only_writes_no_predictions_and_lets_the_script_write_its_own_files(kit: Kit) -> None:
    kit.inputs(*NAMES[:3])
    kit.script(
        """
        import os
        from pathlib import Path

        def run(mini_batch):
            for path in mini_batch:
                Path(os.environ["AZUREML_BI_OUTPUT_PATH"], Path(path).stem + ".out").write_text("scored")
            return mini_batch[:1]
        """
    )

    outcome = kit.run(output_action="SummaryOnly")

    kit.check(outcome, "Completed", 1, [1, 1], None)
    assert outcome.output_file is None
    assert outcome.counts.items_succeeded == 2
    assert sorted(path.name for path in kit.output_dir.iterdir()) == ["f0.out", "f1.out", "f2.out", "logs"]


def test_an_existing_output_file_is_refused_and_left_alone(kit: Kit) -> None:
    kit.inputs("a.txt")
    kit.script(ECHO)
    kit.output_dir.mkdir()
    (kit.output_dir / "predictions.csv").write_text("keep me\n")

    with pytest.raises(OutputExistsError, match="predictions.csv"):
        check_output_available(kit.spec())
    with pytest.raises(OutputExistsError):
        kit.run()

    assert kit.predictions() == "keep me\n"
    assert os.listdir(kit.output_dir) == ["predictions.csv"]
    assert kit.ledger.mini_batches("job") is None
    assert kit.run(output_action="SummaryOnly").status == "Completed"


def test_all_instances_times_concurrency_workers_run_in_parallel(kit: Kit) -> None:
    kit.inputs(*NAMES[:4])
    kit.script(
        """
        import os, time

        def run(mini_batch):
            time.sleep(1)
            return [os.getpid()]
        """
    )

    outcome = kit.run(mini_batch_size=1, instance_count=2, max_concurrency_per_instance=2)

    assert outcome.status == "Completed"
    assert len(set((kit.predictions() or "").split())) == 4
    logs = kit.output_dir / "logs" / "user"
    for stream in ("stdout", "stderr"):
        files = sorted(path.relative_to(logs / stream).as_posix() for path in (logs / stream).rglob("*.txt"))
        assert files == [f"{node}/process{number:03d}.{stream}.txt" for node in (0, 1) for number in (0, 1)]


def test_a_second_run_of_a_finished_job_changes_nothing(kit: Kit) -> None:
    kit.inputs(*NAMES[:3])
    kit.script(ECHO)
    first = kit.run()

    again = kit.run()

    kit.check(again, "Completed", 0, [1, 1], lines("f0.txt", "f1.txt", "f2.txt"))
    assert again.counts == first.counts


def test_a_remote_output_gets_the_files_of_a_completed_job_but_not_its_logs(kit: Kit) -> None:
    kit.inputs(*NAMES[:3])
    kit.script(
        """
        import os
        from pathlib import Path

        def run(mini_batch):
            folder = Path(os.environ["AZUREML_BI_OUTPUT_PATH"], "scores")
            folder.mkdir(exist_ok=True)
            for path in mini_batch:
                (folder / (Path(path).stem + ".out")).write_text("scored")
            return [os.path.basename(path) for path in mini_batch]
        """
    )
    remote = kit.root / "remote"
    (remote / "scores").mkdir(parents=True)
    spec = kit.spec(
        remote_output={"uri": "azureml://datastores/elsewhere/paths/x/", "protocol": "file", "path": str(remote)}
    )

    outcome = run_job(spec, kit.ledger, LocalProcessExecutor())

    assert outcome.status == "Completed", outcome.message
    published = sorted(str(path.relative_to(remote)) for path in remote.rglob("*") if path.is_file())
    assert published == ["predictions.csv", "scores/f0.out", "scores/f1.out", "scores/f2.out"]
    assert (remote / "predictions.csv").read_text() == lines(*NAMES[:3])
    assert run_job(spec, kit.ledger, LocalProcessExecutor()).status == "Completed"  # published once, left alone
