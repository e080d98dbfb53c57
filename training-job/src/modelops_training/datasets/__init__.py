"""Package data: the bundled CSV datasets (see README.md)."""
