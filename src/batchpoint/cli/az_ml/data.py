"""``batchpoint data create|show|list``, as ``az ml data``."""

from __future__ import annotations

from batchpoint.cli.az_ml.assets import AssetKind, add_asset_verbs
from batchpoint.cli.az_ml.sdk import group

app = group("Data assets: register, show and list versions.")
add_asset_verbs(app, AssetKind("load_data", "data", from_options=True))
