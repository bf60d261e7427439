"""`azureml_user.parallel_run.EntryScript` in local workers (docs/runtime.md, "EntryScript"); on Python 3.8 in
test_older_python.py, on Ray in test_ray_executor.py."""

from __future__ import annotations

from tests.runtime.conftest import USES_ENTRY_SCRIPT, Kit, check_entry_script_logs, lines


def test_a_script_written_for_parallel_run_step_logs_to_its_processs_entry_script_log(kit: Kit) -> None:
    kit.inputs("a.txt", "b.txt", "c.txt", "d.txt")
    kit.script(USES_ENTRY_SCRIPT)

    outcome = kit.run(mini_batch_size=2, max_concurrency_per_instance=2)

    kit.check(outcome, "Completed", 0, [1, 1], lines(*["True True 2"] * 4))
    logs = kit.output_dir / "logs"
    check_entry_script_logs(logs, 2)
    own = sorted(path.name for path in (logs / "user" / "entry_script_log" / "0").glob("*_own.txt"))
    assert own and set(own) <= {"process000_own.txt", "process001_own.txt"}


STAND_IN = """
import logging


class EntryScript:
    \"\"\"What a user writes to run a ParallelRunStep script on their own machine.\"\"\"

    logger = logging.getLogger("stand-in")
    output_dir = working_dir = "."
    config: dict = {}
"""


def test_a_stand_in_for_entry_script_in_the_code_folder_gives_way_to_ours(kit: Kit) -> None:
    kit.inputs("a.txt", "b.txt")
    kit.script(USES_ENTRY_SCRIPT)
    package = kit.code_dir / "azureml_user"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "parallel_run.py").write_text(STAND_IN)

    outcome = kit.run(mini_batch_size=2)

    kit.check(outcome, "Completed", 0, [1], lines("True True 2", "True True 2"))
    check_entry_script_logs(kit.output_dir / "logs", 1)
