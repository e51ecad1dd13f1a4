"""Shared fixtures: tiny models and batches so that every test runs in well under a second."""

from __future__ import annotations

import pytest
import torch

from mimdarts.data import INFOS


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


@pytest.fixture
def info():
    return INFOS["cifar10-sample"]


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(4, 3, 16, 16, generator=g), torch.randint(0, 10, (4,), generator=g)


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module of tiny CPU-bound tests: threads gain nothing there, and
    on a busy shared machine the thread barriers of every op cost more than the op itself
    (100x slower seen at load 5 on 2 cores)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
