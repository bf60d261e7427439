"""What Azure ML's runtime gives scoring scripts to import (`azureml_user.parallel_run`), put on each worker's path by
batchpoint's worker (docs/runtime.md, "EntryScript"). Standard library only, Python 3.8+."""
