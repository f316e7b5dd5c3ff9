"""Passive (weight-only) filter criteria: ℓ1, ℓ2, FPGM and random scores.

Convention shared by every criterion in ``pruning_lib.criteria``: ``scores[i]`` is the importance of
output filter ``i`` and HIGHER = KEEP. Scores have shape (n_filters,), float32.

Introduced in: notebooks/00_tour.ipynb (§The pipeline); compared in
notebooks/01_norms_and_operator_norm.ipynb.
"""

from __future__ import annotations

import torch
from torch import Tensor


def as_filter_matrix(weight: Tensor) -> Tensor:
    """Check a weight tensor and flatten it to one row per output filter.

    Args:
        weight: Conv weight (n, c, kh, kw), Conv1d weight (n, c, k) or Linear weight (n, c).

    Returns:
        Detached float32 matrix of shape (n, c·kh·kw).

    Raises:
        TypeError: if ``weight`` is not a tensor.
        ValueError: for another number of dimensions, no filters, or NaN/inf entries.
    """
    if not isinstance(weight, Tensor):
        raise TypeError(f"expected a weight tensor, got {type(weight).__name__}; "
                        "pass conv.weight, not the module")
    if weight.ndim not in (2, 3, 4):
        raise ValueError(f"expected a weight of shape (n, c, kh, kw), (n, c, k) or (n, c), "
                         f"got {weight.ndim}-D shape {tuple(weight.shape)}")
    if weight.shape[0] == 0 or weight[0].numel() == 0:
        raise ValueError(f"weight of shape {tuple(weight.shape)} has no filters or empty filters")
    if not torch.isfinite(weight).all():
        raise ValueError("weight contains NaN or inf entries")
    return weight.detach().float().flatten(1)  # (n, c*kh*kw)


def l1_norm(weight: Tensor) -> Tensor:
    """ℓ1 norm of each filter: score_i = Σ |W[i]| (Li et al., ICLR 2017).

    Args:
        weight: (n, c, kh, kw) conv weight (or (n, c) / (n, c, k)).

    Returns:
        Scores, shape (n,).

    Example:
        >>> w = torch.tensor([[[[1.0, -2.0]]], [[[0.5, 0.5]]]])   # (2, 1, 1, 2)
        >>> l1_norm(w)
        tensor([3., 1.])
    """
    return as_filter_matrix(weight).abs().sum(dim=1)


def l2_norm(weight: Tensor) -> Tensor:
    """ℓ2 (Frobenius) norm of each filter: score_i = ‖W[i]‖₂.

    Args:
        weight: (n, c, kh, kw) conv weight (or (n, c) / (n, c, k)).

    Returns:
        Scores, shape (n,).

    Example:
        >>> l2_norm(torch.tensor([[[[3.0, 4.0]]], [[[0.0, 1.0]]]]))
        tensor([5., 1.])
    """
    return torch.linalg.vector_norm(as_filter_matrix(weight), dim=1)


def fpgm(weight: Tensor) -> Tensor:
    """Filter Pruning via Geometric Median (He et al., CVPR 2019): Σ_j ‖W[i] − W[j]‖₂.

    A filter close to the layer's geometric median is well represented by the others, so it gets
    a small score and is pruned first. The score is the summed Euclidean distance to all filters of
    the layer, the usual practical form of the criterion.

    Args:
        weight: (n, c, kh, kw) conv weight (or (n, c) / (n, c, k)).

    Returns:
        Scores, shape (n,).

    Example:
        >>> fpgm(torch.tensor([[0.0], [1.0], [3.0]]))   # distances: 0+1+3, 1+0+2, 3+2+0
        tensor([4., 3., 5.])
    """
    F = as_filter_matrix(weight)                 # (n, d)
    return torch.cdist(F[None], F[None])[0].sum(dim=1)   # (n, n) → (n,)


def random_scores(weight: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Uniform random scores in [0, 1): the baseline every criterion must beat.

    Args:
        weight: (n, ...) weight; only its number of filters is used.
        generator: Seeds the draw; without one the global torch RNG is used.

    Returns:
        Scores, shape (n,).
    """
    n = as_filter_matrix(weight).shape[0]
    return torch.rand(n, generator=generator)
