"""Helpers shared by test modules (importable because pyproject's pytest ``pythonpath`` has tests/).

Fixtures live in conftest.py; these are plain functions that test modules call at import time too
(parametrisations, cached model builders).
"""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def bn_off_identity(model: nn.Module, seed: int, *, mean_std: float = 0.2, var_span: float = 1.5,
                    gamma: tuple[float, float] = (0.5, 1.0)) -> nn.Module:
    """Give every BatchNorm2d of ``model`` seeded statistics and affine parameters far from identity.

    A fresh BatchNorm is nearly the identity, which hides a channel sliced or masked at the wrong
    place; after this, every channel has its own γ ~ U(gamma[0], gamma[0] + gamma[1]),
    β ~ 0.2·N(0, 1), running mean ~ mean_std·N(0, 1) and running variance ~ U(0.5, 0.5 + var_span).

    Args:
        model: Changed in place (tests own the model they build) and returned in eval mode.
        seed: Seed of the generator that draws the values (the global RNG is not touched).
        mean_std: Standard deviation of the running means.
        var_span: Width of the running variances' uniform range above 0.5.
        gamma: (lowest γ, width of γ's uniform range).

    Returns:
        ``model``, in eval mode.
    """
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.copy_(gamma[0] + gamma[1] * torch.rand(n, generator=g))
            m.bias.copy_(0.2 * torch.randn(n, generator=g))
            m.running_mean.copy_(mean_std * torch.randn(n, generator=g))
            m.running_var.copy_(0.5 + var_span * torch.rand(n, generator=g))
    return model.eval()
