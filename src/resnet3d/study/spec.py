"""Study files: a YAML grid of training runs (recipes, data sets, axes, findings thresholds), and shipped presets."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resnet3d import presets
from resnet3d.errors import Resnet3dError

TRAIN_SECTIONS = ("model", "data", "optim", "schedule", "run")
DATA_KEYS = ("index", "root", "format", "split")


class StudyError(Resnet3dError, ValueError):
    """A bad study file or study folder (the message names the file and the key)."""


@dataclass
class Recipe:
    """A training config (file or shipped preset) with `section.key=value` overrides on top."""

    config: str | None = None
    overrides: list[str] = field(default_factory=list)


@dataclass
class DataSpec:
    """One data set of the study: an index (any format `read_index` reads) or a generated synthetic set."""

    name: str
    index: str | None = None
    root: str | None = None
    format: str | None = None
    split: int = 1
    synth: dict | None = None  # SynthSize fields plus `classes`: the study generates it under <study>/data/<name>
    nominal: dict = field(default_factory=dict)  # videos per subset (and classes) for --dry-run without the index
    overrides: list[str] = field(default_factory=list)  # training overrides for every cell on this data set


@dataclass
class GridRow:
    """Architectures x training-set sizes x initialisations on one data set."""

    data: str
    archs: list[str]
    sizes: list[float | int]  # float in (0, 1]: fraction of each class; int: videos per class
    init: list[str]  # "scratch", or a data set / cell name / checkpoint file to fine-tune from
    overrides: list[str] = field(default_factory=list)


@dataclass
class Findings:
    """Which cells answer the paper's questions, and the thresholds (in accuracy points)."""

    reference: str = "resnet18"  # the arch of findings (i) and (iii)
    large: str | None = None  # the data set that is large enough
    small: list[str] = field(default_factory=list)
    depth: list[str] = field(default_factory=list)  # archs from the shallowest to the deepest
    overfit_gap_points: float = 15.0
    depth_tolerance_points: float = 1.0
    finetune_gain_points: float = 10.0


@dataclass
class StudySpec:
    """The whole study definition."""

    name: str
    seed: int
    recipe: Recipe
    finetune: Recipe
    data: dict[str, DataSpec]
    grid: list[GridRow]
    findings: Findings
    overrides: list[str] = field(default_factory=list)  # training overrides for every cell (command line)
    where: str = "study"


def preset_names() -> list[str]:
    """Names of the studies shipped under resnet3d/study/presets."""
    return presets.preset_names("resnet3d.study", "presets")


def load_study(path_or_preset: str | Path, overrides: list[str] = ()) -> StudySpec:
    """Read a study file or shipped preset; `name.key=value` overrides set a data set's key, `section.key=value`
    overrides go to every cell's training config."""
    doc, where = presets.read_yaml(path_or_preset, "resnet3d.study", "presets", "study", StudyError)
    doc = {} if doc is None else doc
    spec = parse_study(doc, where)
    apply_overrides(spec, overrides)
    return spec


def parse_study(doc: Any, where: str) -> StudySpec:
    """A StudySpec from the parsed YAML mapping, checked key by key."""
    d = _mapping(doc, where, "the study", ("name", "seed", "recipe", "finetune", "data", "grid", "findings"))
    data = {name: _data_spec(name, v, where) for name, v in _mapping(d.get("data"), where, "data").items()}
    if not data:
        raise StudyError(f"{where}: data: expected at least one data set")
    grid = [_grid_row(i, row, where, data) for i, row in enumerate(_list(d.get("grid")))]
    if not grid:
        raise StudyError(f"{where}: grid: expected at least one row")
    seed = d.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise StudyError(f"{where}: seed: expected a non-negative integer, got {seed!r}")
    f = _mapping(d.get("findings", {}), where, "findings", tuple(Findings.__dataclass_fields__))
    return StudySpec(name=str(d.get("name") or Path(where).stem), seed=seed,
                     recipe=_recipe(d.get("recipe", {}), where, "recipe"),
                     finetune=_recipe(d.get("finetune", {"config": "finetune"}), where, "finetune"),
                     data=data, grid=grid, findings=Findings(**f), where=where)


def apply_overrides(spec: StudySpec, overrides: list[str]) -> None:
    """`<data set>.<key>=value` sets a data set's index/root/format/split; `section.key=value` goes to every cell."""
    for item in overrides:
        key, sep, value = item.partition("=")
        head, _, tail = key.partition(".")
        if not sep or not tail:
            raise StudyError(f"override {item!r}: expected <data set>.index=PATH or section.key=value")
        if head in TRAIN_SECTIONS:
            spec.overrides.append(item)
        elif head in spec.data and tail in DATA_KEYS:
            setattr(spec.data[head], tail, int(value) if tail == "split" else (value or None))
        else:
            raise StudyError(f"override {item!r}: {head!r} is neither a data set of {spec.where} "
                             f"({', '.join(spec.data)}) with a key of {', '.join(DATA_KEYS)}, nor a training "
                             f"section ({', '.join(TRAIN_SECTIONS)})")


def _mapping(value: Any, where: str, what: str, keys: tuple[str, ...] | None = None) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise StudyError(f"{where}: {what}: expected a mapping, got {value!r}")
    unknown = [k for k in value if keys is not None and k not in keys]
    if unknown:
        raise StudyError(f"{where}: {what}: unknown key {unknown[0]!r}; expected {', '.join(keys)}")
    return value


def _list(value: Any) -> list:
    """A YAML value as a list (a single item becomes a one-item list)."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _strings(value: Any, where: str, what: str) -> list[str]:
    items = _list(value)
    if any(not isinstance(v, str) for v in items):
        raise StudyError(f"{where}: {what}: expected a list of strings, got {value!r}")
    return items


def _recipe(value: Any, where: str, what: str) -> Recipe:
    d = _mapping(value, where, what, ("config", "overrides"))
    return Recipe(d.get("config"), _strings(d.get("overrides"), where, f"{what}.overrides"))


def _data_spec(name: str, value: Any, where: str) -> DataSpec:
    if name in TRAIN_SECTIONS or not str(name).replace("_", "").replace("-", "").isalnum():
        raise StudyError(f"{where}: data: {name!r} cannot name a data set (letters, digits, - and _; not "
                         f"{', '.join(TRAIN_SECTIONS)})")
    d = _mapping(value, where, f"data.{name}", ("index", "root", "format", "split", "synth", "nominal", "overrides"))
    return DataSpec(name=name, index=d.get("index"), root=d.get("root"), format=d.get("format"),
                    split=int(d.get("split", 1)), synth=d.get("synth"),
                    nominal=_mapping(d.get("nominal"), where, f"data.{name}.nominal"),
                    overrides=_strings(d.get("overrides"), where, f"data.{name}.overrides"))


def _grid_row(i: int, value: Any, where: str, data: dict[str, DataSpec]) -> GridRow:
    what = f"grid[{i}]"
    d = _mapping(value, where, what, ("data", "archs", "sizes", "init", "overrides"))
    if d.get("data") not in data:
        raise StudyError(f"{where}: {what}.data: expected one of {', '.join(data)}, got {d.get('data')!r}")
    sizes = _list(d.get("sizes", [1.0]))
    for s in sizes:
        ok = (isinstance(s, float) and 0 < s <= 1) or (isinstance(s, int) and not isinstance(s, bool) and s >= 1)
        if not ok:
            raise StudyError(f"{where}: {what}.sizes: {s!r} is neither a fraction in (0, 1] (e.g. 0.25, 1.0) nor a "
                             "number of videos per class (e.g. 10)")
    archs = _strings(d.get("archs"), where, f"{what}.archs")
    if not archs:
        raise StudyError(f"{where}: {what}.archs: expected at least one architecture")
    return GridRow(data=d["data"], archs=archs, sizes=sizes, init=_strings(d.get("init", ["scratch"]), where,
                   f"{what}.init"), overrides=_strings(d.get("overrides"), where, f"{what}.overrides"))
