"""The worker sandbox (docs/security.md): scoring code, pipeline steps and environment builds reach only their own
job's files.

- `landlock`: the Landlock system calls through ctypes; `confine.enter(policy)`: everything a process does to
  itself to enter the sandbox (namespaces, privileges, keyring, Landlock). Both are standard library only and run
  on Python 3.8, in the deployment's own interpreter.
- `boot`: how a Python worker starts (`BASE_PYTHON -I -S boot.py worker R W`): it enters the sandbox itself, then
  runs the worker; or any other command (`python -I -S boot.py exec FILE -- COMMAND...`).
- `policy`: what the server grants each job (paths, environment, user), and what the kernel supports.

`runtime/spawn.py` is where sandboxed processes are started.

Like its parent, this package imports nothing when imported.
"""
