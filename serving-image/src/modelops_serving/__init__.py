"""modelops-serving."""
