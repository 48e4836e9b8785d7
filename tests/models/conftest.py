"""Fixtures for the model tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def tiny_clip() -> torch.Tensor:
    """A (2, 3, 4, 16, 16) clip batch with a fixed seed."""
    return torch.randn(2, 3, 4, 16, 16, generator=torch.Generator().manual_seed(0))
