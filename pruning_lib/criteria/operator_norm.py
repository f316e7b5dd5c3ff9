"""Operator-norm passive filter pruning (Singh & Plumbley, arXiv:2304.02319) and this package's variant.

Each input channel ``c`` of a layer is a matrix ``A_c ∈ R^{n×d}`` whose rows are the ``n`` filters'
``c``-slices (``d = kh·kw``), centred on their mean. Its top right singular vector ``v_c`` is the
direction that realises the matrix's operator norm ``σ_{1,c}``. Filter ``i`` is scored by how far it
reaches along these directions (not the textbook per-filter spectral norm, ``norms.spectral_norm``):

    t_i = Σ_c ⟨A_c[i], r_c⟩,   r_c = sign(u_c[0])·v_c,   score_i = t_i² / max_j t_j²  ∈ [0, 1].

* ``operator_norm`` (the default, registered as ``"operator_norm"``): the lesson's four steps, with
  v_c taken from the small d×d matrix A_cᵀA_c instead of an SVD of A_c.
* ``operator_norm_svd``: the same score by its definition, one batched SVD. Its orientation (each
  channel's sign is set by filter 0) is the authors' and is kept on purpose, so **the score is not
  permutation-equivariant**.
* ``operator_norm_equivariant``: this package's variant (not the paper's method, used by lessons 01,
  06 and 07), from the same v_c: score_i = Σ_c ⟨A_c[i], v_c⟩², normalised by its maximum.
* ``operator_norm_reference``: a deliberately looped numpy version in the structure of the authors'
  code (one SVD per channel, one trace per filter); for tests and timing only.

Introduced in: notebooks/01_norms_and_operator_norm.ipynb (§The math).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from pruning_lib.criteria.norms import as_filter_slices

# A centred layer this small relative to the weight is "all filters identical" up to float32 rounding.
_IDENTICAL_RTOL = 1e-5
# _channel_grams: below this centred share of a channel's energy, float32 subtraction cancels digits.
_MIN_CENTRED_SHARE = 0.5
_POWER, _ROUNDS = 8, 5          # _top_eigenvectors: P ← (P / tr P)⁸, 5 times: P ∝ G^(8⁵) = G^32768


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


def _grams(X: Tensor) -> Tensor:
    """Per-channel Gram matrices Σ_i X[i, c] X[i, c]ᵀ of slices X, shape (n, c, d) → (c, d, d).

    On the CPU, numpy's matmul recognises "a matrix times its own transpose" and calls BLAS ``syrk``
    (half the products of a general product) on the strided views, without a copy of X; this is
    about 2.5× faster than ``torch.bmm`` on the same views (measured on VGG-16's convs).
    """
    if X.shape[-1] == 1:                  # 1×1 kernels: each Gram is the number Σ_i X[i, c]²
        return X.square().sum(dim=0)[:, :, None]
    if X.device.type != "cpu":
        return torch.einsum("ncd,nce->cde", X, X)
    x = X.numpy()
    return torch.from_numpy(np.matmul(x.transpose(1, 2, 0), x.transpose(1, 0, 2)))


def _channel_grams(weight: Tensor, center: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Validate ``weight`` and form G_c = A_cᵀA_c for every channel without centring W.

    G_c = Σ_i (W_ic − μ_c)(W_ic − μ_c)ᵀ = Σ_i W_ic W_icᵀ − n μ_c μ_cᵀ needs no centred copy of W.
    Where the subtraction would cancel (the mean holds over half of some channel's energy; also
    identical filters, one filter, an all-zero weight), G is formed from ``_centred_slices``, which
    raises its errors. NaN/inf entries show in the sums, so W is not scanned for them separately.

    Returns:
        (W, μ, G) for ``weight`` and ``center`` as in ``operator_norm``: W (n, c, d) float32, μ (c, d)
        the mean over filters (0 if not ``center``) and G (c, d, d).
    """
    if not isinstance(weight, Tensor) or weight.ndim not in (2, 3, 4) or weight.numel() == 0:
        as_filter_slices(weight)                                    # raises the package's error
    W = weight.detach().float().reshape(weight.shape[0], weight.shape[1], -1)   # (n, c, d)
    n = W.shape[0]
    total = W.sum(dim=0)                                            # (c, d)
    if not bool(torch.isfinite(total).all()):
        as_filter_slices(weight)                                    # raises for NaN/inf entries
    mu = total / n if center else torch.zeros_like(total)          # (c, d)
    raw = _grams(W)                                                 # (c, d, d)
    G = raw - n * mu[:, :, None] * mu[:, None, :]                   # (c, d, d)
    energy, centred = raw.diagonal(dim1=1, dim2=2).sum(1), G.diagonal(dim1=1, dim2=2).sum(1)  # (c,)
    if bool((centred >= _MIN_CENTRED_SHARE * energy).all()) and bool(energy.sum() > 0):
        return W, mu, G
    return W, mu, _grams(_centred_slices(weight, center))


def _matrix_power(P: Tensor, k: int) -> Tensor:
    """P^k for a batch of small square matrices P (c, d, d), by repeated squaring.

    On the CPU numpy's batched matmul is used: for c matrices of 9×9 it makes one BLAS call per
    matrix, in about 60% of ``torch.linalg.matrix_power``'s time (measured on VGG-16's convs).
    """
    if P.device.type != "cpu":
        return torch.linalg.matrix_power(P, k)
    return torch.from_numpy(np.linalg.matrix_power(P.numpy(), k))


def _top_eigenvectors(G: Tensor) -> Tensor:
    """Top eigenvector of each symmetric positive semi-definite G_c, by repeated squaring.

    With G_c = Σ_j λ_j q_j q_jᵀ (λ_1 ≥ λ_2 ≥ … ≥ 0), five rounds of P ← (P / tr P)⁸ give
    P ∝ G_c^32768: each q_j (j ≥ 2) is damped by (λ_j/λ_1)^32768 < 10⁻⁷ whenever λ_2/λ_1 < 1 − 5·10⁻⁴
    (σ_2/σ_1 < 1 − 2.5·10⁻⁴), so P ∝ q_1 q_1ᵀ to float32 precision and its largest column is ±q_1.
    (The trace keeps P's eigenvalues in [0, 1], the largest ≥ d⁻⁸.) If λ_1 ≈ λ_2, q_1 is ill-defined:
    an SVD returns some unit vector of the top eigenspace, and so does this, maybe not the same one.

    Args:
        G: Symmetric positive semi-definite matrices, shape (c, d, d).

    Returns:
        v, shape (c, d): unit top eigenvectors, with an arbitrary sign; 0 where G_c = 0.
    """
    if G.shape[-1] == 1:                                            # 1×1: the eigenvector of [g] is 1
        return (G[:, :, 0] > 0).to(G.dtype)                         # (c, 1)
    tiny = torch.finfo(G.dtype).tiny
    P = G
    for _ in range(_ROUNDS):
        trace = P.diagonal(dim1=1, dim2=2).sum(dim=1).clamp_min(tiny)   # (c,)
        P = _matrix_power(P / trace[:, None, None], _POWER)
    best = P.diagonal(dim1=1, dim2=2).argmax(dim=1)                 # (c,): largest column of P ∝ qqᵀ
    v = P[torch.arange(len(P), device=P.device), :, best]           # (c, d)
    return v / torch.linalg.vector_norm(v, dim=1, keepdim=True).clamp_min(tiny)


def _channel_directions(weight: Tensor, center: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Steps 1 and 2 of the math: the mean μ_c and top right singular vector v_c of every A_c.

    A_c = W[:, c] − μ_c is never formed: v_c is the top eigenvector of the d×d matrix A_cᵀA_c
    (A_c = U Σ Vᵀ gives A_cᵀA_c = V Σ² Vᵀ), which ``_channel_grams`` computes from W and μ.

    Returns:
        W (n, c, d) float32, μ (c, d) (0 if not ``center``) and v (c, d) with an arbitrary sign.
    """
    W, mu, G = _channel_grams(weight, center)               # (n, c, d), (c, d), (c, d, d)
    return W, mu, _top_eigenvectors(G)


def operator_norm_svd(weight: Tensor, center: bool = True) -> Tensor:
    """Singh & Plumbley's operator-norm score by its definition: score_i = t_i² / max_j t_j².

    Per input channel c: A_c = W[:, c] − μ_c (n × d), thin SVD A_c = U Σ Vᵀ (one batched SVD over
    channels), r_c = sign(U[0, 0])·V[:, 0] (sign(0) → +1) and t_i = Σ_c ⟨A_c[i], r_c⟩. This is the
    authors' orientation rule, kept on purpose: the score ignores the SVD routine's sign convention but
    **does** depend on which filter is stored first, so it is not permutation-equivariant (see
    ``operator_norm_equivariant``). ``operator_norm`` computes the same score faster.

    Args:
        weight: (n, c, kh, kw) conv weight (or (n, c, k) / (n, c), then d = k or 1).
        center: Centre each channel slice over filters (the authors' code does, Algorithm 1 does not).

    Returns:
        Scores, shape (n,), float32, in [0, 1] with maximum 1; HIGHER = KEEP. Computed on the CPU
        whatever the weight's device (a batched SVD of c small matrices is slow on a GPU).

    Raises:
        TypeError, ValueError: as ``operator_norm``.

    Introduced in: notebooks/01_norms_and_operator_norm.ipynb (§The math).

    Example:
        >>> w = torch.tensor([[1.0, 2.0], [3.0, 2.0], [5.0, 2.0]])   # (3, 2): d = 1
        >>> operator_norm_svd(w)   # channel 0 centred: -2, 0, 2; channel 1 is constant → 0
        tensor([1., 0., 1.])
    """
    A = _centred_slices(weight.cpu(), center).transpose(0, 1)   # (c, n, d), on the CPU
    U, _, Vh = torch.linalg.svd(A, full_matrices=False)     # U (c, n, k), Vh (c, k, d), k = min(n, d)
    sign = torch.where(U[:, 0, 0] < 0, -1.0, 1.0)           # (c,): orientation by filter 0
    r = Vh[:, 0, :] * sign[:, None]                         # (c, d)
    t = torch.einsum("cnd,cd->n", A, r)                     # (n,)
    return _normalised(t.square())

def operator_norm(weight: Tensor, center: bool = True) -> Tensor:
    """Singh & Plumbley's operator-norm score, step by step as in the lesson: score_i = t_i² / max_j t_j².

    1. A_c = W[:, c] − μ_c, the c-slices of all filters centred over filters (n × d);
    2. v_c, the top right singular vector of A_c = U Σ Vᵀ: the top eigenvector of the d×d matrix
       A_cᵀA_c = V Σ² Vᵀ (``_channel_directions``; no SVD and no centred copy of W);
    3. r_c = sign(u_c[0])·v_c: u_c = A_c v_c / σ_c, so sign(u_c[0]) = sign(⟨A_c[0], v_c⟩)
       (sign(0) → +1); r_c is the same for v_c and −v_c;
    4. t_i = Σ_c ⟨A_c[i], r_c⟩ = Σ_c ⟨W_ic, r_c⟩ − Σ_c ⟨μ_c, r_c⟩: one matrix-vector product on W.

    Equal to ``operator_norm_svd`` (the definition, one SVD per channel) up to float32 rounding
    whenever every channel's top direction is defined (σ_2/σ_1 < 1 − 2.5·10⁻⁴); closer than that,
    both pick an arbitrary top direction.

    Args:
        weight: (n, c, kh, kw) conv weight (or (n, c, k) / (n, c), then d = k or 1).
        center: Centre each channel slice over filters (the authors' code does, Algorithm 1 does not).

    Returns:
        Scores, shape (n,), float32, in [0, 1] with maximum 1; HIGHER = KEEP.

    Raises:
        TypeError: if ``weight`` is not a tensor.
        ValueError: wrong number of dimensions, no filters, NaN/inf, an all-zero weight, a single
            filter (or identical filters) with ``center=True``.

    Introduced in: notebooks/01_norms_and_operator_norm.ipynb (§The math).

    Example:
        >>> operator_norm(torch.tensor([[1.0, 2.0], [3.0, 2.0], [5.0, 2.0]]))   # d = 1
        tensor([1., 0., 1.])
    """
    W, mu, v = _channel_directions(weight, center)          # steps 1–2: (n, c, d), (c, d), (c, d)
    first = ((W[0] - mu) * v).sum(dim=1)                    # step 3: ⟨A_c[0], v_c⟩ = σ_c·u_c[0], (c,)
    r = torch.where(first[:, None] < 0, -v, v)              #         r_c = sign(u_c[0])·v_c, (c, d)
    t = W.flatten(1) @ r.flatten() - (mu * r).sum()         # step 4: t_i = Σ_c ⟨W_ic − μ_c, r_c⟩, (n,)
    return _normalised(t.square())


def operator_norm_equivariant(weight: Tensor, center: bool = True) -> Tensor:
    """This package's permutation-equivariant variant: score_i = Σ_c ⟨A_c[i], v_c⟩², normalised.

    **Not the paper's method.** Same centring and per-channel top singular vector v_c as
    ``operator_norm`` (and computed the same way), but the per-channel projections are squared *before*
    they are summed, so no orientation of v_c is needed at all. Why not orient v_c by some statistic:

    * with centring, the projections of a channel sum to 0 (``Σ_i A_c[i] = 0``), so "make the sum
      (or the mean filter's projection) positive" is undefined exactly in the default setting;
    * any sign rule computed from the data (skewness, majority vote) flips when its statistic crosses
      0, and a flip in one channel re-ranks every filter; squaring is continuous in the weights;
    * it has a plain meaning: Σ_c σ_{1,c}² u_c[i]², the energy of filter i in the best rank-1
      approximation of every channel, and it equals the original score when c = 1.

    Permuting the filters permutes the scores; the sign of any v_c changes nothing.

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
    W, mu, v = _channel_directions(weight, center)                 # (n, c, d), (c, d), (c, d)
    p = torch.linalg.vecdot(W, v) - (mu * v).sum(dim=1)           # (n, c): ⟨A_c[i], v_c⟩
    return _normalised(p.square().sum(dim=1))


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
