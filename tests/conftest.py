"""Shared fixtures: small generated datasets, and a fixed seed for every test.

Shared constants and builders live in modules of their own (``zoo_cases``,
``kernel_cases``, ``synthetic_data``), imported by name rather than from here."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def npz(tmp_path_factory):
    """A tiny class-band dataset (256 train / 64 test) for fast study runs."""
    from synthetic_data import write_npz

    return str(write_npz(tmp_path_factory.mktemp("d") / "tiny.npz", n_train=256, n_test=64))


@pytest.fixture(scope="session")
def slow_npz(tmp_path_factory):
    """Big enough (6000 images) that a run takes about a second, so a kill lands mid-study."""
    from synthetic_data import write_npz

    return str(write_npz(tmp_path_factory.mktemp("s") / "slow.npz", n_train=6000, n_test=200))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(1234)
