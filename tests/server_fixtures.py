"""Live-server fixtures (owned by the serve engineer)."""
