"""The streamed log (`user_logs/std_log.txt`, what `jobs.stream` prints): the lines the workers print, copied as
they grow."""

from __future__ import annotations

from pathlib import Path

from batchpoint.runtime.logs import StreamLog, followed


def test_following_copies_complete_lines_only_and_the_end_copies_the_last_unended_one(tmp_path: Path) -> None:
    """Before, the end kept the unended line too: a script's last `sys.stdout.write` never reached the log."""
    source = tmp_path / "process000.stdout.txt"
    source.write_text("line one\nhalf a li")
    log = StreamLog(tmp_path / "std_log.txt", lambda: {"0/process000.stdout": source})

    with followed(log, interval=3600):
        log.collect()
        live = log.path.read_text()
        with open(source, "a") as file:
            file.write("ne\nlast words without newline")
        log.collect()
        completed = log.path.read_text()

    assert live == "[0/process000.stdout] line one\n"  # the half line waits for its end
    assert completed == live + "[0/process000.stdout] half a line\n"
    assert log.path.read_text() == completed + "[0/process000.stdout] last words without newline\n"
    log.collect()  # nothing twice
    assert log.path.read_text().count("last words") == 1
