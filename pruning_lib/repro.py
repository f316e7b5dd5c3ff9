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


DEVICES = ("cpu", "cuda", "mps")


def _available(kind: str) -> bool:
    """Whether torch can use a device of this kind here (``cpu`` always)."""
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    return kind == "cpu"


def device() -> torch.device:
    """The device lessons and benchmarks run on: ``cuda``, else ``mps``, else ``cpu``.

    ``PRUNING_DEVICE`` overrides the choice (``cpu``, ``cuda``, ``cuda:1``, ``mps``). The library
    itself follows one rule: work happens on the device of the model's parameters, loaders'
    batches are moved there, and results (scores, plans, records) come back on the CPU.

    Returns:
        A ``torch.device``.

    Raises:
        ValueError: ``PRUNING_DEVICE`` is not a device name torch knows, or names a device that
            is not available on this machine.

    Example:
        >>> device().type in DEVICES
        True
    """
    name = os.environ.get("PRUNING_DEVICE", "").strip().lower()
    if not name:
        return torch.device(next(k for k in ("cuda", "mps", "cpu") if _available(k)))
    try:
        chosen = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"PRUNING_DEVICE={name!r} is not a device name; use one of "
                         f"{', '.join(DEVICES)} (e.g. cuda:0)") from err
    if chosen.type not in DEVICES or not _available(chosen.type):
        raise ValueError(f"PRUNING_DEVICE={name!r}: that device is not available here; available: "
                         f"{', '.join(k for k in DEVICES if _available(k))}")
    if chosen.type == "cuda" and chosen.index is not None and chosen.index >= torch.cuda.device_count():
        raise ValueError(f"PRUNING_DEVICE={name!r}: this machine has {torch.cuda.device_count()} "
                         "CUDA device(s)")
    return chosen


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (or buffer); CPU for a model with neither."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def synchronize(where: torch.device) -> None:
    """Wait for the queued work on ``where`` (CUDA, MPS) to finish; nothing on the CPU."""
    if where.type == "cuda":
        torch.cuda.synchronize(where)
    elif where.type == "mps":
        torch.mps.synchronize()


def rng_devices(where: torch.device) -> list[int]:
    """CUDA device indices whose RNG ``torch.random.fork_rng(devices=...)`` must save for ``where``.

    ``torch.manual_seed`` also reseeds every CUDA generator, so a function that seeds for a run on
    a CUDA model forks that device's RNG too; on the CPU and MPS the list is empty.
    """
    if where.type != "cuda":
        return []
    return [where.index if where.index is not None else torch.cuda.current_device()]
