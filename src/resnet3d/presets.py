"""YAML files given by path or by the name of a preset shipped as package data (training recipes, studies)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from resnet3d.errors import Resnet3dError


def preset_names(package: str, folder: str) -> list[str]:
    """Names of the `*.yaml` presets shipped in `package/folder`."""
    root = resources.files(package) / folder
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def read_yaml(path_or_name: str | Path, package: str, folder: str, what: str,
              error: type[Resnet3dError]) -> tuple[object, str]:
    """The parsed YAML of a file, else of the shipped preset of that name, and where it came from (for messages)."""
    path = Path(path_or_name)
    if path.is_file():
        text, where = path.read_text(encoding="utf-8"), str(path)
    else:
        preset = resources.files(package) / folder / f"{path_or_name}.yaml"
        if not preset.is_file():
            raise error(f"{what} {str(path_or_name)!r}: no such file, and not a shipped preset "
                        f"(presets: {', '.join(preset_names(package, folder))})")
        text, where = preset.read_text(encoding="utf-8"), f"preset {path_or_name}"
    try:
        return yaml.safe_load(text), where
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise error(f"{where}{line}: not valid YAML ({getattr(e, 'problem', e)})") from None
