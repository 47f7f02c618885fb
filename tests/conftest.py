"""Shared pytest options: slow tests run only with --run-slow."""

import pathlib
import sys

import pytest

# eval.py, scripts/ and the bringup package import from the repo root, also under a bare `pytest`.
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

# Set ttnn's and OpenMP's environment before any test module imports torch or ttnn.
import bringup  # noqa: E402,F401


def pytest_addoption(parser):
    parser.addoption(
        "--run-slow",
        action="store_true",
        default=False,
        help="also run tests marked slow (full model runs, real weights)",
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a long test that runs only with --run-slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip_slow = pytest.mark.skip(reason="slow test; run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)
