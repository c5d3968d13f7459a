"""Browser fixtures (owned by the web engineer)."""
