"""Similarity-based passive filter pruning (Singh & Plumbley) and its Nyström version.

Interspeech 2022 (arXiv:2203.15751): each filter becomes a unit vector ``r_i`` (its rank-1
"representative"), ``D_ij = 1 − ⟨r_i, r_j⟩`` is the cosine distance, and a greedy pass over nearest
neighbours removes one filter of every very similar pair. ICASSP 2023 (arXiv:2210.17416): the
similarity matrix ``S = R Rᵀ`` is approximated from m landmark columns, ``S̃ = C W_k⁺ Cᵀ``
(``criteria.nystrom``). The method decides how many filters stay: no prune ratio, keep-sets, not scores.

Decisions (the authors' code: github.com/Arshdeep-Singh-Boparai/passive-filter-pruning-Interspeech22,
``Importance_claculation.py``; github.com/Arshdeep-Singh-Boparai/Efficient_similarity_Pruning_Algo,
``Efficient_Similarity_Pruning.py``):

* Orientation: ``r_i = sign(v_1[0])·u_1`` (authors' code); if |v_1[0]| ≤ 1e-9 (the authors get NaN
  when it is 0) the first channel with a clearly non-zero coefficient sets the sign.
* Precision: float64, as the authors' numpy; D is symmetrised so mutual neighbours tie exactly.
* Rounding: ``greedy_pair_keep`` rounds D to 5 decimals (ICASSP code); ``decimals=None``: none.
* Ties: nn(i) is the lowest index among equal distances; filters are visited by a stable sort of
  δ (lower index first). The authors' numpy ``argsort`` is unstable: on ties, lists can differ.
* Nearest neighbour and the diagonal: the library takes nn(i) = argmin_{j≠i} D_ij, excluding the
  diagonal explicitly. The authors take ``argsort(D[i])[1]``, the second entry of row i, assuming
  D_ii = 0 sorts first. That holds for the exact D, but not for the Nyström D̃ with m < kh·kw, whose
  diagonal 1 − S̃_ii is positive off the landmarks: there ``argsort(D̃[i])[1]`` can be filter i
  itself, or its second nearest other filter, so keep-lists and the smallest exact m
  (``smallest_exact_m``) differ from
  the authors' (measured on vgg16_slim: at m = 1…8 in conv1–8, 28 of 64 keep-lists; the smallest
  exact m of conv1 and conv2, 4 and 7 for ours against 6 and 8 for theirs). ``authors_diagonal=True``
  (``nearest_neighbours``, ``greedy_pair_keep``, ``NystromConfig``, ``nystrom_compare``,
  ``smallest_exact_m``) applies the authors' rule, with a stable sort for ties.

Introduced in: notebooks/02_similarity_and_nystrom.ipynb (§The math).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from pruning_lib import models
from pruning_lib.criteria.norms import as_filter_matrix, as_filter_slices
from pruning_lib.criteria.nystrom import approximation_error, choose_landmarks, nystrom_approximation
from pruning_lib.selection import Plan

_ORIENT_TOL = 1e-9   # |v_1[j]| below this does not decide the sign (round-off of a zero channel)


def _check_nonzero(norms: Tensor) -> None:
    zero = (norms == 0).nonzero().flatten().tolist()
    if zero:
        raise ValueError(f"filters {zero} are all zero: their representative is undefined; remove them")


def filter_representatives(weight: Tensor) -> Tensor:
    """Unit rank-1 representative of each filter: r_i = sign(v_1[0])·u_1 of M_i = U Σ Vᵀ.

    ``M_i = W[i].reshape(c, d)ᵀ`` (rows: the d = kh·kw spatial positions, columns: channels).
    ``u_1`` is the filter's dominant spatial pattern; the sign of channel 0's coefficient in ``v_1``
    orients it (the next channel if that coefficient is ≈ 0). One batched SVD for all filters.

    Args:
        weight: Conv weight (n, c, kh, kw) (or (n, c, k) / (n, c)).

    Returns:
        Representatives, shape (n, kh·kw), float64, unit rows.

    Raises:
        TypeError, ValueError: as ``norms.as_filter_matrix``; ValueError for an all-zero filter.

    Introduced in: notebooks/02_similarity_and_nystrom.ipynb (§The math).

    Example:
        >>> filter_representatives(torch.tensor([[[[3.0, 4.0]]], [[[0.0, -2.0]]]]))  # c = 1
        tensor([[ 0.6000,  0.8000],
                [ 0.0000, -1.0000]], dtype=torch.float64)
    """
    M = as_filter_slices(weight).double().transpose(1, 2)     # (n, d, c)
    U, S, Vh = torch.linalg.svd(M, full_matrices=False)       # (n, d, r), (n, r), (n, r, c)
    _check_nonzero(S[:, 0])
    v1 = Vh[:, 0, :]                                          # (n, c) dominant channel profile
    first = (v1.abs() > _ORIENT_TOL).int().argmax(dim=1)      # channel 0 unless its coefficient ≈ 0
    return torch.sign(v1.gather(1, first[:, None])) * U[:, :, 0]   # (n, 1) * (n, d)


def whole_filter_representatives(weight: Tensor) -> Tensor:
    """The whole filter as a unit vector: r_i = vec(W[i]) / ‖W[i]‖ (no rank-1 step, no orientation).

    Args:
        weight: Conv weight (n, c, kh, kw) (or (n, c, k) / (n, c)).

    Returns:
        Representatives, shape (n, c·kh·kw), float64, unit rows (errors as ``filter_representatives``).

    Introduced in: notebooks/02_similarity_and_nystrom.ipynb (§The math).
    """
    F = as_filter_matrix(weight).double()                     # (n, c*kh*kw)
    norms = torch.linalg.vector_norm(F, dim=1)                # (n,)
    _check_nonzero(norms)
    return F / norms[:, None]


def _check_reps(reps: Tensor) -> Tensor:
    if not isinstance(reps, Tensor) or reps.ndim != 2 or reps.shape[0] == 0:
        raise ValueError(f"representatives must be a non-empty (n, d) tensor, got "
                         f"{getattr(reps, 'shape', type(reps).__name__)}")
    norms = torch.linalg.vector_norm(reps.double(), dim=1)   # (n,); 25× faster than isfinite(reps)
    if not torch.isfinite(norms).all():                      # a NaN/inf entry makes its row's norm so
        raise ValueError("representatives contain NaN or inf entries")
    if not bool(((norms - 1).abs() <= 1e-6).all()):
        raise ValueError("representatives must be unit vectors: use (whole_)filter_representatives")
    return reps.double()


def cosine_distances(reps: Tensor) -> Tensor:
    """Cosine-distance matrix D = 1 − R Rᵀ of unit representatives, one matrix product.

    Args:
        reps: Unit representatives R, shape (n, d).

    Returns:
        D, shape (n, n), float64: symmetric, zero diagonal, entries clamped to [0, 2].

    Introduced in: notebooks/02_similarity_and_nystrom.ipynb (§The math).
    """
    R = _check_reps(reps)
    D = (1.0 - R @ R.T).clamp(0.0, 2.0)    # (n, n)
    D = (D + D.T) / 2                      # bit-exact symmetry: D_ij == D_ji for the tie rule
    return D.fill_diagonal_(0.0)


def cosine_distances_looped(reps: Tensor) -> Tensor:
    """Reference, deliberately slow (tests and timing only): 1 − ⟨a, b⟩/(‖a‖‖b‖), pair by pair.

    Args:
        reps: Unit representatives, shape (n, d).

    Returns:
        D, shape (n, n), float64 (no clamping, no symmetrisation).

    Introduced in: notebooks/02_similarity_and_nystrom.ipynb (§In code).
    """
    R = _check_reps(reps)
    norm = torch.linalg.vector_norm
    rows = [[float(1.0 - torch.dot(a, b) / (norm(a) * norm(b))) for b in R] for a in R]   # n² cosines
    return torch.tensor(rows, dtype=torch.float64)


def nearest_neighbours(distances: Tensor, *, authors_diagonal: bool = False) -> tuple[Tensor, Tensor]:
    """Nearest other filter nn(i) = argmin_{j≠i} D_ij and its distance δ_i = D_{i,nn(i)}.

    The diagonal is excluded explicitly; among equal distances the lowest index j wins.

    With ``authors_diagonal=True``, the authors' rule instead: nn(i) = ``argsort(D[i])[1]``, the
    second entry of row i sorted ascending (a stable sort: equal distances in index order). On an
    exact D (zero diagonal) the two rules agree unless another filter is at distance 0. On a
    Nyström D̃ with m < kh·kw the diagonal is positive off the landmarks, and the second entry can
    be i itself (then δ_i = D̃_ii) or i's second-nearest other filter.

    Example:
        >>> D = torch.tensor([[0.5, 0.2, 0.9], [0.2, 0.0, 0.4], [0.9, 0.4, 0.1]])   # a D̃-like diagonal
        >>> nearest_neighbours(D)[0].tolist(), nearest_neighbours(D, authors_diagonal=True)[0].tolist()
        ([1, 0, 1], [0, 0, 1])

    Args:
        distances: D, shape (n, n), n ≥ 2.
        authors_diagonal: Use the authors' ``argsort(D[i])[1]`` (the diagonal is not excluded).

    Returns:
        (nn, δ): indices, shape (n,), int64, and distances, shape (n,).

    Raises:
        ValueError: for a non-square or non-finite matrix, or fewer than 2 filters.

    Introduced in: notebooks/02_similarity_and_nystrom.ipynb (§The math).
    """
    if not isinstance(distances, Tensor) or distances.ndim != 2 or len(distances) != distances.shape[1]:
        raise ValueError(f"expected a square (n, n) distance matrix, got "
                         f"{getattr(distances, 'shape', type(distances).__name__)}")
    if len(distances) < 2:
        raise ValueError(f"similarity pruning needs at least 2 filters, got {len(distances)}")
    if not torch.isfinite(distances).all():
        raise ValueError("distance matrix contains NaN or inf")
    if authors_diagonal:                                  # the authors' argsort(D[i])[1]
        nn_idx = torch.sort(distances, dim=1, stable=True).indices[:, 1]     # (n,), may be i itself
    else:
        D = distances.clone().fill_diagonal_(float("inf"))    # (n, n), never pick i itself
        nn_idx = D.argmin(dim=1)                              # first (lowest) index among ties
    return nn_idx, distances.gather(1, nn_idx[:, None])[:, 0]


def greedy_pair_keep(distances: Tensor, *, decimals: int | None = 5,
                     authors_diagonal: bool = False) -> Tensor:
    """Greedy pair elimination: visit filters by ascending δ; keep i unless removed, remove nn(i).

    A filter that is already kept and later becomes someone's nearest neighbour stays kept (as in
    the authors' code). The first visited filter is always kept and its neighbour always removed
    (with ``authors_diagonal``, a filter that is its own neighbour is kept and removes nothing).

    Args:
        distances: D (or D̃), shape (n, n), n ≥ 2.
        decimals: Round D to this many decimals first (authors' ICASSP code: 5); None: no rounding.
        authors_diagonal: Nearest neighbours by the authors' ``argsort(D[i])[1]`` (see
            ``nearest_neighbours``); default: the nearest *other* filter.

    Returns:
        Kept filter indices, sorted, int64, shape (n_kept,).

    Introduced in: notebooks/02_similarity_and_nystrom.ipynb (§The math).

    Example:
        >>> r = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=torch.float64)
        >>> greedy_pair_keep(cosine_distances(r))   # δ = .4, .2, .2: visit 1 (keep, drop 2), 2, 0
        tensor([0, 1])
    """
    D = distances if decimals is None else torch.round(distances, decimals=decimals)
    nn_idx, delta = nearest_neighbours(D, authors_diagonal=authors_diagonal)
    order = torch.sort(delta, stable=True).indices         # ascending δ; ties: lower index first
    neighbour = nn_idx.tolist()
    removed, keep = [False] * len(D), []
    for i in order.tolist():
        if not removed[i]:
            keep.append(i)
            removed[neighbour[i]] = True
    return torch.tensor(sorted(keep), dtype=torch.long)


def nystrom_distances(reps: Tensor, landmarks: Tensor, *, k: int | None = None) -> Tensor:
    """D̃ = 1 − S̃ with S̃ = C · pinv(W_k) · Cᵀ (``nystrom.nystrom_approximation``), m landmarks.

    Not clamped, diagonal as computed (greedy ignores it): ``approximation_error(D, D̃)`` is δ.

    Args:
        reps: Unit representatives R, shape (n, d).
        landmarks: Distinct landmark indices, shape (m,) (``nystrom.choose_landmarks``).
        k: Rank of W_k, 1 ≤ k ≤ m; default m.

    Returns:
        D̃, shape (n, n), float64, symmetric.

    Introduced in: notebooks/02_similarity_and_nystrom.ipynb (§The math).
    """
    return 1.0 - nystrom_approximation(_check_reps(reps), landmarks, k=k)


@dataclass(frozen=True)
class NystromConfig:
    """Nyström options of the similarity method (ICASSP 2023).

    m landmarks per layer (default min(n, kh·kw), the smallest m
    that is generically exact; a dict {layer: m} gives each layer its own m in ``similarity_plan``),
    rank k ≤ m of W_k (default m), a generator (None: the first m filters, as the authors; else
    m random filters per layer, drawn in forward order), and ``authors_diagonal``: nearest
    neighbours on D̃ by the authors' ``argsort(D̃[i])[1]``, which can pick filter i itself when
    m < kh·kw (``nearest_neighbours``); default False: the nearest other filter. At m ≥ kh·kw, D̃ = D
    and the two rules agree (barring filters at distance 0).
    """

    m: int | dict[str, int] | None = None
    k: int | None = None
    generator: torch.Generator | None = None
    authors_diagonal: bool = False


def similarity_keep(weight: Tensor, *, nystrom: NystromConfig | None = None,
                    decimals: int | None = 5) -> Tensor:
    """Filters of one conv that survive similarity pruning (exact D, or Nyström D̃).

    Args:
        weight: Conv weight (n, c, kh, kw), n ≥ 2.
        nystrom: None: exact distances (Interspeech 2022); a config: Nyström (ICASSP 2023).
        decimals: Rounding of D before the greedy step (see ``greedy_pair_keep``).

    Returns:
        Kept filter indices, sorted, int64, shape (n_kept,), on the CPU. Computed on the CPU
        whatever the weight's device: the greedy loop is sequential (on a GPU each step would wait
        for a device round trip).

    Introduced in: notebooks/02_similarity_and_nystrom.ipynb (§In code).
    """
    R = filter_representatives(weight.cpu())               # (n, kh*kw), on the CPU
    if nystrom is None:
        return greedy_pair_keep(cosine_distances(R), decimals=decimals)
    m = min(R.shape) if nystrom.m is None else nystrom.m      # default min(n, d)
    L = choose_landmarks(len(R), m, generator=nystrom.generator)
    return greedy_pair_keep(nystrom_distances(R, L, k=nystrom.k), decimals=decimals,
                            authors_diagonal=nystrom.authors_diagonal)


def _plan_layers(model: nn.Module, layers: Sequence[str] | None, coupled: set[str]) -> list[str]:
    modules = dict(model.named_modules())
    if layers is None:   # default: uncoupled convs with more than one spatial position
        return [n for n in models.prunable_convs(model)
                if n not in coupled and modules[n].weight[0, 0].numel() > 1]
    layers = models.check_conv_names(model, layers)
    tied = [n for n in layers if n in coupled]
    if tied:
        raise ValueError(f"{tied} are coupled with other layers (residual add): similarity pruning "
                         "picks one keep-set per layer, so it cannot plan a coupled group")
    return list(layers)


def similarity_plan(model: nn.Module, *, layers: Sequence[str] | None = None,
                    nystrom: NystromConfig | None = None, groups: Sequence[Sequence[str]] = (),
                    decimals: int | None = 5) -> Plan:
    """A plan that removes, in each layer, the filters that greedy pair elimination drops.

    Coupled layers (members of a multi-member group of ``groups``, e.g. a ResNet stage's residual
    convs) are never planned: the method picks one keep-set per layer from its own filters and the
    papers prune plain CNNs only, so there is no faithful way to merge keep-sets. They are skipped
    by default and refused when named in ``layers``; without ``groups``, ``surgery.apply_plan``
    refuses a plan that splits a coupled group. 1×1 convs are skipped by default (d = 1: r_i = ±1).

    Args:
        model: Not modified.
        layers: Conv names to prune; default every prunable, uncoupled conv with kh·kw > 1.
        nystrom: None: exact distances; a ``NystromConfig``: the Nyström approximation.
        groups: Coupled conv names, from ``surgery.coupled_groups(model, example_input)``.
        decimals: Rounding of D before the greedy step.

    Returns:
        ``{"removed": {layer: sorted removed indices}, "coupled": []}``, for ``surgery.apply_plan``.

    Raises:
        KeyError: unknown layer, or a per-layer ``nystrom.m`` without that layer. ValueError: a
            coupled layer requested, or a layer's error, named
            (m > n, one filter, NaN weights, an all-zero filter).

    Introduced in: notebooks/02_similarity_and_nystrom.ipynb (§Experiment).
    """
    coupled = {name for g in groups if len(g) > 1 for name in g}
    modules = dict(model.named_modules())
    removed = {}
    for name in _plan_layers(model, layers, coupled):
        weight = modules[name].weight.detach()
        config = nystrom
        if nystrom is not None and isinstance(nystrom.m, dict):
            if name not in nystrom.m:
                raise KeyError(f"NystromConfig.m has no entry for {name!r}; it has {list(nystrom.m)}")
            config = replace(nystrom, m=nystrom.m[name])
        try:
            keep = set(similarity_keep(weight, nystrom=config, decimals=decimals).tolist())
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from err
        removed[name] = [i for i in range(weight.shape[0]) if i not in keep]
    return {"removed": removed, "coupled": []}


def nystrom_compare(weight: Tensor, m: int, *, k: int | None = None, authors_diagonal: bool = False) -> dict:
    """Exact vs Nyström similarity pruning of one conv with m landmarks (the first m filters).

    Args:
        weight: Conv weight (n, c, kh, kw).
        m: Number of landmark columns, 1 ≤ m ≤ n.
        k: Rank of the landmark block (default m).
        authors_diagonal: Both keep-lists with the authors' nearest-neighbour rule
            ``argsort(D[i])[1]`` (``nearest_neighbours``), as their script compares them.

    Returns:
        {"m", "error" (‖D − D̃‖₂), "kept_exact", "kept_nystrom", "differ" (filters whose keep/remove
        decision changed), "identical"}.
    """
    reps = filter_representatives(weight)                     # (n, kh*kw)
    exact = cosine_distances(reps)                             # (n, n)
    approx = nystrom_distances(reps, choose_landmarks(len(reps), m), k=k)
    keep_exact = set(greedy_pair_keep(exact, authors_diagonal=authors_diagonal).tolist())
    keep_approx = set(greedy_pair_keep(approx, authors_diagonal=authors_diagonal).tolist())
    return {"m": m, "error": approximation_error(exact, approx),
            "kept_exact": len(keep_exact), "kept_nystrom": len(keep_approx),
            "differ": len(keep_exact ^ keep_approx), "identical": keep_exact == keep_approx}


def smallest_exact_m(weight: Tensor, *, decimals: int | None = 5, authors_diagonal: bool = False) -> dict:
    """The smallest number of landmarks whose Nyström keep-list equals the exact one (ICASSP 2023).

    The authors' selection rule: sweep m = 1, 2, … with the first m filters as landmarks (k = m)
    and stop at the first m whose ``greedy_pair_keep`` list is the exact list. The sweep ends by
    m = n at the latest (every column known: D̃ = D up to round-off). The loop is over m, not over
    filters; each step is one vectorised Nyström product.

    By default nearest neighbours exclude the diagonal; the authors' script takes
    ``argsort(D̃[i])[1]``, which can be filter i itself while m < kh·kw, so its m can differ from
    ours (``authors_diagonal=True`` reproduces their rule, for both lists; ``nearest_neighbours``).

    Args:
        weight: Conv weight (n, c, kh, kw), n ≥ 2.
        decimals: Rounding of D and D̃ before the greedy step.
        authors_diagonal: Nearest neighbours by the authors' ``argsort(D[i])[1]``.

    Returns:
        {"m": smallest m, "n": filters, "d": kh·kw, "kept": filters kept, "error": ‖D − D̃‖₂ at that m}.

    Introduced in: notebooks/06_audio_pruning.ipynb (§Nyström).

    Example:
        >>> w = torch.randn(16, 4, 3, 3, generator=torch.Generator().manual_seed(0))
        >>> smallest_exact_m(w)["m"] <= 9     # generically exact once m ≥ d = 9
        True
    """
    R = filter_representatives(weight)                        # (n, d)
    exact = cosine_distances(R)
    keep = greedy_pair_keep(exact, decimals=decimals, authors_diagonal=authors_diagonal)
    n, d = R.shape
    for m in range(1, n + 1):
        approx = nystrom_distances(R, choose_landmarks(n, m))
        if torch.equal(greedy_pair_keep(approx, decimals=decimals, authors_diagonal=authors_diagonal), keep):
            break
    return {"m": m, "n": n, "d": d, "kept": len(keep),
            "error": float(torch.linalg.matrix_norm(exact - approx, ord=2))}
