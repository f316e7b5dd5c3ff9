"""Nyström approximation of a Gram matrix S = X Xᵀ from m landmark columns (ICASSP 2023 §4.2).

``C = X X[L]ᵀ`` (n, m) holds the similarities of every row to the m landmarks L, ``W = C[L]`` (m, m)
and ``W_k`` is its best rank-k approximation; then ``S̃ = C · pinv(W_k) · Cᵀ``. This is what
``sklearn.kernel_approximation.Nystroem`` computes for a linear kernel (its feature map Φ has
ΦΦᵀ = C W⁺ Cᵀ), written in torch so that it runs on any device and accepts the paper's rank k.
S̃ is exact as soon as the landmark rows span the row space of X (rank S ≤ d).

The similarity method uses it through ``similarity.nystrom_distances``.

Introduced in: notebooks/02_similarity_and_nystrom.ipynb (§The math).
"""

from __future__ import annotations

import torch
from torch import Tensor

_PINV_RTOL = 1e-10   # eigenvalues of W below this × the largest are round-off of a rank-deficient W


def choose_landmarks(n: int, m: int, *, generator: torch.Generator | None = None) -> Tensor:
    """Landmarks: the first m rows (the authors' choice) or m random distinct rows.

    Args:
        n: Number of rows (filters).
        m: Number of landmarks, 1 ≤ m ≤ n.
        generator: None: indices 0..m−1; otherwise m distinct indices drawn with it.

    Returns:
        Sorted landmark indices, shape (m,), int64.

    Raises:
        ValueError: if m is not an integer in [1, n].

    Introduced in: notebooks/02_similarity_and_nystrom.ipynb (§The math).

    Example:
        >>> choose_landmarks(10, 3)
        tensor([0, 1, 2])
    """
    if isinstance(m, bool) or not isinstance(m, int) or not 1 <= m <= n:
        raise ValueError(f"number of landmarks m must be an integer in [1, n] = [1, {n}], got {m!r}")
    if generator is None:
        return torch.arange(m)
    return torch.randperm(n, generator=generator)[:m].sort().values


def truncated_pinv(W: Tensor, k: int) -> Tensor:
    """Pseudo-inverse of the best rank-k approximation of a symmetric matrix W, via one eigh.

    For a symmetric W the truncated SVD keeps the k eigenpairs of largest |λ|, so
    pinv(W_k) = Σ_{top k} q qᵀ / λ. Eigenvalues at most 1e-10 × max |λ| count as zero: when m
    exceeds rank W they are round-off, and inverting them would blow it up.

    Args:
        W: Symmetric matrix, shape (m, m) (symmetrised first, to absorb round-off).
        k: Rank, 1 ≤ k ≤ m.

    Returns:
        pinv(W_k), shape (m, m).

    Introduced in: notebooks/02_similarity_and_nystrom.ipynb (§The math).
    """
    lam, Q = torch.linalg.eigh((W + W.T) / 2)                # (m,), (m, m)
    top = lam.abs().argsort(descending=True)[:k]             # best rank k: largest |λ|
    lam, Q = lam[top], Q[:, top]                             # (k,), (m, k)
    keep = lam.abs() > _PINV_RTOL * lam.abs().max()          # drop round-off of a rank-deficient W
    return (Q[:, keep] / lam[keep]) @ Q[:, keep].T           # (m, m)


def _check_landmarks(landmarks: Tensor, n: int, device: torch.device) -> Tensor:
    idx = torch.as_tensor(landmarks, device=device).flatten()   # (m,)
    if idx.is_floating_point() or idx.is_complex() or idx.dtype == torch.bool:
        raise ValueError(f"landmarks must be integer indices, got dtype {idx.dtype}")
    idx = idx.long()
    if len(idx) == 0 or idx.unique().numel() != len(idx) or idx.min() < 0 or idx.max() >= n:
        raise ValueError(f"landmarks must be distinct indices in [0, {n}), got {idx.tolist()}")
    return idx


def nystrom_approximation(X: Tensor, landmarks: Tensor, *, k: int | None = None) -> Tensor:
    """Nyström approximation S̃ = C · pinv(W_k) · Cᵀ of the Gram matrix S = X Xᵀ.

    Args:
        X: Rows to compare, shape (n, d) (for the similarity method: unit representatives).
        landmarks: Distinct landmark row indices, shape (m,) (see ``choose_landmarks``).
        k: Rank of W_k, 1 ≤ k ≤ m; default m (the authors' experiments).

    Returns:
        S̃, shape (n, n), float64, symmetric.

    Raises:
        ValueError: for a non-2-D or non-finite X, landmarks outside [0, n) or repeated, or
            k ∉ [1, m].

    Introduced in: notebooks/02_similarity_and_nystrom.ipynb (§The math).

    Example:
        >>> X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
        >>> nystrom_approximation(X, torch.tensor([0, 1]))   # landmarks span R²: exact X Xᵀ
        tensor([[1.0000, 0.0000, 0.6000],
                [0.0000, 1.0000, 0.8000],
                [0.6000, 0.8000, 1.0000]], dtype=torch.float64)
    """
    if not isinstance(X, Tensor) or X.ndim != 2:
        raise ValueError(f"X must be an (n, d) tensor, got {getattr(X, 'shape', type(X).__name__)}")
    X = X.double()
    idx = _check_landmarks(landmarks, len(X), X.device)
    k = len(idx) if k is None else k
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(idx):
        raise ValueError(f"rank k must be an integer in [1, m] = [1, {len(idx)}], got {k!r}")
    C = X @ X[idx].T                                       # (n, m)
    if not torch.isfinite(C).all():    # a NaN/inf in row i spoils C[i]; 70× cheaper than isfinite(X)
        raise ValueError("X contains NaN or inf entries (or X Xᵀ overflows)")
    S = C @ truncated_pinv(C[idx], k) @ C.T                # (n, n)
    return (S + S.T).mul_(0.5)                             # bit-exact symmetry (round-off aside)


def approximation_error(exact: Tensor, approx: Tensor) -> float:
    """Spectral norm ‖A − Ã‖₂ of an approximation error, e.g. the paper's δ = ‖D − D̃‖₂.

    Args:
        exact: Shape (n, n).
        approx: Same shape.

    Returns:
        The largest singular value of the difference (a Python float).

    Introduced in: notebooks/02_similarity_and_nystrom.ipynb (§The math).
    """
    if exact.shape != approx.shape:
        raise ValueError(f"shapes differ: {tuple(exact.shape)} vs {tuple(approx.shape)}")
    return float(torch.linalg.matrix_norm(exact.double() - approx.double(), ord=2))
