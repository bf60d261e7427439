"""The batch runtime: lists a job's input, runs the scoring script on mini-batches in worker processes and
writes the output exactly once, resuming after a crash of the server.

- `spec.JobSpec`: what a job runs; `coordinator.run_job`: runs or resumes it and returns a `report.JobOutcome`.
- `ledger.Ledger`: the durable record of mini-batches and tries; `ledger.InMemoryLedger` implements it.
- `executor.Executor`: the seam to the workers; `local.LocalProcessExecutor` is the local process pool whose
  processes run `worker`.
- `output`: the exactly-once output and `check_output_available` (Decision 10); `inputs`: listing, planning.

This module imports nothing, so that a worker process (`python -m batchpoint.runtime.worker`) starts without
loading the coordinator's modules.
"""
