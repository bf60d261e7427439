"""What a scoring script sees in its worker process (spec A2, A3): environment, working folder, imports,
logging, arguments, and its stdout/stderr in the job's logs."""

from __future__ import annotations

import json
import time
from pathlib import Path

from batchpoint.runtime.coordinator import run_job
from tests.runtime.conftest import Kit, committed_before_shutdown_ended

INSPECT = """
    import json, logging, os, sys
    from pathlib import Path

    import helper  # a sibling module in the code folder

    def init():
        Path("relative.txt").write_text("written in the working folder")
        print("init says hello")
        print("to stderr", file=sys.stderr)
        logging.getLogger("score").debug("a debug line")
        logging.getLogger("score").info("an info line")

    def run(mini_batch):
        seen = {
            "cwd": os.getcwd(),
            "relative": os.path.abspath("relative.txt"),
            "model": os.environ.get("AZUREML_MODEL_DIR"),
            "output": os.environ["AZUREML_BI_OUTPUT_PATH"],
            "custom": os.environ["CUSTOM_SETTING"],
            "helper": helper.VALUE,
            "level": logging.getLogger().level,
            "argv": sys.argv,
            "batch": mini_batch,
        }
        return [json.dumps(seen)]

    def shutdown():
        Path(os.environ["AZUREML_BI_OUTPUT_PATH"], "shutdown-called").write_text(str(os.getpid()))
"""


def test_the_script_runs_with_its_environment_a_private_working_folder_and_its_code_folder_importable(kit: Kit) -> None:
    (single,) = kit.inputs("a.txt")
    kit.script(INSPECT)
    kit.script("VALUE = 42\n", name="helper.py")
    model = kit.root / "model"
    model.mkdir()

    outcome = kit.run(model_dir=model, environment_variables={"CUSTOM_SETTING": "on"}, logging_level="Debug")

    assert outcome.status == "Completed"
    assert (outcome.counts.items_failed, kit.tries()) == (0, [1])
    seen = json.loads(kit.predictions() or "")
    assert seen["model"] == str(model)
    assert seen["output"] == str(kit.output_dir)
    assert seen["custom"] == "on"
    assert seen["helper"] == 42
    assert seen["batch"] == [str(single)]
    assert seen["relative"] == str(Path(seen["cwd"], "relative.txt"))
    assert not seen["cwd"].startswith(str(kit.root))
    assert not Path(seen["cwd"]).exists()  # removed with its worker
    assert seen["level"] == 10
    assert seen["argv"][1:] == [
        "--logging_level", "DEBUG",
        "--mini_batch_size", "2",
        "--output", str(kit.output_dir),
        "--output_action", "append_row",
    ]  # fmt: skip
    stdout = kit.log("user/stdout/0/process000.stdout.txt")
    assert "init says hello" in stdout and "DEBUG score: a debug line" in stdout
    assert kit.log("user/stderr/0/process000.stderr.txt") == "to stderr\n"
    assert (kit.output_dir / "shutdown-called").exists()


def test_logging_level_filters_the_script_log(kit: Kit) -> None:
    kit.inputs("a.txt")
    kit.script(INSPECT)
    kit.script("VALUE = 1\n", name="helper.py")

    kit.run(environment_variables={"CUSTOM_SETTING": "x"}, logging_level="Warning")

    stdout = kit.log("user/stdout/0/process000.stdout.txt")
    assert "init says hello" in stdout and "an info line" not in stdout and "a debug line" not in stdout
    assert json.loads(kit.predictions() or "")["model"] is None


def test_a_missing_scoring_script_fails_the_job_at_once(kit: Kit) -> None:
    kit.inputs("a.txt")

    outcome = kit.run(scoring_script="nowhere.py")

    assert outcome.status == "Failed"
    assert "nowhere.py' does not exist" in outcome.message
    assert "nowhere.py" in kit.log("job_result.txt")


def test_the_output_is_in_place_before_the_workers_shut_down(kit: Kit) -> None:
    """The predictions file does not wait for the workers' `shutdown()` and exit (a third of a second at the end
    of every job of torch workers)."""
    assert committed_before_shutdown_ended(kit, kit.executor()) == [True, True]


def test_shutdown_runs_once_per_worker_and_a_hanging_one_is_cut_off(kit: Kit) -> None:
    kit.inputs("a.txt", "b.txt", "c.txt", "d.txt")
    kit.script(
        """
        import os, time
        from pathlib import Path

        def run(mini_batch):
            time.sleep(0.2)
            return mini_batch

        def shutdown():
            Path(os.environ["MARKERS"], f"shutdown-{os.getpid()}").touch()
            time.sleep(60)
        """
    )
    started = time.monotonic()

    spec = kit.spec(mini_batch_size=1, max_concurrency_per_instance=2)
    outcome = run_job(spec, kit.ledger, kit.executor(shutdown_grace_seconds=1))

    assert outcome.status == "Completed"
    assert time.monotonic() - started < 10
    assert len(list(kit.markers.glob("shutdown-*"))) == 2
