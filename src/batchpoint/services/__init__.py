"""Resource rules and long-running operations, independent of HTTP."""
