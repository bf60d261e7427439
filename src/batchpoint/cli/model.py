"""``batchpoint model create``: register models."""

from __future__ import annotations

from batchpoint.cli.common import Home, Url
from batchpoint.cli.sdk import Sets, YamlFile, group, register

app = group("Register models from az ml YAML files.")


@app.command("create")
def model_create(file: YamlFile, set_: Sets = None, url: Url = None, home: Home = None) -> None:
    """Register a model version (a local path: is uploaded)."""
    register("load_model", "models", file, set_, url, home)
