"""Training, evaluation, inference and reporting."""
