"""Passive (weight-only) filter criteria: ℓ1, ℓ2, spectral norm, FPGM and random scores.

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
    # Fast path: a NaN/inf entry always makes the sum non-finite; the full check runs only then
    # (it is most of the cost of l1_norm otherwise, and a finite sum can still overflow).
    if not bool(torch.isfinite(weight.sum())) and not bool(torch.isfinite(weight).all()):
        raise ValueError("weight contains NaN or inf entries")
    return weight.detach().float().flatten(1)  # (n, c*kh*kw)


def as_filter_slices(weight: Tensor) -> Tensor:
    """Check a weight tensor like ``as_filter_matrix`` and view each filter as a (c, d) matrix.

    Row ``j`` of filter ``i`` is its input-channel slice ``W[i, j]`` flattened to ``d = kh·kw``
    entries (``d = k`` for Conv1d, ``d = 1`` for Linear).

    Args:
        weight: Conv weight (n, c, kh, kw), Conv1d weight (n, c, k) or Linear weight (n, c).

    Returns:
        Detached float32 tensor of shape (n, c, d).

    Raises:
        TypeError: if ``weight`` is not a tensor.
        ValueError: as ``as_filter_matrix``.
    """
    F = as_filter_matrix(weight)                           # (n, c*d)
    return F.reshape(weight.shape[0], weight.shape[1], -1)  # (n, c, d)


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
    return torch.linalg.vector_norm(as_filter_matrix(weight), ord=1, dim=1)   # no |W| temporary


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


def spectral_norm(weight: Tensor) -> Tensor:
    """Textbook operator (spectral) norm of each filter: score_i = σ_max(W_i), W_i ∈ R^{c × kh·kw}.

    Filter ``i`` is viewed as a matrix with one row per input channel; its score is the largest
    singular value, i.e. the most the filter can stretch a unit vector of kernel positions. A Linear
    weight's rows are (c, 1) matrices, so there the score equals the ℓ2 norm.
    This is **not** the Singh & Plumbley "operator norm" score; see
    ``pruning_lib.criteria.operator_norm.operator_norm``.

    Args:
        weight: (n, c, kh, kw) conv weight (or (n, c) / (n, c, k)).

    Returns:
        Scores, shape (n,), on the CPU: the many small SVDs run on the CPU whatever the weight's
        device (batched small SVDs are about 1,000× slower than ℓ1 on a GPU).

    Introduced in: notebooks/01_norms_and_operator_norm.ipynb (§The math).

    Example:
        >>> w = torch.tensor([[[[3.0, 0.0]], [[0.0, 4.0]]], [[[1.0, 1.0]], [[1.0, 1.0]]]])  # (2, 2, 1, 2)
        >>> spectral_norm(w).round(decimals=4)   # diag(3, 4) → 4; the all-ones 2×2 matrix → 2
        tensor([4., 2.])
    """
    W = as_filter_slices(weight.cpu())            # (n, c, d), on the CPU (see Returns)
    return torch.linalg.matrix_norm(W, ord=2)     # (n,)


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
