"""Operator-norm passive filter pruning (Singh & Plumbley, arXiv:2304.02319) and this package's variant.

Each input channel ``c`` of a layer is a matrix ``A_c ∈ R^{n×d}`` whose rows are the ``n`` filters'
``c``-slices (``d = kh·kw``), centred on their mean. Its top right singular vector ``v_c`` is the
direction that realises the matrix's operator norm ``σ_{1,c}``. Filter ``i`` is scored by how far it
reaches along these directions:

    t_i = Σ_c ⟨A_c[i], r_c⟩,   r_c = sign(u_c[0])·v_c,   score_i = t_i² / max_j t_j²  ∈ [0, 1].

* ``operator_norm``: the authors' score, exactly as in their code (``pruning_methods.md`` §1.2),
  including its orientation rule: the sign of each channel's direction is set by filter 0. Hence
  **it is not permutation-equivariant**: storing the filters in another order changes the ranking.
* ``operator_norm_equivariant``: this package's variant (not the paper's method). It drops the
  orientation altogether: score_i = Σ_c ⟨A_c[i], v_c⟩², normalised by its maximum.
* ``operator_norm_reference``: a deliberately looped numpy version that follows the structure of the
  authors' code (one SVD per channel, one trace per filter); for tests and timing only.

Not the textbook per-filter spectral norm; that is ``pruning_lib.criteria.norms.spectral_norm``.

Introduced in: notebooks/01_norms_and_operator_norm.ipynb (§The math).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from pruning_lib.criteria.norms import as_filter_slices

# A centred layer this small relative to the weight is "all filters identical" up to float32 rounding.
_IDENTICAL_RTOL = 1e-5


def _centred_slices(weight: Tensor, center: bool) -> Tensor:
    """Validate ``weight`` for the operator-norm score and centre each channel slice over filters.

    Args:
        weight: (n, c, kh, kw) conv weight (or (n, c, k) / (n, c)).
        center: Subtract the mean over filters μ_c from every channel slice (the authors' code does).

    Returns:
        A, shape (n, c, d): ``W[i, c] − μ_c`` (or ``W`` itself when ``center`` is False), float32.

    Raises:
        ValueError: bad shape or NaN/inf (see ``as_filter_matrix``), a single filter with
            ``center=True``, an all-zero weight, or identical filters with ``center=True``.
    """
    W = as_filter_slices(weight)                                    # (n, c, d)
    shape = tuple(weight.shape)
    if center and W.shape[0] < 2:
        raise ValueError(f"operator_norm with center=True needs at least 2 filters, got shape {shape}: "
                         "centring a single filter leaves only zeros; use center=False")
    norm = float(torch.linalg.vector_norm(W))      # cheaper than W.any(); 0 also for tiny values
    if norm == 0 and not bool(W.any()):
        raise ValueError(f"operator_norm is undefined for an all-zero weight (shape {shape}): every "
                         "projection is 0 and the normalisation would divide 0 by 0")
    if not center:
        return W
    A = W - W.mean(dim=0, keepdim=True)                             # (n, c, d)
    if float(torch.linalg.vector_norm(A)) <= _IDENTICAL_RTOL * norm:
        raise ValueError(f"operator_norm with center=True is undefined when all filters are identical "
                         f"(shape {shape}): the centred weight is 0; use center=False")
    return A


def _normalised(t2: Tensor) -> Tensor:
    """Divide squared projections (n,) by their maximum so that scores lie in [0, 1]."""
    top = t2.max()
    if not bool(top > 0):
        raise ValueError("operator_norm is undefined for this weight: every filter's projection "
                         "t_i is 0, so the normalisation would divide 0 by 0")
    return (t2 / top).float()


def _top_singular(A: Tensor) -> tuple[Tensor, Tensor]:
    """Top left and right singular vectors of each channel matrix, by one batched SVD.

    Args:
        A: Channel matrices, shape (c, n, d).

    Returns:
        (u, v): u (c, n) = U[:, :, 0] and v (c, d) = Vᵀ[:, 0, :]; their signs are whatever the SVD
        routine returns.
    """
    U, _, Vh = torch.linalg.svd(A, full_matrices=False)   # U (c, n, k), Vh (c, k, d), k = min(n, d)
    return U[:, :, 0], Vh[:, 0, :]                          # (c, n), (c, d)


def operator_norm(weight: Tensor, center: bool = True) -> Tensor:
    """Singh & Plumbley's operator-norm score: score_i = t_i² / max_j t_j², t_i = Σ_c ⟨A_c[i], r_c⟩.

    Per input channel c: A_c = W[:, c] − μ_c (n × d), thin SVD A_c = U Σ Vᵀ, and the orientation
    r_c = sign(U[0, 0])·V[:, 0], so the sign of each channel's direction is fixed by filter 0
    (sign(0) → +1). This is the authors' rule, reproduced on purpose: the score does not depend on
    the SVD routine's sign convention, but it **does** depend on which filter is stored first, so it is
    not permutation-equivariant (see ``operator_norm_equivariant``).

    Args:
        weight: (n, c, kh, kw) conv weight (or (n, c, k) / (n, c), then d = k or 1).
        center: Centre each channel slice over filters, as the authors' code does (their paper's
            Algorithm 1 does not).

    Returns:
        Scores, shape (n,), float32, in [0, 1] with maximum 1; HIGHER = KEEP.

    Raises:
        TypeError: if ``weight`` is not a tensor.
        ValueError: wrong number of dimensions, no filters, NaN/inf, an all-zero weight, a single
            filter (or identical filters) with ``center=True``.

    Introduced in: notebooks/01_norms_and_operator_norm.ipynb (§The math).

    Example:
        >>> w = torch.tensor([[1.0, 2.0], [3.0, 2.0], [5.0, 2.0]])   # (3, 2): d = 1
        >>> operator_norm(w)   # channel 0 centred: -2, 0, 2; channel 1 is constant → 0
        tensor([1., 0., 1.])
    """
    A = _centred_slices(weight, center).transpose(0, 1)   # (c, n, d)
    u, v = _top_singular(A)                                # (c, n), (c, d)
    sign = torch.where(u[:, 0] < 0, -1.0, 1.0)             # (c,): orientation by filter 0
    r = v * sign[:, None]                                  # (c, d)
    t = torch.einsum("cnd,cd->n", A, r)                    # (n,)
    return _normalised(t.square())


def operator_norm_equivariant(weight: Tensor, center: bool = True) -> Tensor:
    """This package's permutation-equivariant variant: score_i = Σ_c ⟨A_c[i], v_c⟩², normalised.

    **Not the paper's method.** Same centring and per-channel top singular vector v_c as
    ``operator_norm``, but the per-channel projections are squared *before* they are summed, so no
    orientation of v_c is needed at all. Why this rule rather than orienting v_c by some statistic:

    * with centring, the projections of a channel sum to 0 (``Σ_i A_c[i] = 0``), so "make the sum
      (or the mean filter's projection) positive" is undefined exactly in the default setting;
    * any sign rule computed from the data (skewness, majority vote) flips when its statistic crosses
      0, and a flip in one channel re-ranks every filter; squaring is continuous in the weights;
    * it has a plain meaning: Σ_c σ_{1,c}² u_c[i]², the energy of filter i in the best rank-1
      approximation of every channel, and it equals the original score when c = 1.

    Permuting the filters permutes the scores; flipping any SVD signs changes nothing.

    Args:
        weight: (n, c, kh, kw) conv weight (or (n, c, k) / (n, c)).
        center: Centre each channel slice over filters (as ``operator_norm``).

    Returns:
        Scores, shape (n,), float32, in [0, 1] with maximum 1; HIGHER = KEEP.

    Raises:
        TypeError, ValueError: as ``operator_norm``.

    Introduced in: notebooks/01_norms_and_operator_norm.ipynb (§The math).

    Example:
        >>> w = torch.tensor([[1.0, 2.0], [3.0, 2.0], [5.0, 2.0]])   # (3, 2): d = 1
        >>> operator_norm_equivariant(w)   # projections² per channel: (4, 0, 4) and (0, 0, 0)
        tensor([1., 0., 1.])
    """
    A = _centred_slices(weight, center).transpose(0, 1)   # (c, n, d)
    _, v = _top_singular(A)                                # (c, d)
    p = torch.einsum("cnd,cd->cn", A, v)                   # (c, n): filter i's projection in channel c
    return _normalised(p.square().sum(dim=0))


def operator_norm_reference(weight: Tensor, center: bool = True) -> Tensor:
    """Looped float64 numpy version of ``operator_norm`` in the structure of the authors' code.

    One SVD per input channel (a Python loop), the orientation read off row 0 of the rank-1 matrix
    u vᵀ, then one loop step per filter: t_i = trace((W_i − M) Rᵀ) with M, R ∈ R^{c×d}. Slow on
    purpose; use it to check ``operator_norm`` and as the looped contrast in the timing benchmark.

    Args:
        weight: (n, c, kh, kw) conv weight (or (n, c, k) / (n, c)).
        center: Centre each channel slice over filters.

    Returns:
        Scores, shape (n,), float32, in [0, 1].

    Raises:
        TypeError, ValueError: as ``operator_norm``.

    Introduced in: notebooks/01_norms_and_operator_norm.ipynb (§The math).
    """
    _centred_slices(weight, center)                                  # same checks and messages
    W = weight.detach().cpu().double().reshape(weight.shape[0], weight.shape[1], -1).numpy()  # (n, c, d)
    n, c, d = W.shape
    means, directions = [], []
    for j in range(c):
        A = W[:, j, :]                                               # (n, d)
        mu = A.mean(axis=0) if center else np.zeros(d)               # (d,)
        U, _, Vh = np.linalg.svd(A - mu, full_matrices=False)
        first_row = U[0, 0] * Vh[0]                                  # row 0 of u vᵀ, (d,)
        norm = np.linalg.norm(first_row)
        directions.append(first_row / norm if norm > 0 else Vh[0])   # u[0] = 0 → sign +1
        means.append(mu)
    M, R = np.stack(means), np.stack(directions)                     # (c, d), (c, d)
    # trace((W_i − M) Rᵀ) in the authors' code; Σ (W_i − M) ∘ R is the same number without the
    # (c, c) product, which would make this loop O(n·c²·d) (over a minute for VGG-16).
    t = np.array([np.sum((W[i] - M) * R) for i in range(n)])         # (n,)
    return _normalised(torch.from_numpy(t**2))
