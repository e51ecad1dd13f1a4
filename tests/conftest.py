"""Shared fixtures: tiny models and batches so that every test runs in well under a second."""

from __future__ import annotations

import os

import pytest
import torch

from mimdarts.data import INFOS


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true",
                     help="also run the tests marked slow (or set MIMDARTS_SLOW=1)")


def pytest_collection_modifyitems(config, items):
    """Slow tests (several processes, minutes each on a busy 2-core machine) run only on
    request, so that CI stays within its budget; they say how to run them."""
    if config.getoption("--run-slow") or os.environ.get("MIMDARTS_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow or MIMDARTS_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


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
