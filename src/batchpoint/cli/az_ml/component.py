"""``batchpoint component create|show|list``, as ``az ml component``."""

from __future__ import annotations

from batchpoint.cli.az_ml.assets import AssetKind, add_asset_verbs
from batchpoint.cli.az_ml.sdk import group

app = group("Components: register, show and list versions.")
add_asset_verbs(app, AssetKind("load_component", "components", from_options=False))
