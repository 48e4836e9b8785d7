"""Shared fixtures for the demo tests: the tiny synthetic data set, generated once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from resnet3d.data.synth import generate_dataset


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """The tiny synthetic data set (seed 0) written in one process."""
    root = tmp_path_factory.mktemp("synth_tiny")
    generate_dataset(root, "tiny", seed=0, workers=1, progress=False)
    return root
