"""Model registry: `@register_model(Options)` builders, `create_model(name, num_classes, **options)`, `list_models`."""

from __future__ import annotations

import difflib
import fnmatch
import functools
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, ClassVar, TypeVar

from resnet3d.errors import Resnet3dError
from resnet3d.models.layers import VideoClassifier

M = TypeVar("M", bound=VideoClassifier)

_REGISTRY: dict[str, Callable[..., VideoClassifier]] = {}
_OPTIONS: dict[str, type] = {}

# The original's `--model` family names (with `--model_depth`) mapped to our name prefixes.
ORIGINAL_FAMILIES = {
    "resnet": "resnet",
    "resnet2p1d": "resnet2p1d",
    "preresnet": "preact_resnet",
    "wideresnet": "wide_resnet",
    "resnext": "resnext",
    "densenet": "densenet",
}


@dataclass(frozen=True)
class ModelOptions:
    """Base of the per-family option dataclasses: checks value types (ints positive, floats > 0, bools)."""

    unchecked: ClassVar[tuple[str, ...]] = ()  # fields a subclass validates itself

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name in self.unchecked:
                continue
            value = getattr(self, f.name)
            if f.type == "bool" and not isinstance(value, bool):
                raise ValueError(f"{f.name} must be true or false, got {value!r}")
            if f.type == "int" and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"{f.name} must be a positive integer, got {value!r}")
            if f.type == "float" and (not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0):
                raise ValueError(f"{f.name} must be a positive number, got {value!r}")


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def register_model(options_cls: type) -> Callable[[Callable[[int, Any], M]], Callable[..., M]]:
    """Register a builder `fn(num_classes, options)`; `options_cls` is the dataclass of its keyword options.

    The registered callable takes `num_classes` and keyword options, validates them, and stamps the model with
    `arch_name` and `arch_options` (every option, defaults included).
    """

    def decorate(fn: Callable[[int, Any], M]) -> Callable[..., M]:
        @functools.wraps(fn)
        def build(num_classes: int = 400, **options: Any) -> M:
            opts = options_cls(**options)
            model = fn(num_classes, opts)
            model.arch_name = fn.__name__
            model.arch_options = {k: _jsonable(v) for k, v in asdict(opts).items()}
            return model

        _REGISTRY[fn.__name__] = build
        _OPTIONS[fn.__name__] = options_cls
        return build

    return decorate


def resolve_name(name: str | tuple[str, int]) -> str:
    """A registered name from `name` or the original's `(model, model_depth)` pair, e.g. ('preresnet', 200)."""
    if isinstance(name, (tuple, list)):
        if len(name) != 2:
            raise Resnet3dError(f"expected a (model, model_depth) pair, got {name!r}")
        family, depth = name
        name = f"{ORIGINAL_FAMILIES.get(family, family)}{depth}"
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise Resnet3dError(f"unknown model {name!r}{hint} (`resnet3d models` lists them all)")
    return name


def model_options(name: str | tuple[str, int]) -> dict[str, Any]:
    """The keyword options of a model with their defaults."""
    return {f.name: _jsonable(f.default) for f in fields(_OPTIONS[resolve_name(name)])}


def create_model(name: str | tuple[str, int], num_classes: int = 400, **options: Any) -> VideoClassifier:
    """Build a registered model, e.g. `create_model("resnet50", num_classes=101, shortcut_type="A")`."""
    name = resolve_name(name)
    valid = model_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise Resnet3dError(f"{name} has no option {', '.join(unknown)}; valid options: {', '.join(valid)}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise Resnet3dError(f"num_classes must be a positive integer, got {num_classes!r}")
    try:
        return _REGISTRY[name](num_classes, **options)
    except ValueError as e:
        raise Resnet3dError(f"{name}: {e}") from None


def list_models(pattern: str | None = None) -> list[str]:
    """Registered model names in registration order, optionally filtered by a shell pattern like 'resnet*'."""
    return [n for n in _REGISTRY if pattern is None or fnmatch.fnmatch(n, pattern)]
