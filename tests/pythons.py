"""One ``PythonFinder`` for the test modules of a test process that ask for an interpreter: it probes each Python on
the machine once (a process each, about 16 a search), instead of once per module, two of which search at collection
in every test process."""

from __future__ import annotations

from batchpoint.runtime.environments.interpreters import PythonFinder

PYTHONS = PythonFinder()
