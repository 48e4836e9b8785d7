"""Pick, by timing on this machine, the fastest of several exact forms of one layer; once per process and shape.

Which form wins depends on the CPU (AMX, AVX-512 BF16, neither), the dtype and the input shape, and the host is
noisy, so the forms are timed in alternation (ABAB...) after a warm-up call each and the best time of each is
compared. The layer keeps the name of the form it runs (`chosen_form`), which the run's files record.
"""

from __future__ import annotations

import time
from typing import Callable, Hashable

import torch

PROBE_ROUNDS = 2

_CHOICES: dict[Hashable, str] = {}


def fastest_form(layer: torch.nn.Module, key: Hashable, forms: dict[str, Callable[[torch.Tensor], torch.Tensor]],
                 x: torch.Tensor) -> str:
    """The name of the fastest of `forms` on `x` (timed without gradients the first time `key` is seen)."""
    choice = _CHOICES.get(key)
    if choice is None:
        choice = _CHOICES[key] = _probe(forms, x)
    if getattr(layer, "chosen_form", None) != choice:
        layer.chosen_form = choice
    return choice


def chosen_forms(model: torch.nn.Module) -> dict[str, str]:
    """Module name -> the form each timed layer of `model` runs, e.g. {'conv1': 'taps folded along time'}."""
    return {name: m.chosen_form for name, m in model.named_modules() if getattr(m, "chosen_form", None)}


def _probe(forms: dict[str, Callable[[torch.Tensor], torch.Tensor]], x: torch.Tensor) -> str:
    best = {name: float("inf") for name in forms}
    with torch.no_grad():
        for name, form in forms.items():
            form(x)  # warm-up: oneDNN builds its primitive on the first call of a shape
        for _ in range(PROBE_ROUNDS):
            for name, form in forms.items():
                start = time.perf_counter()
                form(x)
                best[name] = min(best[name], time.perf_counter() - start)
    return min(best, key=best.__getitem__)
