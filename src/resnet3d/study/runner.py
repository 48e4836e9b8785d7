"""`resnet3d study`: plan the cells, prepare the data subsets, train each cell (skipping finished ones, resuming an
interrupted one), and collect the results into the study's files."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from resnet3d.data.index import VideoIndex
from resnet3d.io import atomic_write_json
from resnet3d.study import datasets as ds
from resnet3d.study.plan import Cell, plan_cells, size_label
from resnet3d.study.spec import StudyError, StudySpec, load_study
from resnet3d.study.subsets import class_counts
from resnet3d.study.training import LAST_CHECKPOINT, TrainConfig, cell_config, cell_scores, train_cell

RUNS_DIR = "runs"
CELL_FILE = "cell.json"


@dataclass
class PlannedCell:
    """A cell with its resolved training config and what it will cost."""

    cell: Cell
    config: TrainConfig
    train_videos: int | None
    val_videos: int | None
    gmacs_per_clip: float
    status: str  # done | partial | todo

    @property
    def cost_gmacs(self) -> float | None:
        """GMACs x clips x epochs (forward passes: one clip per training video, val_clips per validation video)."""
        if self.train_videos is None or self.val_videos is None:
            return None
        d = self.config.data
        return self.gmacs_per_clip * (self.train_videos + self.val_videos * d.val_clips) * self.config.schedule.epochs


@dataclass
class StudyOutcome:
    """What a `run_study` call did."""

    status: str  # finished | interrupted | dry-run
    cells: list[PlannedCell]
    trained: list[str] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    findings: list[dict] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    wall_time_s: float = 0.0


def cell_dir(study_dir: Path, name: str) -> Path:
    """The run folder of a cell."""
    return study_dir / RUNS_DIR / name


def cell_status(study_dir: Path, cell: Cell) -> str:
    """done (results written), partial (a checkpoint to resume from) or todo."""
    run = cell_dir(study_dir, cell.name)
    if (run / CELL_FILE).is_file():
        return "done"
    return "partial" if (run / LAST_CHECKPOINT).is_file() else "todo"


def build_config(spec: StudySpec, cell: Cell, study_dir: Path, index_path: Path | None) -> TrainConfig:
    """The cell's TrainConfig: recipe (scratch) or finetune recipe, then data set, grid row and command-line
    overrides; the study sets the architecture, weights, data subset and run folder."""
    from resnet3d.models.registry import model_options

    recipe = spec.recipe if cell.scratch else spec.finetune
    data = spec.data[cell.data]
    overrides = [f"run.seed={spec.seed}", *recipe.overrides, *data.overrides, *cell.overrides, *spec.overrides]
    config = cell_config(recipe.config, overrides, f"{spec.where}, cell {cell.name}")
    if cell.scratch:
        accepted = model_options(cell.arch)  # e.g. a 2D twin has no conv1_t_size: the shared options it lacks go
        config.model.arch = cell.arch
        config.model.options = {k: v for k, v in config.model.options.items() if k in accepted}
        config.model.pretrained = None
    else:
        source = cell_dir(study_dir, cell.source) / LAST_CHECKPOINT if cell.source else Path(cell.checkpoint)
        config.model.arch, config.model.options, config.model.pretrained = cell.arch, {}, str(source)
    config.data.index = str(index_path) if index_path else None
    config.data.format = config.data.root = None
    config.run.out_dir = str(cell_dir(study_dir, cell.name))
    if config.data.val_subset is None:
        raise StudyError(f"{spec.where}, cell {cell.name}: data.val_subset is null, but every cell is evaluated on it")
    return config


def _sizes(index: VideoIndex | None, spec: StudySpec, cell: Cell, val_subset: str) -> tuple[int | None, int | None]:
    """(training videos of the cell's subset, evaluation videos), from the index or the data set's nominal sizes."""
    from resnet3d.study.subsets import per_class_count

    if index is not None:
        train = sum(per_class_count(n, cell.size) for n in class_counts(index).values() if n)
        return train, len(index.subset(val_subset))
    nominal = spec.data[cell.data].nominal
    train, val, classes = nominal.get("training"), nominal.get(val_subset), nominal.get("classes")
    if train is not None:
        train = round(train * cell.size) if isinstance(cell.size, float) else (cell.size * classes if classes else None)
    return train, val


def _dry_index(spec: StudySpec, name: str) -> VideoIndex | None:
    """The index of a data set if it can be known without writing anything."""
    from resnet3d.data.annotations import read_index

    data = spec.data[name]
    if data.synth is not None:
        return ds.synth_index(data, spec.seed)
    if data.index is not None and Path(data.index).exists():
        return read_index(data.index, data.format, videos=data.root, split=data.split)
    return None


def plan_study(spec: StudySpec, study_dir: Path, indexes: dict[str, VideoIndex | None]) -> list[PlannedCell]:
    """Every cell in order with its config, data sizes, GMACs per clip and status."""
    from resnet3d.models.complexity import model_complexity

    planned: list[PlannedCell] = []
    for cell in plan_cells(spec):
        index = indexes.get(cell.data)
        config = build_config(spec, cell, study_dir, ds.subset_path(study_dir, cell.data, cell.size))
        train, val = _sizes(index, spec, cell, config.data.val_subset)
        classes = len(index.classes) if index is not None else spec.data[cell.data].nominal.get("classes", 400)
        d = config.data
        source = next((q for q in planned if q.cell.name == cell.source), None)
        options = config.model.options if cell.scratch else source.config.model.options if source else {}
        cost = model_complexity(cell.arch, num_classes=classes, frames=d.clip_length, size=d.input_size, **options)
        planned.append(PlannedCell(cell, config, train, val, cost.macs / 1e9, cell_status(study_dir, cell)))
    return planned


def run_study(spec: StudySpec, study_dir: str | Path, *, dry_run: bool = False, progress: bool = True,
              say=print) -> StudyOutcome:
    """Run (or, with `dry_run`, only plan) the whole study into `study_dir`."""
    from resnet3d.study.outputs import write_outputs

    start = time.perf_counter()
    study_dir = Path(study_dir)
    used = list(dict.fromkeys(c.data for c in plan_cells(spec)))
    if dry_run:
        return StudyOutcome("dry-run", plan_study(spec, study_dir, {n: _dry_index(spec, n) for n in used}))
    indexes = {n: ds.load_index(spec.data[n], study_dir, spec.seed, progress=progress) for n in used}
    planned = plan_study(spec, study_dir, indexes)
    for data, size in dict.fromkeys((p.cell.data, p.cell.size) for p in planned):
        ds.prepare_subset(indexes[data], study_dir, data, size, spec.seed)
    outcome = StudyOutcome("finished", planned)
    rows: dict[str, dict] = {}
    for i, p in enumerate(planned, 1):
        if p.status == "done":
            say(f"[{i}/{len(planned)}] {p.cell.name}: done, skipped")
            rows[p.cell.name] = read_cell(study_dir, p.cell.name)
            continue
        say(f"[{i}/{len(planned)}] {p.cell.name}: {'resuming' if p.status == 'partial' else 'training'}")
        p.config.run.progress = progress and p.config.run.progress
        summary = train_cell(p.config)
        outcome.trained.append(p.cell.name)
        if summary["status"] != "finished":
            outcome.status = "interrupted"
            break
        rows[p.cell.name] = cell_row(p, summary)
        if ds.is_main_process():
            atomic_write_json(cell_dir(study_dir, p.cell.name) / CELL_FILE, rows[p.cell.name])
        p.status = "done"
    if outcome.status == "finished":
        outcome.rows = [rows[p.cell.name] for p in planned]
        outcome.findings, outcome.files = write_outputs(spec, outcome.rows, study_dir, write=ds.is_main_process())
    outcome.wall_time_s = time.perf_counter() - start
    return outcome


def cell_row(p: PlannedCell, summary: dict) -> dict:
    """The cell's results (cell.json): what it is, what it cost, and its scores."""
    cell, scores, facts = p.cell, cell_scores(summary), summary["run"]
    gap = None if scores["val_clip_top1"] is None else scores["train_clip_top1"] - scores["val_clip_top1"]
    return {
        "name": cell.name, "data": cell.data, "arch": cell.arch, "size": size_label(cell.size), "size_value": cell.size,
        "train_videos": facts["videos"][p.config.data.train_subset], "init": cell.init, "source": cell.source,
        "checkpoint": cell.checkpoint, "params": facts["params"], "trainable_params": facts["trainable_params"],
        "gmacs_per_clip": facts["gmacs_per_clip"], "epochs": summary["epochs_done"], **scores, "gap": gap,
        "best_epoch": summary["best_epoch"], "best_val_video_top1": summary["best_video_top1"],
        "eval": {"subset": p.config.data.val_subset, "videos": facts["videos"][p.config.data.val_subset],
                 "clips_per_video": p.config.data.val_clips, "checkpoint": str(LAST_CHECKPOINT)},
        "wall_time_s": round(summary["wall_time_s"], 1),
        "run_dir": str(Path(RUNS_DIR) / cell.name),
        "curves": [{k: h.get(k) for k in ("epoch", "train_clip_top1", "val_clip_top1", "val_video_top1")}
                   for h in summary["history"]],
    }


def read_cell(study_dir: Path, name: str) -> dict:
    """A finished cell's results file."""
    path = cell_dir(study_dir, name) / CELL_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise StudyError(f"{path}: cannot read the cell's results ({e})") from None


def run_study_file(source: str, overrides: list[str], out: str | Path | None = None, *, dry_run: bool = False,
                   progress: bool = True) -> StudyOutcome:
    """Load a study file or preset with overrides and run it into `out` (default studies/<name>)."""
    spec = load_study(source, overrides)
    return run_study(spec, Path(out) if out else Path("studies") / spec.name, dry_run=dry_run, progress=progress,
                     say=_say if ds.is_main_process() else lambda text: None)


def _say(text: str) -> None:
    from tqdm import tqdm

    tqdm.write(text)
