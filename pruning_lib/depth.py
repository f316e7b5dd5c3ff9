"""Depth pruning: make a ResNet physically shallower (Jordao, Lie, Schwartz, IEEE JSTSP 2020).

``criteria.pls`` scores the residual blocks and chooses where to cut (``stop_index``); this module
does the surgery:

* ``truncate``: a new, physically shallower network: everything after the chosen block is dropped
  and a new head (ReLU → global average pool → Linear) is attached. The input model is untouched.
  A deviation from the authors' code: they pool with ``AvgPool(8)`` before their new head, which
  on 32×32 CIFAR maps leaves a 4×4, 2×2 or 1×1 grid, so a cut in stage 1 (16 channels) or stage 2
  (32 channels) feeds 4·4·16 = 256 or 2·2·32 = 128 features to their head, and a stage-3 cut 64.
  We pool globally (one number per channel: 16, 32 or 64 features), whatever the stage, so our
  stage-1/2 heads are smaller and see no spatial layout. (On our 28×28 maps, 28, 14 and 7 pixels
  wide, a fixed 8×8 pool would not even fit stage 3.) A stage-3 cut is the same in both.
* ``fit_head`` (ours, not the paper's, which initialises the new head randomly and fine-tunes for 200
  epochs) fits the new head by ridge regression on the pooled features, a linear probe: it makes a
  truncated network's accuracy *before* fine-tuning meaningful.
* ``remove_blocks`` (a variant from the authors' later code): drop chosen identity blocks anywhere,
  instead of truncating.

Introduced in: notebooks/05_pls_layer_pruning.ipynb.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

from pruning_lib import repro
from pruning_lib.activations import iter_batches
from pruning_lib.criteria.pls import check_n_images, one_hot
from pruning_lib.models import check_resnet, residual_blocks
from pruning_lib.scoped import eval_mode, hooks


class TruncatedResNet(nn.Module):
    """A ``ResNetCifar`` cut after one residual block, with a new head.

    stem → the kept blocks (``trunk``) → global average pool → Linear(C, num_classes). The kept
    blocks end with their own ReLU, which plays the authors' head ReLU. The authors' head pools
    with AvgPool(8) instead (256 or 128 features after a stage-1 or stage-2 cut; see the module
    docstring); a stage-3 cut is the same.

    Input (B, C, H, W) → logits (B, num_classes).
    """

    def __init__(self, stem: nn.Module, trunk: nn.Sequential, channels: int, num_classes: int) -> None:
        super().__init__()
        self.stem = stem
        self.trunk = trunk
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """Logits (B, num_classes) of images x (B, C, H, W) through the kept blocks and the new head."""
        return self.fc(torch.flatten(self.pool(self.trunk(self.stem(x))), 1))


def truncate(model: nn.Module, block: str, *, seed: int = 0) -> TruncatedResNet:
    """A new network: ``model`` up to and including ``block``, then a fresh head (seeded init).

    Args:
        model: A ``ResNetCifar`` (not modified; weights are deep-copied).
        block: Last block kept, e.g. "layer3.0".
        seed: Seeds the new Linear head's initialisation.

    Raises:
        TypeError: not a ``ResNetCifar``. KeyError: unknown block.
    """
    check_resnet(model)
    names = residual_blocks(model, 1)
    if block not in names:
        raise KeyError(f"unknown block {block!r}; blocks: {names}")
    modules = dict(model.named_modules())
    kept = [copy.deepcopy(modules[b]) for b in names[: names.index(block) + 1]]
    channels = kept[-1].conv2.conv.out_channels
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = TruncatedResNet(copy.deepcopy(model.stem), nn.Sequential(*kept), channels,
                              model.fc.out_features)
    return net.train(model.training)


@torch.no_grad()
def fit_head(model: nn.Module, loader: Iterable[tuple[Tensor, Tensor]], *, n_images: int | None = None,
             ridge: float = 1e-3) -> nn.Module:
    """A copy of ``model`` whose final Linear is fitted by ridge regression on one-hot labels.

    The head's inputs (the pooled features) are collected for up to ``n_images`` images; the fit is
    closed-form: [W b] = argmin ‖[F 1][W b]ᵀ − Y‖² + ridge·N·‖W‖². A linear probe (this package's
    choice, not the paper's), so a truncated network can be evaluated before fine-tuning.

    Args:
        model: A network whose last module is ``fc`` (``ResNetCifar`` or ``TruncatedResNet``).
        loader: Batches (images, labels).
        n_images: How many images to fit on (None: the whole loader).
        ridge: Strength of the L2 penalty on W, relative to N.

    Returns:
        The copy, with every submodule in the train/eval mode of ``model``'s.

    Raises:
        ValueError: ``n_images`` < 1, an empty loader, or linearly dependent head inputs with
            ``ridge`` = 0.
    """
    check_n_images(n_images)
    new = copy.deepcopy(model)                       # keeps every submodule's train/eval flag
    feats, labels = [], []
    device = repro.model_device(new)
    with eval_mode(new), hooks(pre=[(new.fc, lambda _m, inp: feats.append(inp[0].double().cpu()))]):
        for x, y in iter_batches(loader, n_images):
            new(x.to(device))
            labels.append(y.cpu())
    if not feats:
        raise ValueError("fit_head(): the loader yielded no images")
    F = torch.cat(feats)                                                   # (N, C)
    Y = one_hot(torch.cat(labels), new.fc.out_features)                    # (N, K)
    A = torch.cat([F, torch.ones(len(F), 1, dtype=F.dtype)], 1)           # (N, C + 1)
    penalty = ridge * len(F) * torch.eye(A.shape[1], dtype=F.dtype)
    penalty[-1, -1] = 0.0                                                  # no penalty on the bias
    try:
        coef = torch.linalg.solve(A.T @ A + penalty, A.T @ Y)              # (C + 1, K)
    except torch.linalg.LinAlgError as err:
        raise ValueError(f"the head's inputs are linearly dependent (e.g. a channel that is always 0) "
                         f"and ridge={ridge} does not regularise them; use ridge > 0") from err
    new.fc.weight.copy_(coef[:-1].T.float())                               # the fit ran on the CPU
    new.fc.bias.copy_(coef[-1].float())
    return new


def remove_blocks(model: nn.Module, blocks: Sequence[str]) -> nn.Module:
    """A copy of ``model`` without the given identity-shortcut blocks (the later variant).

    Only blocks whose shortcut is the identity can go: the first block of stages 2 and 3 changes the
    shape (stride 2, more channels), so removing it would break the network.

    Raises:
        KeyError: unknown block. ValueError: a block with a projection shortcut.
    """
    check_resnet(model)
    names = residual_blocks(model, 1)
    unknown = [b for b in blocks if b not in names]
    if unknown:
        raise KeyError(f"unknown blocks {unknown}; blocks: {names}")
    modules = dict(model.named_modules())
    fixed = [b for b in blocks if not isinstance(modules[b].shortcut, nn.Identity)]
    if fixed:
        raise ValueError(f"{fixed} change the shape (projection shortcut) and cannot be removed")
    new = copy.deepcopy(model)
    for b in blocks:
        stage, index = b.split(".")
        getattr(new, stage)[int(index)] = nn.Identity()
    return new
