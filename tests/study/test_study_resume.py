"""A study stopped mid-cell resumes that cell exactly when run again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from resnet3d.study.runner import run_study
from resnet3d.study.spec import load_study

from study_helpers import cell_files, variant, without_time

CELL = "large-resnet10-100pct-scratch"


def test_a_stopped_cell_resumes_to_the_same_results(tmp_path):
    spec_path = variant(tmp_path, "one", grid=[{"data": "large", "archs": ["resnet10"], "sizes": [1.0]}],
                        recipe=_longer(load_recipe()))
    reference = run_study(load_study(spec_path), tmp_path / "reference", progress=False, say=lambda s: None)
    assert reference.trained == [CELL]

    study = tmp_path / "stopped"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "resnet3d", "study", str(spec_path), "--out", str(study), "--quiet"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        checkpoint = study / "runs" / CELL / "checkpoints" / "last.pth"
        deadline = time.monotonic() + 120
        while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)  # a preemption: the trainer saves where it is and the study stops
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, output[-3000:]
    assert not (study / "runs" / CELL / "cell.json").exists()

    said: list[str] = []
    resumed = run_study(load_study(spec_path), study, progress=False, say=said.append)
    assert said == [f"[1/1] {CELL}: resuming"] and resumed.trained == [CELL]
    assert without_time(cell_files(study)[CELL]) == without_time(cell_files(tmp_path / "reference")[CELL])


def load_recipe() -> dict:
    import yaml

    from study_helpers import TINY

    return yaml.safe_load(TINY.read_text())["recipe"]


def _longer(recipe: dict) -> dict:
    """Four epochs, a checkpoint every step: time to stop it after the first one."""
    return {**recipe, "overrides": [*recipe["overrides"], "schedule.epochs=4", "run.save_every_steps=1"]}
