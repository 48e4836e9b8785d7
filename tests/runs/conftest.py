"""Fixtures for the run-folder, checkpoint-option and banner tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from runs_helpers import make_videos


@pytest.fixture(scope="session")
def run_index(tmp_path_factory) -> Path:
    """3 classes x 2 training and x 1 validation videos (8 frames, 24x24)."""
    return make_videos(tmp_path_factory.mktemp("run_videos"), {"training": 2, "validation": 1})
