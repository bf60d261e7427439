"""Python environments per deployment: what a deployment asks for (`spec`) and the cache that builds it (`cache`).

An environment version's conda file, or an MLflow model's own `conda.yaml`, `python_env.yaml` or
`requirements.txt`, resolves to an `EnvironmentSpec` (pip requirements plus the Python version asked for).
`EnvironmentCache` turns a spec into a virtual environment, built once per spec hash and shared.
"""
