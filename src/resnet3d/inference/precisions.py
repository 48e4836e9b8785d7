"""The precision names every command and the training config accept; fast_path.py resolves and applies them."""

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
