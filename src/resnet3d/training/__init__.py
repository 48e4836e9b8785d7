"""Training: the loop, its config, LR schedule, distributed set-up, checkpoint state, logs and run folder."""
