"""Fixtures for the model tests."""

from __future__ import annotations

from typing import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread: these tensors are tiny, and with other jobs on the 2 cores, OpenMP threads
    spin-waiting for each other made single forwards up to 100x slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def tiny_clip() -> torch.Tensor:
    """A (2, 3, 4, 16, 16) clip batch with a fixed seed."""
    return torch.randn(2, 3, 4, 16, 16, generator=torch.Generator().manual_seed(0))
