"""The precision and compile choices the commands and the training config accept (kept free of torch imports)."""

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
COMPILE_CHOICES = ("auto", "on", "off")  # compile_policy.py says what auto means
