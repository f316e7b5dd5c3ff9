"""Shared fixtures: tiny, seeded, CPU-only, no network.

Layout (add new fixtures to the matching section):

1. test-run settings (Hypothesis profile, environment isolation);
2. tiny synthetic tensors and layers;
3. data shipped with the repository.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pytest
import torch
from hypothesis import settings
from torch import nn

from pruning_lib import data

# 1. Test-run settings ---------------------------------------------------------------------------

# Property tests draw the same examples on every run (no flaky CI, no example database).
settings.register_profile("repo", deadline=None, derandomize=True, database=None, max_examples=50)
settings.load_profile("repo")

_PRUNING_ENV = ("PRUNING_FAST", "PRUNING_DATA_DIR", "PRUNING_FSDD_DIR", "PRUNING_CHECKPOINT_DIR",
                "PRUNING_DOWNLOAD", "PRUNING_DEVICE", "PRUNING_RECORD")


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Hide the developer's PRUNING_* variables and send cache writes to a temporary folder.

    Tests that need a variable set it themselves with ``monkeypatch.setenv``.
    """
    for name in _PRUNING_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PRUNING_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


# 2. Tiny synthetic tensors and layers ------------------------------------------------------------

@pytest.fixture
def tiny_conv() -> nn.Conv2d:
    """``nn.Conv2d(3, 6, 3)`` whose weight and bias are drawn from a generator seeded with 0."""
    g = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(3, 6, 3)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g))
        conv.bias.copy_(torch.randn(conv.bias.shape, generator=g))
    return conv


# 3. Data shipped with the repository ------------------------------------------------------------

@pytest.fixture(scope="session")
def fashion_subset() -> data.ImageData:
    """The vendored Fashion-MNIST subset (10,000 train / 2,000 test). Shared: never modify in place."""
    return data.load_fashion_subset()


# 4. Added for the criteria/selection/surgery/metrics/widgets tests ---------------------------------

@pytest.fixture
def single_thread():
    """Run the test with one intra-op thread, then restore the previous count.

    Tiny models on a busy 2-core machine are up to 20x faster single-threaded (no spin-waiting
    threads competing with other processes). Use it with ``pytestmark = pytest.mark.usefixtures(...)``.
    """
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


class CountingLoader:
    """Wraps a loader and counts the batches drawn from it (to check that n_images is respected)."""

    def __init__(self, loader: Iterable) -> None:
        self.loader, self.batches = loader, 0

    def __iter__(self) -> Iterator:
        for batch in self.loader:
            self.batches += 1
            yield batch


@pytest.fixture
def counting_loader() -> type[CountingLoader]:
    """``counting_loader(loader)`` wraps a loader and counts the batches drawn from it."""
    return CountingLoader


def _predictions(model: nn.Module, loader: Iterable, gap: float = 1e-4) -> dict[str, int]:
    """Correct predictions of ``model`` (eval mode, restored) over ``loader``, and its near-ties.

    A near-tie is an input whose two largest logits differ by less than ``gap``: its predicted class
    may differ between CPUs (AVX2 and AVX-512 conv kernels round differently, ~1e-6 on logits), so
    an exact count of correct predictions can move by at most the number of near-ties.

    Returns:
        {"correct": int, "n": int, "near_ties": int}.
    """
    was_training = model.training
    model.eval()
    correct = n = near = 0
    try:
        with torch.no_grad():
            for x, y in loader:
                logits = model(x)                                  # (B, classes)
                top2 = logits.topk(2, dim=1).values                # (B, 2)
                correct += int((logits.argmax(1) == y).sum())
                near += int((top2[:, 0] - top2[:, 1] < gap).sum())
                n += len(y)
    finally:
        model.train(was_training)
    return {"correct": correct, "n": n, "near_ties": near}


@pytest.fixture
def predictions():
    """``predictions(model, loader)``: correct count, n and near-ties (see ``_predictions``)."""
    return _predictions

