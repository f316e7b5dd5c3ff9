"""Tests for pruning_lib/repro.py: seeds, FAST mode and paths."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from pruning_lib import repro


def _draws() -> tuple[torch.Tensor, np.ndarray, list[float]]:
    """One draw from each global generator that seed_everything seeds."""
    return torch.rand(5), np.random.rand(5), [random.random() for _ in range(5)]


def test_seed_everything_repeats_all_global_draws():
    repro.seed_everything(123)
    first = _draws()
    repro.seed_everything(123)
    second = _draws()
    torch.testing.assert_close(first[0], second[0], rtol=0, atol=0)
    np.testing.assert_array_equal(first[1], second[1])
    assert first[2] == second[2]


def test_seed_everything_different_seeds_give_different_draws():
    repro.seed_everything(1)
    first = _draws()
    repro.seed_everything(2)
    second = _draws()
    assert not torch.equal(first[0], second[0])
    assert not np.array_equal(first[1], second[1])
    assert first[2] != second[2]


def test_seed_everything_returns_a_generator_seeded_with_seed():
    g = repro.seed_everything(7)
    assert isinstance(g, torch.Generator)
    assert g.initial_seed() == 7
    reference = torch.Generator().manual_seed(7)
    torch.testing.assert_close(torch.rand(4, generator=g), torch.rand(4, generator=reference),
                               rtol=0, atol=0)


def test_seed_everything_returns_a_fresh_generator_each_call():
    a, b = repro.seed_everything(0), repro.seed_everything(0)
    assert a is not b
    torch.rand(3, generator=a)   # advancing one leaves the other at the start
    torch.testing.assert_close(torch.rand(2, generator=b),
                               torch.rand(2, generator=torch.Generator().manual_seed(0)))


def test_seed_everything_asks_for_deterministic_kernels():
    repro.seed_everything(0)
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.backends.cudnn.benchmark is False


def test_seed_everything_rejects_negative_seed():
    with pytest.raises(ValueError, match="non-negative"):
        repro.seed_everything(-1)


@pytest.mark.parametrize("value", ["1", "true", "TRUE", " yes ", "on"])
def test_fast_mode_true_values(monkeypatch, value):
    monkeypatch.setenv("PRUNING_FAST", value)
    assert repro.fast_mode() is True


@pytest.mark.parametrize("value", ["", "0", "false", "no", "off", "2"])
def test_fast_mode_false_values(monkeypatch, value):
    monkeypatch.setenv("PRUNING_FAST", value)
    assert repro.fast_mode() is False


@pytest.mark.parametrize(("value", "expected"), [("1", True), (" Yes ", True), ("on", True),
                                               ("", False), ("0", False), ("false", False)])
def test_downloads_requested_reads_pruning_download(monkeypatch, value, expected):
    monkeypatch.setenv("PRUNING_DOWNLOAD", value)
    assert repro.downloads_requested() is expected


def test_fast_mode_unset_is_false(monkeypatch):
    monkeypatch.delenv("PRUNING_FAST", raising=False)
    assert repro.fast_mode() is False


def test_num_threads_reports_torch_setting():
    assert repro.num_threads() == torch.get_num_threads()


@pytest.mark.parametrize("value", [None, "", "   "])
def test_env_path_unset_or_blank_is_none(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("PRUNING_TEST_PATH", raising=False)
    else:
        monkeypatch.setenv("PRUNING_TEST_PATH", value)
    assert repro.env_path("PRUNING_TEST_PATH") is None


def test_env_path_returns_stripped_path(monkeypatch, tmp_path):
    monkeypatch.setenv("PRUNING_TEST_PATH", f"  {tmp_path}  ")
    assert repro.env_path("PRUNING_TEST_PATH") == tmp_path


def test_env_path_expands_user(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PRUNING_TEST_PATH", "~/datasets")
    assert repro.env_path("PRUNING_TEST_PATH") == tmp_path / "datasets"


def test_cache_dir_honours_env_and_creates_it(monkeypatch, tmp_path):
    target = tmp_path / "nested" / "cache"
    monkeypatch.setenv("PRUNING_CACHE_DIR", str(target))
    assert repro.cache_dir() == target
    assert target.is_dir()


def test_cache_dir_defaults_to_data_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("PRUNING_CACHE_DIR", raising=False)
    monkeypatch.setattr(repro, "DATA_DIR", tmp_path)   # keep the real data/ untouched
    assert repro.cache_dir() == tmp_path / "cache"
    assert (tmp_path / "cache").is_dir()


def test_paths_point_into_the_repository():
    assert (repro.REPO_ROOT / "pyproject.toml").is_file()
    assert repro.PACKAGE_ROOT == Path(repro.__file__).resolve().parent
    assert repro.CHECKPOINT_DIR == repro.DATA_DIR / "checkpoints"


def test_set_seed_is_seed_everything():
    assert repro.set_seed is repro.seed_everything
