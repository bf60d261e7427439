"""``batchpoint data create``: register data assets."""

from __future__ import annotations

from batchpoint.cli.common import Home, Url
from batchpoint.cli.sdk import Sets, YamlFile, group, register

app = group("Register data assets from az ml YAML files.")


@app.command("create")
def data_create(file: YamlFile, set_: Sets = None, url: Url = None, home: Home = None) -> None:
    """Register a data asset version (a local path: is uploaded)."""
    register("load_data", "data", file, set_, url, home)
