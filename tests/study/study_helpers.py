"""Helpers of the study tests: the tiny study file, variants of it, and reading a study folder."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

TINY = Path(__file__).with_name("tiny_study.yaml")


def variant(tmp_path: Path, name: str, **changes) -> Path:
    """A copy of the tiny study with top-level keys replaced (e.g. grid=...), written under tmp_path."""
    doc = yaml.safe_load(TINY.read_text(encoding="utf-8"))
    doc.update(changes)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def cell_files(study_dir: Path) -> dict[str, dict]:
    """Every runs/<cell>/cell.json of a study folder, by cell name."""
    return {p.parent.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(study_dir.glob("runs/*/cell.json"))}


def without_time(row: dict) -> dict:
    """A cell's results without its wall time (the only value a resumed run may change)."""
    return {k: v for k, v in row.items() if k != "wall_time_s"}
