"""modelops-training."""
