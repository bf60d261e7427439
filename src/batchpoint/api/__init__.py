"""HTTP layer: routes, authentication, api-version checks and ARM error mapping."""
