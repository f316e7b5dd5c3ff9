"""Reproducibility: seeds, FAST mode, threads and the paths the package reads from.

This is the one place that seeds random number generators and reads environment variables.

Introduced in: notebooks/00_tour.ipynb (§Set-up).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

PACKAGE_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_ROOT.parent
DATA_DIR = REPO_ROOT / "data"
CHECKPOINT_DIR = DATA_DIR / "checkpoints"


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed ``random``, NumPy and torch, and ask torch for deterministic kernels.

    Args:
        seed: Any non-negative integer.

    Returns:
        A fresh ``torch.Generator`` seeded with ``seed``, for functions that take ``generator=``.

    Example:
        >>> g = seed_everything(0)
        >>> a = torch.rand(2, generator=g)
        >>> b = torch.rand(2, generator=seed_everything(0))
        >>> bool(torch.equal(a, b))
        True
    """
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    return torch.Generator().manual_seed(seed)


set_seed = seed_everything   # the name the issues use; one function, one seeding place


def fast_mode() -> bool:
    """Return True when ``PRUNING_FAST`` is set to a true value ("1", "true", "yes").

    FAST mode (used by CI) shrinks epochs, sample counts and sweep grids so that each
    notebook runs in about a minute on a 2-core CPU.
    """
    return os.environ.get("PRUNING_FAST", "").strip().lower() in {"1", "true", "yes", "on"}


def downloads_requested() -> bool:
    """Return True when ``PRUNING_DOWNLOAD`` is set to a true value ("1", "true", "yes", "on").

    Nothing is downloaded unless the user asks: with this variable, or with an explicit argument
    (``source="torchvision"``, ``download=True``). No loader probes the network to decide.
    """
    return os.environ.get("PRUNING_DOWNLOAD", "").strip().lower() in {"1", "true", "yes", "on"}


def num_threads() -> int:
    """Return the number of intra-op threads torch uses now (reported next to every timing)."""
    return torch.get_num_threads()


def env_path(name: str) -> Path | None:
    """Return the path in environment variable ``name``, or None when it is unset or empty."""
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Folder for load-if-exists-else-compute results (git-ignored); ``PRUNING_CACHE_DIR`` overrides."""
    path = env_path("PRUNING_CACHE_DIR") or (DATA_DIR / "cache")
    path.mkdir(parents=True, exist_ok=True)
    return path
