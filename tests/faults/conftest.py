"""Fixtures for the fault-injection tests: the tiny synthetic data set, made through the CLI once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from faults_helpers import cli


@pytest.fixture(scope="session")
def synth_index(tmp_path_factory) -> Path:
    """`resnet3d data synth DIR --size tiny`: 12 classes, 48 training / 12 validation / 24 testing videos."""
    root = tmp_path_factory.mktemp("synth") / "syn"
    done = cli("data", "synth", root, "--size", "tiny")
    assert done.returncode == 0, done.stderr
    return root / "index.json"
