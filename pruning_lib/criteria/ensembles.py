"""Filter importance from linear filter ensembles (Sándor, Pável, Csató, arXiv:2001.08142).

Instead of reading a filter's importance off its weights, *measure* it: run the network many times
with random subsets of filters switched off, record the loss each time, and fit a linear additive
model of the loss as a function of which filters were off. A filter's coefficient is the loss
increase its removal causes, averaged over random contexts of other removals.

The paper has no public code and its abstract gives the idea only, so this module is **our
reconstruction** (``pruning_methods.md`` §2.2, "unverified (our reading)"):

1. K masks z ∈ {0, 1}^N over the N filters of the chosen layers, z_i ~ Bernoulli(q) (q = keep prob.).
2. For each mask, the loss L_k on a fixed evaluation batch with the masked filters switched off.
   "Off" means the filter's unit output (after BatchNorm and ReLU) is zero, which is exactly what
   physically removing the filter does to the rest of the network (``tests`` check masked ≡ pruned).
3. Ridge regression L_k ≈ β_0 + Σ_i β_i (1 − z_i^(k)); importance β_i, higher = keep.

Masks are evaluated in chunks: the batch is tiled c times and each copy gets its own mask, so c
masks cost one forward pass of c·B images (vectorised over masks). ``masked_losses_reference``
evaluates one mask per pass, for the tests.

Introduced in: notebooks/04_linear_filter_ensembles.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from pruning_lib.activations import iter_batches
from pruning_lib.models import prunable_convs


@dataclass(frozen=True)
class EnsembleConfig:
    """Options of the ensemble estimate (the paper's values are unknown; these are ours).

    Attributes:
        n_masks: K, the number of random masks (the regression wants K well above N).
        keep_prob: q, the chance that a filter stays on in a mask.
        ridge: α of the ridge regression (on the centred removal indicators).
        chunk: Masks evaluated per forward pass (memory ∝ chunk · batch).
        seed: Seeds the masks.
    """

    n_masks: int = 512
    keep_prob: float = 0.8
    ridge: float = 1.0
    chunk: int = 16
    seed: int = 0


def unit_of(conv_name: str) -> str:
    """The module whose output is a filter's final response: "features.conv3.conv" → "features.conv3"."""
    return conv_name.removesuffix(".conv")


def sample_masks(n_units: int, n_masks: int, keep_prob: float, generator: torch.Generator) -> Tensor:
    """K × N keep-masks, each entry 1 with probability ``keep_prob`` (float32 of 0/1)."""
    if not 0 < keep_prob <= 1:
        raise ValueError(f"keep_prob must be in (0, 1], got {keep_prob}")
    if n_masks < 1 or n_units < 1:
        raise ValueError(f"need at least one mask and one unit, got n_masks={n_masks}, n_units={n_units}")
    return (torch.rand(n_masks, n_units, generator=generator) < keep_prob).float()


def _layer_slices(model: nn.Module, layers: Sequence[str]) -> dict[str, slice]:
    modules = dict(model.named_modules())
    convs = prunable_convs(model)
    unknown = [name for name in layers if name not in convs]
    if unknown:
        raise KeyError(f"not prunable convs of this model: {unknown}; available: {convs}")
    missing = [name for name in layers if unit_of(name) not in modules]
    if missing:
        raise KeyError(f"{missing} do not sit in a ConvBNReLU unit (no module {unit_of(missing[0])!r})")
    slices, start = {}, 0
    for name in layers:
        n = modules[name].out_channels
        slices[name] = slice(start, start + n)
        start += n
    return slices


@torch.no_grad()
def masked_losses(model: nn.Module, layers: Sequence[str], masks: Tensor, x: Tensor, y: Tensor, *,
                  chunk: int = 16) -> Tensor:
    """Cross-entropy loss of ``model`` on (x, y) under each keep-mask, vectorised over masks.

    Args:
        model: Evaluated in eval mode (restored afterwards); not modified.
        layers: Conv names; their filters are the mask's N units, in this order.
        masks: (K, N) 0/1 keep-masks.
        x: (B, C, H, W) evaluation batch; y: (B,) labels.
        chunk: Masks per forward pass (the batch is tiled ``chunk`` times).

    Returns:
        (K,) mean cross-entropy per mask, float64.
    """
    slices = _layer_slices(model, layers)
    n_units = sum(s.stop - s.start for s in slices.values())
    if masks.ndim != 2 or masks.shape[1] != n_units:
        raise ValueError(f"masks must be (K, {n_units}) for these layers, got {tuple(masks.shape)}")
    modules = dict(model.named_modules())
    b = len(x)
    current: dict[str, Tensor] = {}

    def hook(name: str):  # noqa: ANN202
        def apply(_unit: nn.Module, _inputs: tuple, out: Tensor) -> Tensor:
            m = current[name]                                          # (c, n)
            return out * m.repeat_interleave(b, dim=0)[:, :, None, None].to(out.dtype)
        return apply

    handles = [modules[unit_of(name)].register_forward_hook(hook(name)) for name in layers]
    was_training = model.training
    model.eval()
    losses = []
    try:
        starts = range(0, len(masks), chunk)
        for start in tqdm(starts, desc="masks", leave=False, disable=len(starts) < 20):
            block = masks[start:start + chunk]                              # (c, N)
            c = len(block)
            for name, s in slices.items():
                current[name] = block[:, s]
            logits = model(x.repeat(c, *([1] * (x.ndim - 1))))             # (c·B, classes)
            loss = nn.functional.cross_entropy(logits, y.repeat(c), reduction="none")
            losses.append(loss.view(c, b).mean(1).double())
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return torch.cat(losses)


def masked_losses_reference(model: nn.Module, layers: Sequence[str], masks: Tensor, x: Tensor,
                            y: Tensor) -> Tensor:
    """The same losses, one mask per forward pass (a deliberately plain reference for the tests)."""
    return torch.cat([masked_losses(model, layers, m[None], x, y, chunk=1) for m in masks])


def fit_importance(masks: Tensor, losses: Tensor, ridge: float = 1.0) -> Tensor:
    """Ridge coefficients β of L ≈ β_0 + Σ_i β_i (1 − z_i), in closed form.

    Removal indicators R = 1 − Z (K, N) and losses are centred, so β_0 is not penalised:
    β = (R_cᵀR_c + ridge·I)⁻¹ R_cᵀ (L − mean L).

    Returns:
        (N,) float64: the estimated loss increase when each unit is switched off.
    """
    if masks.ndim != 2 or losses.shape != (masks.shape[0],):
        raise ValueError(f"need masks (K, N) and losses (K,), got {tuple(masks.shape)}, "
                         f"{tuple(losses.shape)}")
    if ridge < 0:
        raise ValueError(f"ridge must be >= 0, got {ridge}")
    R = 1.0 - masks.double()
    Rc = R - R.mean(0, keepdim=True)
    Lc = losses.double() - losses.double().mean()
    A = Rc.T @ Rc + ridge * torch.eye(R.shape[1], dtype=torch.float64)
    return torch.linalg.solve(A, Rc.T @ Lc)


def ensemble_scores(model: nn.Module, batch: tuple[Tensor, Tensor], *, layers: Sequence[str] | None = None,
                    config: EnsembleConfig = EnsembleConfig()) -> dict[str, Tensor]:
    """Importance of every filter of ``layers`` (default: all prunable convs) from K random masks.

    Args:
        model: Not modified.
        batch: (images (B, C, H, W), labels (B,)), a fixed evaluation batch (held-out training data).
        layers: Conv names scored jointly (one regression over all their filters).
        config: K, q, ridge, chunk, seed.

    Returns:
        {conv name: β (n,) float32}, higher = keep (removing it raised the loss more).
    """
    layers = list(prunable_convs(model) if layers is None else layers)
    slices = _layer_slices(model, layers)
    n_units = sum(s.stop - s.start for s in slices.values())
    masks = sample_masks(n_units, config.n_masks, config.keep_prob,
                         torch.Generator().manual_seed(config.seed))
    losses = masked_losses(model, layers, masks, *batch, chunk=config.chunk)
    beta = fit_importance(masks, losses, config.ridge).float()
    return {name: beta[s] for name, s in slices.items()}


def first_batch(loader: object, n_images: int) -> tuple[Tensor, Tensor]:
    """The first ``n_images`` (images, labels) of a loader, concatenated: a fixed evaluation batch."""
    xs, ys = zip(*iter_batches(loader, n_images), strict=True)
    return torch.cat(xs), torch.cat(ys)
