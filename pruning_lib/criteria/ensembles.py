"""Filter importance from linear filter ensembles (Sándor, Pável, Csató, arXiv:2001.08142).

Instead of reading a filter's importance off its weights, *measure* it: run the network many times
with random subsets of filters switched off, record the loss each time, and fit a linear additive
model of the loss as a function of which filters were off. A filter's coefficient is the loss
increase its removal causes, averaged over random contexts of other removals.

The paper has no public code and its abstract gives the idea only, so this module is **our
reconstruction** (of A. Sándor, Z. Pável, L. Csató, "Pruning CNN's with linear filter ensembles",
ECAI 2020, arXiv:2001.08142; unverified beyond the abstract):

1. K masks z ∈ {0, 1}^N over the N filters of the chosen layers, z_i ~ Bernoulli(q) (q = keep prob.).
2. For each mask, the loss L_k on a fixed evaluation batch with the masked filters switched off.
   "Off" means the filter's channel is zero *after* the BatchNorm that follows its conv (before it,
   the BatchNorm would turn the zero into its bias), which is exactly what physically removing the
   filter does to the rest of the network (``tests`` check masked ≡ pruned, also on torchvision's
   ResNet-18). ``switch_off_sites`` finds that BatchNorm in the ``torch.fx`` graph, for any model,
   and refuses convs where no mask can match removal (e.g. GroupNorm after the conv).
3. Ridge regression L_k ≈ β_0 + Σ_i β_i (1 − z_i^(k)); importance β_i, higher = keep.

Masks are evaluated in chunks: the batch is tiled c times and each copy gets its own mask, so c
masks cost one forward pass of c·B images (vectorised over masks). ``masked_losses_reference``
evaluates one mask per pass, for the tests.

Introduced in: notebooks/03_linear_filter_ensembles.ipynb.
"""

from __future__ import annotations

import dataclasses
import operator
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.fx
from torch import Tensor, nn
from tqdm.auto import tqdm

from pruning_lib import records, repro
from pruning_lib.activations import iter_batches
from pruning_lib.models import check_conv_names
from pruning_lib.scoped import eval_mode, hooks


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


def sample_masks(n_units: int, n_masks: int, keep_prob: float, generator: torch.Generator) -> Tensor:
    """K × N keep-masks, each entry 1 with probability ``keep_prob`` (float32 of 0/1)."""
    if not 0 < keep_prob <= 1:
        raise ValueError(f"keep_prob must be in (0, 1], got {keep_prob}")
    if n_masks < 1 or n_units < 1:
        raise ValueError(f"need at least one mask and one unit, got n_masks={n_masks}, n_units={n_units}")
    return (torch.rand(n_masks, n_units, generator=generator) < keep_prob).float()


# Where a filter can be switched off so that the rest of the network sees what removal would give.
# From the site on, a zero channel must stay zero (these ops map 0 to 0, channel by channel) until a
# layer that sums over channels (a conv with groups=1, a Linear) ignores it, as it ignores a removed
# channel. A residual sum ends the walk: there the conv's own contribution is switched off (a coupled
# conv cannot lose a channel alone). Anything else (a later normalisation, a sigmoid, a channel
# split) would turn the zero into something else, and removal would differ: refused.
_KEEPS_ZERO = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Hardswish, nn.SiLU, nn.GELU, nn.Tanh, nn.Hardtanh,
               nn.ELU, nn.Identity, nn.Dropout, nn.Dropout2d, nn.MaxPool2d, nn.AvgPool2d,
               nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten)
_KEEPS_ZERO_FUNCTIONS = {torch.relu, nn.functional.relu, torch.flatten, torch.cat, torch.mul, operator.mul,
                         nn.functional.adaptive_avg_pool2d, nn.functional.max_pool2d,
                         nn.functional.avg_pool2d, nn.functional.dropout}
_KEEPS_ZERO_METHODS = {"relu", "relu_", "flatten", "view", "reshape", "contiguous", "mul", "mul_"}
_SUMS = {operator.add, operator.iadd, torch.add, "add", "add_"}
_METADATA = {getattr, "size", "dim"}        # read shapes, not values


class _ConvTracer(torch.fx.Tracer):
    """Traces into every module that holds a conv; anything else (a log-mel front end) is one node."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        container = isinstance(m, nn.Sequential | nn.ModuleList | nn.ModuleDict)
        has_conv = any(isinstance(sub, nn.Conv2d) for sub in m.modules())
        return super().is_leaf_module(m, qualname) or not (container or has_conv)


def _graph(model: nn.Module) -> torch.fx.Graph:
    try:
        return _ConvTracer().trace(model)
    except Exception as err:  # noqa: BLE001  (fx raises many types; all mean "no graph")
        raise ValueError(f"cannot switch filters off in {type(model).__name__}: torch.fx could not "
                         "trace it to find the normalisation after each conv "
                         f"({type(err).__name__}: {err})") from err


def _step(node: torch.fx.Node, modules: dict[str, nn.Module]) -> str:
    """What ``node`` does to a switched-off channel.

    "keep" (it stays 0), "end" (ignored or summed), "stop" (not a tensor op on it), or the reason it
    breaks the equivalence with removal.
    """
    if node.op == "call_module":
        m = modules[node.target]
        if isinstance(m, nn.Linear | nn.Conv2d) and getattr(m, "groups", 1) == 1:
            return "end"
        if isinstance(m, nn.Conv2d) and m.bias is None:       # grouped / depthwise: 0 in, 0 out
            return "keep"
        if isinstance(m, _KEEPS_ZERO):
            return "keep"
        return f"{node.target} ({type(m).__name__})"
    target = node.target if node.op in ("call_function", "call_method") else node.op
    if target in _SUMS:
        return "end"
    if target in _KEEPS_ZERO_FUNCTIONS or target in _KEEPS_ZERO_METHODS:
        return "keep"
    if target in _METADATA:
        return "stop"
    if node.op == "output":
        return "the network's output"
    return f"{node.name} ({getattr(target, '__name__', target)})"


def _check_downstream(site: torch.fx.Node, modules: dict[str, nn.Module], layer: str) -> None:
    """Raise ValueError unless every path from ``site`` keeps the channel 0 until it ends."""
    todo, seen = list(site.users), set()
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        verdict = _step(node, modules)
        if verdict == "keep":
            todo.extend(node.users)
        elif verdict not in ("end", "stop"):
            raise ValueError(f"{layer}: switching a filter off cannot match removing it in this model: "
                             f"after {site.target} its channel passes {verdict}, which does not keep a "
                             "zero channel zero (a normalisation, a gate, a split, or the output); "
                             "score this layer with a criterion that does not mask filters")


def _after_batchnorm(node: torch.fx.Node, calls: dict[str, list],
                     modules: dict[str, nn.Module]) -> torch.fx.Node:
    """The BatchNorm2d node right after ``node`` if it is its only user and runs once, else ``node``."""
    users = list(node.users)
    if (len(users) == 1 and users[0].op == "call_module"
            and isinstance(modules[users[0].target], nn.BatchNorm2d) and len(calls[users[0].target]) == 1):
        return users[0]
    return node


def _through_depthwise(site: torch.fx.Node, calls: dict[str, list],
                       modules: dict[str, nn.Module]) -> torch.fx.Node:
    """Move the site past a depthwise conv (groups = channels) that the channel alone feeds.

    The walk passes zero-keeping modules: removing the filter removes that depthwise channel and its
    BatchNorm entry too, so the channel is switched off after them (MobileNet's pointwise → depthwise).
    """
    node = site
    while len(node.users) == 1 and next(iter(node.users)).op == "call_module":
        user = next(iter(node.users))
        m = modules[user.target]
        if (isinstance(m, nn.Conv2d) and m.groups == m.in_channels == m.out_channels > 1
                and len(calls[user.target]) == 1):
            site = node = _after_batchnorm(user, calls, modules)
        elif isinstance(m, _KEEPS_ZERO) and len(calls[user.target]) == 1:
            node = user
        else:
            break
    return site


def switch_off_sites(model: nn.Module, layers: Sequence[str]) -> dict[str, str]:
    """Where each conv's filters are switched off.

    The output of the BatchNorm that directly follows
    the conv (found in the ``torch.fx`` graph, not by module order), else of the conv itself; after
    a depthwise conv that only this channel feeds, its BatchNorm instead.

    Zeroing a channel there equals removing the filter (``surgery.apply_plan``) for the rest of the
    network; for a conv whose output enters a residual sum (a coupled conv) it switches off the
    conv's own contribution to the sum. Models for which neither holds are refused.

    Args:
        model: Any traceable model (not modified).
        layers: Prunable conv names.

    Returns:
        {conv name: module name whose output is masked}, e.g. ``"features.conv3.bn"``.

    Raises:
        ValueError: the model cannot be traced, a conv or its BatchNorm runs more than once, or a
            switched-off channel would not stay switched off (e.g. GroupNorm after the conv, a
            BatchNorm after a concatenation, a sigmoid gate, the conv makes the output).

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 3))
        >>> switch_off_sites(net, ["0"])
        {'0': '1'}
    """
    graph = _graph(model)
    modules = dict(model.named_modules())
    calls: dict[str, list[torch.fx.Node]] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls.setdefault(node.target, []).append(node)
    sites = {}
    for layer in layers:
        if len(calls.get(layer, [])) != 1:
            raise ValueError(f"{layer} runs {len(calls.get(layer, []))} times per forward pass; a filter "
                             "can be switched off only in a conv that runs once")
        site = _through_depthwise(_after_batchnorm(calls[layer][0], calls, modules), calls, modules)
        _check_downstream(site, modules, layer)
        sites[layer] = site.target
    return sites


def _layer_slices(model: nn.Module, layers: Sequence[str]) -> dict[str, slice]:
    """Each layer's columns in a (K, N) mask: consecutive slices in the order of ``layers``."""
    modules = dict(model.named_modules())
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
        model: Evaluated in eval mode (restored afterwards) on its parameters' device; not modified.
        layers: Conv names; their filters are the mask's N units, in this order.
        masks: (K, N) 0/1 keep-masks (any device; moved to the model's).
        x: (B, C, H, W) evaluation batch.
        y: (B,) labels (moved to the model's device).
        chunk: Masks per forward pass (the batch is tiled ``chunk`` times).

    Returns:
        (K,) mean cross-entropy per mask, float64, on the CPU.
    """
    layers = check_conv_names(model, layers)
    slices = _layer_slices(model, layers)
    n_units = sum(s.stop - s.start for s in slices.values())
    if masks.ndim != 2 or masks.shape[1] != n_units:
        raise ValueError(f"masks must be (K, {n_units}) for these layers, got {tuple(masks.shape)}")
    sites = switch_off_sites(model, layers)
    modules = dict(model.named_modules())
    device = repro.model_device(model)
    x, y, masks = x.to(device), y.to(device), masks.to(device)
    b = len(x)
    current: dict[str, Tensor] = {}

    def hook(name: str):  # noqa: ANN202
        def apply(_unit: nn.Module, _inputs: tuple, out: Tensor) -> Tensor:
            m = current[name]                                          # (c, n)
            return out * m.repeat_interleave(b, dim=0)[:, :, None, None].to(out.dtype)
        return apply

    losses = []
    with eval_mode(model), hooks(forward=[(modules[sites[name]], hook(name)) for name in layers]):
        starts = range(0, len(masks), chunk)
        for start in tqdm(starts, desc="masks", leave=False, disable=len(starts) < 20):
            block = masks[start:start + chunk]                              # (c, N)
            c = len(block)
            for name, s in slices.items():
                current[name] = block[:, s]
            logits = model(x.repeat(c, *([1] * (x.ndim - 1))))             # (c·B, classes)
            loss = nn.functional.cross_entropy(logits, y.repeat(c), reduction="none")
            losses.append(loss.view(c, b).mean(1).double())
    return torch.cat(losses).cpu()


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
    A = Rc.T @ Rc + ridge * torch.eye(R.shape[1], dtype=torch.float64, device=R.device)
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
        {conv name: β (n,) float32} on the CPU, higher = keep (removing it raised the loss more).
        The masked forward passes run on the model's device; the regression on the CPU.
    """
    layers = check_conv_names(model, layers)
    slices = _layer_slices(model, layers)
    n_units = sum(s.stop - s.start for s in slices.values())
    masks = sample_masks(n_units, config.n_masks, config.keep_prob,
                         torch.Generator().manual_seed(config.seed))
    losses = masked_losses(model, layers, masks, *batch, chunk=config.chunk)
    beta = fit_importance(masks, losses, config.ridge).float()
    return {name: beta[s] for name, s in slices.items()}



def estimate_records(model: nn.Module, batch: tuple[Tensor, Tensor], *, seeds: Sequence[int],
                     layers: Sequence[str] | None = None,
                     config: EnsembleConfig = EnsembleConfig()) -> list[dict]:
    """Independent ensemble estimates (one per mask seed) as records, each with its wall time.

    Args:
        model: Not modified.
        batch: (images (B, C, H, W), labels (B,)), the fixed evaluation batch.
        layers: Conv names scored jointly (default: all prunable convs).
        seeds: One estimate per seed (``config.seed`` is replaced by each).
        config: K, q, ridge, chunk.

    Returns:
        ``records.scores_to_records`` rows: one per (seed, layer), with "seed" and "seconds" (that
        estimate's wall time); ``records.scores_from_records(rows, seed=s)`` gives ``ensemble_scores``.
    """
    rows: list[dict] = []
    for seed in seeds:
        start = time.perf_counter()
        seeded = dataclasses.replace(config, seed=int(seed))
        scores = ensemble_scores(model, batch, layers=layers, config=seeded)
        seconds = round(time.perf_counter() - start, 2)
        rows += records.scores_to_records(scores, seed=int(seed), seconds=seconds)
    return rows

def first_batch(loader: object, n_images: int) -> tuple[Tensor, Tensor]:
    """The first ``n_images`` (images, labels) of a loader, concatenated: a fixed evaluation batch."""
    xs, ys = zip(*iter_batches(loader, n_images), strict=True)
    return torch.cat(xs), torch.cat(ys)
