"""Cells of a study: one per (data set, architecture, training-set size, initialisation), pre-training first."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from resnet3d.study.spec import GridRow, StudyError, StudySpec

SCRATCH = "scratch"


@dataclass(frozen=True)
class Cell:
    """One training run of the study."""

    name: str  # <data>-<arch>-<size>-<init>, also the run folder's name under <study>/runs
    data: str
    arch: str
    size: float | int  # fraction of every class (float) or videos per class (int)
    init: str  # "scratch", or "ft-<data set | cell | checkpoint stem>"
    source: str | None = None  # the cell this one fine-tunes from
    checkpoint: str | None = None  # or the checkpoint file it fine-tunes from
    overrides: tuple[str, ...] = field(default_factory=tuple)

    @property
    def scratch(self) -> bool:
        """True for a cell trained from random weights."""
        return self.source is None and self.checkpoint is None


def size_label(size: float | int) -> str:
    """`100pct`, `25pct` for fractions; `10vpc` for videos per class (file-name safe)."""
    if isinstance(size, float):
        return f"{size * 100:g}pct".replace(".", "p")
    return f"{size}vpc"


def _size_key(size: float | int) -> tuple[int, float]:
    return (1, size) if isinstance(size, float) else (0, size)


def plan_cells(spec: StudySpec) -> list[Cell]:
    """Every cell of the grid, each after the cells it fine-tunes from (otherwise in the file's order)."""
    scratch = [c for row in spec.grid for c in _row_cells(row, None, spec) if c.scratch]
    by_name = {c.name: c for c in scratch}
    cells = list(scratch)
    for row in spec.grid:
        for cell in _row_cells(row, by_name, spec):
            if cell.scratch:
                continue
            if cell.source is not None and cell.source not in by_name:
                raise StudyError(f"{spec.where}: cell {cell.name} fine-tunes from {cell.source}, which is not a "
                                 "scratch cell of this study")
            cells.append(cell)
    names = [c.name for c in cells]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise StudyError(f"{spec.where}: cell {duplicate} appears twice in the grid")
    return cells


def _row_cells(row: GridRow, scratch: dict[str, Cell] | None, spec: StudySpec) -> list[Cell]:
    """The cells of one grid row; with `scratch` None only its scratch cells (fine-tune ones need them known)."""
    out = []
    for arch in row.archs:
        for size in row.sizes:
            for init in row.init:
                if init == SCRATCH:
                    name = f"{row.data}-{arch}-{size_label(size)}-{SCRATCH}"
                    out.append(Cell(name, row.data, arch, size, SCRATCH, overrides=tuple(row.overrides)))
                elif scratch is not None:
                    source, checkpoint, label = _resolve_init(init, arch, scratch, spec)
                    name = f"{row.data}-{arch}-{size_label(size)}-ft-{label}"
                    out.append(Cell(name, row.data, arch, size, f"ft-{label}", source, checkpoint,
                                    tuple(row.overrides)))
    return out


def _resolve_init(init: str, arch: str, scratch: dict[str, Cell], spec: StudySpec) -> tuple[str | None, str | None, str]:
    """(source cell, checkpoint file, label) of a fine-tune init: a data set name (the same arch's scratch cell on
    its largest size there), a cell name, or a checkpoint file."""
    if init in spec.data:
        mine = [c for c in scratch.values() if c.data == init and c.arch == arch]
        if not mine:
            raise StudyError(f"{spec.where}: init {init!r} for {arch}: no scratch {arch} cell on {init} to "
                             "fine-tune from")
        return max(mine, key=lambda c: _size_key(c.size)).name, None, init
    if init in scratch:
        if scratch[init].arch != arch:
            raise StudyError(f"{spec.where}: init {init!r} is a {scratch[init].arch} cell; a {arch} cell cannot "
                             "fine-tune from it")
        return init, None, init
    if Path(init).suffix in (".pth", ".pt", ".tar"):
        return None, init, Path(init).stem.replace(".", "_")
    raise StudyError(f"{spec.where}: init {init!r}: expected 'scratch', a data set ({', '.join(spec.data)}), a "
                     "cell name of this study, or a checkpoint file (.pth)")
