"""Active (data-driven) reference criteria: mean activation, APoZ and HRank.

Each runs the model on the first ``n_images`` images of a loader and returns
``{conv name: scores (n_filters,)}`` with HIGHER = KEEP, like every criterion in this package.
Activations are observed through ``pruning_lib.activations.record_activations``: for the zoo's
``ConvBNReLU`` units at the unit's ReLU output, or at its BatchNorm output when the unit has no ReLU
(ResNet's ``conv2`` before the residual add, projection shortcuts). At a BatchNorm site the
statistics are taken as a following ReLU would see them: the mean of |a| and the share of entries
≤ 0. On post-ReLU activations these are the plain mean and the share of zeros.

Introduced in: notebooks/01_norms_and_operator_norm.ipynb (§The math).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from pruning_lib.activations import Statistic, record_activations
from pruning_lib.models import check_conv_names


def _score(model: nn.Module, loader: Iterable, statistic: Statistic, n_images: int,
           layers: list[str] | None) -> dict[str, Tensor]:
    return record_activations(model, loader, check_conv_names(model, layers), n_images=n_images,
                              statistic=statistic)


def _mean_abs(act: Tensor) -> Tensor:
    return act.abs().mean(dim=(2, 3))                        # (B, C, H, W) → (B, C)


def _share_positive(act: Tensor) -> Tensor:
    return (act > 0).float().mean(dim=(2, 3))                # (B, C): 1 − share of zeros (APoZ)


def _feature_map_rank(act: Tensor) -> Tensor:
    return torch.linalg.matrix_rank(act.float())             # rank of each (H, W) map: (B, C)


def mean_activation(model: nn.Module, loader: Iterable, *, n_images: int = 256,
                    layers: list[str] | None = None) -> dict[str, Tensor]:
    """Mean activation of each filter's channel: s_k = mean over images and positions of |a_k|.

    At a ReLU site |a| = a, so this is the mean post-ReLU activation; at a BatchNorm site (no ReLU in
    the unit) it is the mean absolute BatchNorm output. A dead channel scores 0.

    Args:
        model: Not modified (eval mode during the run, hooks removed afterwards).
        loader: Yields ``(x, y)``, x of shape (B, C, H, W).
        n_images: Use the first ``n_images`` images.
        layers: Conv names; default ``models.prunable_convs(model)``.

    Returns:
        ``{conv name: scores (n_filters,)}``, float32; HIGHER = KEEP.

    Raises:
        KeyError: a requested layer is not a prunable conv.
        ValueError: see ``record_activations``.

    Introduced in: notebooks/01_norms_and_operator_norm.ipynb (§The math).
    """
    return _score(model, loader, _mean_abs, n_images, layers)


def apoz(model: nn.Module, loader: Iterable, *, n_images: int = 256,
         layers: list[str] | None = None) -> dict[str, Tensor]:
    """1 − APoZ (Hu et al. 2016, Network Trimming): the share of positive activations of each channel.

    APoZ_k is the average percentage of zeros in channel k's post-ReLU activations; a high APoZ
    means unimportant, so the score is s_k = 1 − APoZ_k to keep HIGHER = KEEP. At a BatchNorm site the
    entries ≤ 0 are counted as zeros (those a ReLU would zero). A dead channel scores 0.

    Arguments and errors: as ``mean_activation``.

    Returns:
        ``{conv name: scores (n_filters,)}`` in [0, 1], float32; HIGHER = KEEP.

    Introduced in: notebooks/01_norms_and_operator_norm.ipynb (§The math).
    """
    return _score(model, loader, _share_positive, n_images, layers)


def hrank(model: nn.Module, loader: Iterable, *, n_images: int = 256,
          layers: list[str] | None = None) -> dict[str, Tensor]:
    """HRank (Lin et al., CVPR 2020): average matrix rank of each channel's (H, W) feature map.

    s_k = (1/N) Σ_images rank(A[image, k]), with torch's default rank tolerance (as HRank's
    ``torch.matrix_rank``). Low-rank maps carry little information and are pruned first; a dead
    channel scores 0. The expensive criterion: one SVD per image, channel and layer.

    Arguments and errors: as ``mean_activation``.

    Returns:
        ``{conv name: scores (n_filters,)}`` in [0, min(H, W)], float32; HIGHER = KEEP.

    Introduced in: notebooks/01_norms_and_operator_norm.ipynb (§The math).
    """
    return _score(model, loader, _feature_map_rank, n_images, layers)
