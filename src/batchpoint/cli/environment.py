"""``batchpoint environment create``: register environments."""

from __future__ import annotations

from batchpoint.cli.common import Home, Url
from batchpoint.cli.sdk import Sets, YamlFile, group, register

app = group("Register environments from az ml YAML files.")


@app.command("create")
def environment_create(file: YamlFile, set_: Sets = None, url: Url = None, home: Home = None) -> None:
    """Register an environment version."""
    register("load_environment", "environments", file, set_, url, home)
