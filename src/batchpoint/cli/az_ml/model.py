"""``batchpoint model create|show|list``, as ``az ml model``."""

from __future__ import annotations

from batchpoint.cli.az_ml.assets import AssetKind, add_asset_verbs
from batchpoint.cli.az_ml.sdk import group

app = group("Models: register, show and list model versions.")
add_asset_verbs(app, AssetKind("load_model", "models", from_options=True))
