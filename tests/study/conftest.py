"""The tiny study, run once per session in-process (seconds per cell), for the tests that read its outputs."""

from __future__ import annotations

import pytest

from resnet3d.study.runner import run_study
from resnet3d.study.spec import load_study

from study_helpers import TINY


@pytest.fixture(scope="session")
def tiny_done(tmp_path_factory):
    """(study folder, outcome, lines said) of a complete run of the tiny study."""
    out = tmp_path_factory.mktemp("tiny_study")
    said: list[str] = []
    outcome = run_study(load_study(TINY), out, progress=False, say=said.append)
    assert outcome.status == "finished"
    return out, outcome, said
