"""Constants shared by the inference tests (a module with a unique name: `conftest` names clash across folders)."""

CLASSES = ["left", "right", "still"]
