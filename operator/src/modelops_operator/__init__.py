"""modelops-operator."""
