"""Training configuration: a typed tree of dataclasses read from YAML, with `section.key=value` overrides."""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from resnet3d.data.index import SUBSETS
from resnet3d.data.sampling import TEMPORAL_MODES
from resnet3d import presets
from resnet3d.errors import Resnet3dError
from resnet3d.inference.precisions import PRECISIONS
from resnet3d.normalization import PRESETS


class ConfigError(Resnet3dError, ValueError):
    """A bad training configuration value; the message starts with the key's dotted name."""


@dataclass
class ModelConfig:
    """Which network to train and where its starting weights come from."""

    arch: str | None = None  # None: resnet18, or model.pretrained's (original: --model + --model_depth)
    num_classes: int | None = None  # None: the number of classes in the index (original: --n_classes)
    options: dict = field(default_factory=dict)  # architecture options, e.g. widen_factor, conv1_t_size, shortcut
    pretrained: str | None = None  # anything load_model reads (original: --pretrain_path)
    pretrained_opts: str | None = None  # the original's opts.json for model.pretrained (default: one beside it)
    freeze_until: str | None = None  # first top-level module to train (original: --ft_begin_module)
    sync_bn: bool = False  # SyncBatchNorm under DDP (original: --batchnorm_sync)


@dataclass
class DataConfig:
    """Videos, clip sampling, augmentation and loading."""

    index: str | None = None  # anything read_index accepts (original: --annotation_path)
    root: str | None = None  # folder holding the videos, when not next to the index (original: --video_path)
    format: str | None = None  # annotation format; None: detected (hara JSON, our index, UCF-101/HMDB-51 lists, ...)
    split: int = 1  # UCF-101 / HMDB-51 split
    train_subset: str = "training"
    val_subset: str | None = "validation"  # None: no validation
    input_size: int = 112  # original: --sample_size
    clip_length: int = 16  # original: --sample_duration
    t_stride: int = 1  # original: --sample_t_stride
    train_temporal: str = "random"  # random | center | segments (original: --train_t_crop; segments: TSN-style)
    train_crop: str = "random"  # random | corner | center (original: --train_crop)
    crop_min_scale: float = 0.25  # original: --train_crop_min_scale
    crop_min_ratio: float = 0.75  # original: --train_crop_min_ratio
    hflip: bool = True  # original: --no_hflip inverted
    color_jitter: float = 0.0  # brightness/contrast/saturation strength; 0: off (the original's --colorjitter was a no-op)
    normalization: str | None = None  # kinetics | activitynet | 0.5 | hara2018 | flow; None: the pretrained model's, else kinetics (flow for flow data)
    value_scale: float = 1.0  # original: --value_scale
    val_clips: int = 3  # clips per validation video (original: --n_val_samples)
    batch_size: int = 128  # clips per optimizer step, all processes and accumulation steps together
    val_batch_size: int = 0  # videos per validation batch and process; 0: batch_size // val_clips
    workers: int = 4  # DataLoader workers per process (original: --n_threads)
    cache_mb: int = 0  # keep up to this many MB of decoded videos in memory (small data sets; needs workers=0)


@dataclass
class OptimConfig:
    """Optimizer and loss."""

    name: str = "sgd"  # sgd | adamw
    lr: float = 0.1  # original: --learning_rate
    momentum: float = 0.9
    dampening: float = 0.0
    nesterov: bool = False
    weight_decay: float = 1e-3
    betas: list = field(default_factory=lambda: [0.9, 0.999])  # adamw only
    label_smoothing: float = 0.0
    accumulate: int = 1  # micro-batches per optimizer step
    clip_grad_norm: float = 0.0  # 0: no clipping
    mixup: float = 0.0  # mixup of whole clips: Beta(alpha, alpha) for lambda; 0: off
    cutmix: float = 0.0  # cutmix, one box on every frame of a clip: Beta alpha; 0: off
    mix_prob: float = 1.0  # chance that a micro-batch is mixed at all (with mixup or cutmix on)
    mix_switch_prob: float = 0.5  # with both on: chance of cutmix rather than mixup
    ema: float = 0.0  # decay per optimizer step of the weights' moving average (e.g. 0.999); 0: off


@dataclass
class ScheduleConfig:
    """Learning-rate schedule and run length."""

    name: str = "multistep"  # multistep | plateau | cosine (original: --lr_scheduler)
    epochs: int = 200  # original: --n_epochs
    milestones: list = field(default_factory=lambda: [50, 100, 150])  # epochs (original: --multistep_milestones)
    gamma: float = 0.1
    patience: int = 10  # plateau, on validation loss (original: --plateau_patience)
    warmup_epochs: float = 0.0  # linear warm-up from 0, per step (multistep and cosine)
    min_lr: float = 0.0  # cosine floor


@dataclass
class RunConfig:
    """Where results go and how the run executes."""

    out_dir: str = "runs/train"  # original: --result_path (created if missing)
    seed: int = 1  # original: --manual_seed
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (fp16: CUDA only)
    channels_last: bool = True  # channels_last_3d memory layout for model and clips
    compile: bool = False  # torch.compile the model (pays for long GPU runs, not for CPU training)
    resume: str | None = None  # run folder or checkpoint to continue from
    save_every_steps: int = 0  # also write last.pth every N optimizer steps; 0: once per epoch
    keep_last: int = 3  # epoch_NNN.pth files kept (original: --checkpoint); 0: none
    tensorboard: bool = True  # when the tensorboard package is installed
    progress: bool = True  # tqdm progress bars


@dataclass
class TrainConfig:
    """The whole training configuration."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict:
        """Plain nested dict (YAML/JSON-serialisable)."""
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        """The resolved configuration as YAML text."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


CHOICES: dict[str, tuple] = {
    "data.train_crop": ("random", "corner", "center"),
    "data.train_temporal": TEMPORAL_MODES,
    "data.normalization": (None, *PRESETS),
    "optim.name": ("sgd", "adamw"),
    "schedule.name": ("multistep", "plateau", "cosine"),
    "run.device": ("auto", "cpu", "cuda"),
    "run.precision": PRECISIONS,
    "data.train_subset": SUBSETS,
    "data.val_subset": (None, *SUBSETS),
}

# key -> (lowest allowed, whether the bound itself is allowed)
LOWER_BOUNDS: dict[str, tuple[float, bool]] = {
    "model.num_classes": (1, True), "data.split": (1, True), "data.input_size": (1, True), "data.clip_length": (1, True),
    "data.t_stride": (1, True), "data.crop_min_scale": (0, False), "data.crop_min_ratio": (0, False),
    "data.value_scale": (0, False), "data.color_jitter": (0, True), "data.val_clips": (1, True), "data.batch_size": (1, True),
    "data.val_batch_size": (0, True), "data.workers": (0, True), "data.cache_mb": (0, True), "optim.lr": (0, False),
    "optim.momentum": (0, True), "optim.dampening": (0, True), "optim.weight_decay": (0, True),
    "optim.label_smoothing": (0, True), "optim.accumulate": (1, True), "optim.clip_grad_norm": (0, True),
    "optim.mixup": (0, True), "optim.cutmix": (0, True), "optim.mix_prob": (0, True), "optim.mix_switch_prob": (0, True),
    "optim.ema": (0, True),
    "schedule.epochs": (1, True), "schedule.gamma": (0, False), "schedule.patience": (0, True),
    "schedule.warmup_epochs": (0, True), "schedule.min_lr": (0, True), "run.save_every_steps": (0, True),
    "run.keep_last": (0, True), "run.seed": (0, True),
}
UPPER_BOUNDS: dict[str, float] = {"data.crop_min_scale": 1.0, "data.crop_min_ratio": 1.0, "optim.label_smoothing": 1.0,
                                  "optim.momentum": 1.0, "optim.dampening": 1.0, "optim.mix_prob": 1.0,
                                  "optim.mix_switch_prob": 1.0, "run.seed": 2**32 - 1}

_SECTIONS = {f.name: f.type for f in dataclasses.fields(TrainConfig)}


def preset_names() -> list[str]:
    """Names of the recipes shipped under resnet3d/configs."""
    return presets.preset_names("resnet3d", "configs")


def _read_yaml(path_or_name: str | Path) -> tuple[dict, str]:
    doc, where = presets.read_yaml(path_or_name, "resnet3d", "configs", "config", ConfigError)
    doc = {} if doc is None else doc
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: expected a mapping of sections ({', '.join(_SECTIONS)})")
    return doc, where


def load_config(path_or_name: str | Path | None = None, overrides: Iterable[str] = ()) -> TrainConfig:
    """Defaults, then a YAML file or shipped preset, then `section.key=value` overrides; validated."""
    config = TrainConfig()
    if path_or_name is not None:
        doc, where = _read_yaml(path_or_name)
        apply_dict(config, doc, where)
    apply_overrides(config, overrides)
    validate(config)
    return config


def apply_overrides(config: TrainConfig, overrides: Iterable[str]) -> None:
    """Apply `section.key=value` strings; values are read as YAML (numbers, true/false, null, [lists])."""
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r}: expected section.key=value, e.g. optim.lr=0.01")
        try:
            value = _read_value(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        set_value(config, key.strip(), value)


def _read_value(text: str) -> Any:
    """YAML, except that `{widen_factor:0.25}` (no space after the colon, as people type it) is a mapping too."""
    value = yaml.safe_load(text)
    if isinstance(value, dict) and any(v is None and ":" in str(k) for k, v in value.items()):
        value = yaml.safe_load(re.sub(r":(?=\S)", ": ", text))
    return value


def apply_dict(config: TrainConfig, doc: dict, where: str = "config") -> None:
    """Set every `section: {key: value}` of `doc` on `config` (types checked, unknown keys rejected)."""
    for section, values in doc.items():
        if section not in _SECTIONS:
            raise ConfigError(f"{section}: unknown section in {where}; expected one of {list(_SECTIONS)}")
        if not isinstance(values, dict):
            raise ConfigError(f"{section}: expected a mapping of keys in {where}, got {values!r}")
        for key, value in values.items():
            set_value(config, f"{section}.{key}", value)


def set_value(config: TrainConfig, dotted: str, value: Any) -> None:
    """Set one `section.key` after checking the key exists and the value has its type."""
    section, _, key = dotted.partition(".")
    if section not in _SECTIONS:
        raise ConfigError(f"{dotted}: unknown section {section!r}; expected one of {list(_SECTIONS)}")
    obj = getattr(config, section)
    hints = typing.get_type_hints(type(obj))
    if key not in hints:
        raise ConfigError(f"{dotted}: unknown key; {section} has {', '.join(hints)}")
    setattr(obj, key, _coerce(value, hints[key], dotted))


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if args and type(None) in args:  # X | None
        if value is None:
            return None
        (hint,) = [a for a in args if a is not type(None)]
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    kind = origin or hint
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # PyYAML reads 1e-5 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif kind is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    elif kind is list:
        if isinstance(value, (list, tuple)):
            return list(value)
    elif kind is dict:
        if isinstance(value, dict):
            return dict(value)
    name = getattr(kind, "__name__", str(kind))
    raise ConfigError(f"{key}: expected {name}, got {value!r}")


def validate(config: TrainConfig) -> None:
    """Check value ranges, choices and combinations; raise ConfigError naming the first bad key."""
    for section in _SECTIONS:
        for key, value in vars(getattr(config, section)).items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{section}.{key}: must be a finite number, got {value}")
    for dotted, choices in CHOICES.items():
        value = _get(config, dotted)
        if value not in choices:
            raise ConfigError(f"{dotted}: expected one of {[c for c in choices]}, got {value!r}")
    for dotted, (low, inclusive) in LOWER_BOUNDS.items():
        value = _get(config, dotted)
        if value is None:
            continue
        if value < low or (value == low and not inclusive):
            raise ConfigError(f"{dotted}: must be {'>=' if inclusive else '>'} {low}, got {value!r}")
        if dotted in UPPER_BOUNDS and value > UPPER_BOUNDS[dotted]:
            raise ConfigError(f"{dotted}: must be <= {UPPER_BOUNDS[dotted]}, got {value!r}")
    s, o = config.schedule, config.optim
    if any(not isinstance(m, int) or isinstance(m, bool) or m < 1 for m in s.milestones) or s.milestones != sorted(s.milestones):
        raise ConfigError(f"schedule.milestones: expected increasing positive epoch numbers, got {s.milestones!r}")
    if len(o.betas) != 2 or any(not isinstance(b, (int, float)) or not 0 <= b < 1 for b in o.betas):
        raise ConfigError(f"optim.betas: expected two numbers in [0, 1), got {o.betas!r}")
    if o.ema >= 1:
        raise ConfigError(f"optim.ema: must be < 1 (the decay per optimizer step, e.g. 0.999), got {o.ema!r}")
    if o.nesterov and (o.momentum == 0 or o.dampening != 0):
        raise ConfigError("optim.nesterov: needs optim.momentum > 0 and optim.dampening = 0")
    if s.name == "plateau" and s.warmup_epochs:
        raise ConfigError("schedule.warmup_epochs: not supported with schedule.name=plateau (use multistep or cosine)")
    if s.name == "plateau" and config.data.val_subset is None:
        raise ConfigError("schedule.name: plateau steps on the validation loss, but data.val_subset is null")
    if config.data.cache_mb and config.data.workers:
        raise ConfigError("data.cache_mb: needs data.workers=0 (worker processes start afresh every epoch, so each "
                          f"would decode and cache the videos again), got data.workers={config.data.workers}")
    if s.warmup_epochs >= s.epochs:
        raise ConfigError(f"schedule.warmup_epochs: must be shorter than schedule.epochs ({s.epochs}), got {s.warmup_epochs}")
    if config.model.arch is not None and not config.model.arch:
        raise ConfigError("model.arch: expected a model name such as resnet18")


def _get(config: TrainConfig, dotted: str) -> Any:
    section, _, key = dotted.partition(".")
    return getattr(getattr(config, section), key)
