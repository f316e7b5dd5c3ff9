"""Discriminative layer pruning, the scoring half: score residual blocks and choose where to cut.

The scoring half (Jordao, Lie, Schwartz, "Discriminative Layer
Pruning for Convolutional Neural Networks", IEEE JSTSP 2020; the authors' code:
github.com/arturjordao/DiscriminativeLayerPruning): score residual blocks with PLS + VIP and choose
where to cut. ``pruning_lib.depth`` does the cut.

The pipeline, as in the authors' code for CIFAR ResNets:

1. ``models.residual_blocks``: the candidate layers, the residual blocks from a start stage on (the
   code's ``block = 2``: stage 3 only), in depth order.
2. ``block_features``: each block's residual sum (the ``Add`` output, before the block's ReLU),
   average-pooled to a small grid and flattened, for N labelled training images.
3. ``vip``: a PLS2 fit (scikit-learn ``PLSRegression``, ``scale=True``) of one-hot labels on one
   block's features, and the Variable Importance in Projection of every feature.
4. ``layer_scores``: a block's score is the mean VIP of its features. Because Σ_j VIP_j² = p for
   every fit, the mean is at most 1 and measures how *evenly* importance is spread over the block's
   features, not how much label information it holds (the docs of ``vip`` show the identity).
5. ``stop_index``: walk the blocks in depth order while the score keeps rising; stop at the first
   block whose successor does not score higher (the last block if the scores rise throughout: the
   authors' code leaves that case undefined).

Pooling (a decision of this package): the authors average-pool 32×32 CIFAR maps with an 8×8 window,
which leaves 4×4, 2×2 and 1×1 grids in stages 1, 2, 3. Our Fashion-MNIST maps are 28×28, 14×14, 7×7,
so ``block_features`` pools adaptively to the same grids (256, 128 and 64 features for widths 16, 32,
64).

Introduced in: notebooks/05_pls_layer_pruning.ipynb.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from pruning_lib import repro
from pruning_lib.activations import iter_batches
from pruning_lib.models import BasicBlock, check_resnet, residual_blocks
from pruning_lib.scoped import eval_mode, hooks

if TYPE_CHECKING:    # scikit-learn imports pandas when it is installed: load it only in pls_fit
    from sklearn.cross_decomposition import PLSRegression

GRID_BY_STAGE = {1: 4, 2: 2, 3: 1}   # pooled grid side per stage: the authors' AvgPool(8) on CIFAR


def check_n_images(n_images: int | None) -> None:
    """Raise ValueError unless ``n_images`` is None (all images) or a positive count."""
    if n_images is not None and n_images < 1:
        raise ValueError(f"n_images must be a positive number of images or None (all), got {n_images}")


@torch.no_grad()
def block_features(model: nn.Module, loader: Iterable[tuple[Tensor, Tensor]], blocks: Sequence[str], *,
                   n_images: int | None = None) -> tuple[dict[str, Tensor], Tensor]:
    """Pooled residual sums of ``blocks`` (before each block's ReLU) and the labels, for PLS.

    Each block's output map (B, C, H, W) is average-pooled to a g × g grid (``GRID_BY_STAGE``:
    4, 2, 1 for stages 1, 2, 3) and flattened to (B, C·g²). Hooks are removed afterwards; the
    model's train/eval mode is restored.

    Args:
        model: A ``ResNetCifar``.
        loader: Batches (images, labels).
        blocks: Names from ``residual_blocks``.
        n_images: Stop after this many images (None: the whole loader).

    Returns:
        ({block: features (N, C·g²) float64}, labels (N,) int64), on the CPU (the model runs on
        its parameters' device).
    """
    check_resnet(model)
    check_n_images(n_images)
    modules = dict(model.named_modules())
    unknown = [b for b in blocks if not isinstance(modules.get(b), BasicBlock)]
    if unknown:
        raise KeyError(f"not residual blocks of this model: {unknown}; blocks: {residual_blocks(model, 1)}")
    store: dict[str, list[Tensor]] = {b: [] for b in blocks}

    def hook(name: str):  # noqa: ANN202
        grid = GRID_BY_STAGE[int(name[len("layer")])]

        def record(_relu: nn.Module, inputs: tuple[Tensor, ...]) -> None:
            pooled = nn.functional.adaptive_avg_pool2d(inputs[0], grid)        # (B, C, g, g)
            store[name].append(pooled.flatten(1).double().cpu())
        return record

    labels = []
    device = repro.model_device(model)
    with eval_mode(model), hooks(pre=[(modules[f"{b}.relu"], hook(b)) for b in blocks]):
        for x, y in iter_batches(loader, n_images):
            model(x.to(device))
            labels.append(y.cpu())
    return {b: torch.cat(store[b]) for b in blocks}, torch.cat(labels)


def one_hot(labels: Tensor, num_classes: int | None = None) -> Tensor:
    """(N,) int labels → (N, K) float64 one-hot targets (K = max label + 1 unless given)."""
    k = int(labels.max()) + 1 if num_classes is None else num_classes
    return nn.functional.one_hot(labels.long(), k).double()


def pls_fit(X: Tensor, Y: Tensor, n_components: int = 4) -> PLSRegression:
    """scikit-learn PLS2 (NIPALS, ``scale=True``) of targets Y (N, K) on features X (N, p).

    Raises:
        ValueError: fewer than 2 samples, n_components outside [1, min(N, p)], or mismatched N.
    """
    if X.ndim != 2 or Y.ndim != 2 or len(X) != len(Y):
        raise ValueError(f"need X (N, p) and Y (N, K) with the same N, got {tuple(X.shape)}, "
                         f"{tuple(Y.shape)}")
    if len(X) < 2:
        raise ValueError(f"PLS needs at least 2 samples, got {len(X)}")
    if not 1 <= n_components <= min(X.shape):
        raise ValueError(f"n_components must be in [1, min(N, p)] = [1, {min(X.shape)}], got {n_components}")
    from sklearn.cross_decomposition import PLSRegression  # not at import: see the TYPE_CHECKING block

    return PLSRegression(n_components=n_components, scale=True).fit(X.numpy(), Y.numpy())


def vip_from_pls(pls: PLSRegression) -> Tensor:
    """VIP of every feature of a fitted PLS model, vectorised over features and components.

    VIP_j = sqrt( p · Σ_k SS_k (w_jk / ‖w_k‖)² / Σ_k SS_k ),  SS_k = (t_kᵀt_k)(q_kᵀq_k),

    with x-weights W (p, h), x-scores T (N, h) and y-loadings Q (K, h). Σ_j VIP_j² = p always
    (the normalised weights have unit columns), so mean_j VIP_j ≤ 1.

    Returns:
        (p,) float64.
    """
    W = torch.from_numpy(np.asarray(pls.x_weights_, dtype=np.float64))     # (p, h)
    T = torch.from_numpy(np.asarray(pls.x_scores_, dtype=np.float64))      # (N, h)
    Q = torch.from_numpy(np.asarray(pls.y_loadings_, dtype=np.float64))    # (K, h)
    ss = (T * T).sum(0) * (Q * Q).sum(0)                                    # (h,)
    w2 = (W / W.norm(dim=0, keepdim=True)) ** 2                             # (p, h)
    return torch.sqrt(W.shape[0] * (w2 @ ss) / ss.sum())


def vip(X: Tensor, labels: Tensor, n_components: int = 4) -> Tensor:
    """VIP scores (p,) of the features X (N, p) for predicting one-hot ``labels`` (N,) with PLS.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> y = torch.arange(40) % 2
        >>> X = torch.cat([y[:, None] + 0.1 * torch.randn(40, 1, generator=g),
        ...                torch.randn(40, 2, generator=g)], 1).double()
        >>> s = vip(X, y, n_components=1)
        >>> bool(s[0] > s[1:].max()), round(float((s ** 2).sum()), 6)   # the label feature wins; Σ VIP² = p
        (True, 3.0)
    """
    return vip_from_pls(pls_fit(X, one_hot(labels), n_components))


def vip_reference(pls: PLSRegression) -> Tensor:
    """VIP by the textbook double loop over features and components (for tests and the lesson)."""
    W, T, Q = (np.asarray(a, dtype=np.float64) for a in (pls.x_weights_, pls.x_scores_, pls.y_loadings_))
    p, h = W.shape
    ss = [float(T[:, k] @ T[:, k]) * float(Q[:, k] @ Q[:, k]) for k in range(h)]
    out = []
    for j in range(p):
        acc = sum(ss[k] * (W[j, k] / np.linalg.norm(W[:, k])) ** 2 for k in range(h))
        out.append(np.sqrt(p * acc / sum(ss)))
    return torch.tensor(out, dtype=torch.float64)


def layer_scores(features: dict[str, Tensor], labels: Tensor, n_components: int = 4) -> dict[str, float]:
    """Mean VIP of each block's features (one PLS per block), in the dict's (depth) order."""
    y = one_hot(labels)
    return {b: float(vip_from_pls(pls_fit(X, y, n_components)).mean()) for b, X in features.items()}


def stop_index(scores: Sequence[float]) -> int:
    """The authors' stop rule: the first l with scores[l+1] ≤ scores[l]; the last index if none.

    Examples:
        >>> stop_index([0.5, 0.7, 0.6, 0.9])
        1
        >>> stop_index([0.5, 0.6, 0.7])     # rising throughout: keep every candidate
        2
    """
    if not len(scores):
        raise ValueError("no scores: need at least one candidate block")
    for i in range(len(scores) - 1):
        if scores[i + 1] <= scores[i]:
            return i
    return len(scores) - 1
