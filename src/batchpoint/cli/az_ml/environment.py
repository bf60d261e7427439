"""``batchpoint environment create|show|list``, as ``az ml environment``."""

from __future__ import annotations

from batchpoint.cli.az_ml.assets import AssetKind, add_asset_verbs
from batchpoint.cli.az_ml.sdk import group

app = group("Environments: register, show and list versions.")
add_asset_verbs(app, AssetKind("load_environment", "environments", from_options=False))
