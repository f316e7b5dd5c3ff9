"""Record per-channel activation statistics of a model's convs through temporary forward hooks.

The model is run in eval mode under ``torch.no_grad``; its mode is restored and every hook removed
afterwards, even on error, so nothing about the model changes. Activations are never stored: each
hook reduces its batch to per-image, per-channel numbers at once, and only their running sum is kept.

Where a conv's filters are observed (``activation_site``): for the zoo's ``ConvBNReLU`` units
(``<unit>.conv``, ``<unit>.bn``, ``<unit>.relu``) the output of ``<unit>.relu``, or of ``<unit>.bn``
when the unit has no ReLU (ResNet's ``conv2`` before the residual add, projection shortcuts).
Elsewhere (e.g. torchvision models): the next sibling module if it is a BatchNorm or a ReLU, else the
conv's own output.

Introduced in: notebooks/01_norms_and_operator_norm.ipynb (§The math).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import torch
from torch import Tensor, nn

from pruning_lib import repro
from pruning_lib.models import ConvBNReLU
from pruning_lib.scoped import eval_mode, hooks

Statistic = Callable[[Tensor], Tensor]   # activations (B, C, H, W) -> per-image values (B, C)


def channel_mean(act: Tensor) -> Tensor:
    """Mean over spatial positions: (B, C, H, W) → (B, C)."""
    return act.mean(dim=(2, 3))


def _join(parent: str, child: str) -> str:
    return f"{parent}.{child}" if parent else child


def activation_site(model: nn.Module, conv_name: str) -> str:
    """Name of the module whose output stands for the activations of ``conv_name``'s filters.

    Args:
        model: The model that holds the conv.
        conv_name: A conv's qualified name, e.g. ``"features.conv3.conv"``.

    Returns:
        ``<unit>.relu`` (or ``<unit>.bn`` without a ReLU) inside a ``ConvBNReLU`` unit; otherwise the
        conv's next sibling if it is a BatchNorm2d or ReLU; otherwise ``conv_name`` itself.

    Raises:
        KeyError: if ``conv_name`` is not a module of ``model``.
    """
    modules = dict(model.named_modules())
    if conv_name not in modules:
        raise KeyError(f"{conv_name!r} is not a module of this model")
    parent_name, _, leaf = conv_name.rpartition(".")
    parent = modules[parent_name]
    children = dict(parent.named_children())
    if isinstance(parent, ConvBNReLU):
        return _join(parent_name, "relu" if "relu" in children else "bn")
    names = list(children)
    after = names[names.index(leaf) + 1:]
    if after and isinstance(children[after[0]], nn.BatchNorm2d | nn.ReLU):
        return _join(parent_name, after[0])
    return conv_name


def iter_batches(loader: Iterable, n_images: int | None) -> Iterator[tuple[Tensor, Tensor]]:
    """A loader's ``(x, y)`` batches, the last one cut so that at most ``n_images`` pass (None: all).

    No batch is drawn after the ``n_images``-th image, so a loader wrapper can count what was used.
    """
    left = n_images
    for x, y in loader:
        if left is not None:
            x, y = x[:left], y[:left]                          # (b, ...), b <= left
        yield x, y
        if left is not None:
            left -= len(x)
            if left <= 0:
                return


def iter_images(loader: Iterable, n_images: int) -> Iterator[Tensor]:
    """Inputs ``x`` of ``iter_batches(loader, n_images)``."""
    for x, _y in iter_batches(loader, n_images):
        yield x


def _accumulating_hook(sums: dict[str, Tensor], counts: dict[str, int], name: str,
                       statistic: Statistic) -> Callable:
    """A forward hook that adds statistic(output).sum over the batch to ``sums[name]``."""
    def hook(module: nn.Module, inputs: tuple, output: Tensor) -> None:
        values = statistic(output.detach()).double()          # (B, C)
        sums[name] = values.sum(dim=0) + sums.get(name, 0.0)  # (C,)
        counts[name] += values.shape[0]
    return hook


def _run(model: nn.Module, loader: Iterable, n_images: int) -> int:
    """Forward the first ``n_images`` images of ``loader``; return how many were seen."""
    device = repro.model_device(model)
    seen = 0
    for x in iter_images(loader, n_images):
        model(x.to(device))
        seen += len(x)
    return seen


@torch.no_grad()
def record_activations(model: nn.Module, loader: Iterable, layers: list[str], *,
                       n_images: int = 256, statistic: Statistic = channel_mean) -> dict[str, Tensor]:
    """Average of a per-image, per-channel statistic of each conv's activations over ``n_images``.

    result[layer][k] = (1/N) Σ_images statistic(activation at ``activation_site(model, layer)``)[k].

    Args:
        model: Not modified: evaluated in eval mode (restored after), hooks removed afterwards.
        loader: Yields ``(x, y)`` batches, x of shape (B, C, H, W); ``y`` is ignored.
        layers: Conv names, e.g. ``models.prunable_convs(model)``.
        n_images: Use the first ``n_images`` images (fewer if the loader runs out first).
        statistic: Maps a site's output (B, C, H, W) to (B, C); default: the spatial mean.

    Returns:
        ``{layer: (C,) float32}`` on the CPU, in the order of ``layers`` (the model runs on its
        parameters' device; batches are moved there).

    Raises:
        ValueError: ``n_images < 1``, an empty loader, or a site that did not run exactly once per image
            (not on the forward path, or a module shared by several layers).
    """
    if n_images < 1:
        raise ValueError(f"n_images must be at least 1, got {n_images}")
    sites = {name: activation_site(model, name) for name in layers}
    modules = dict(model.named_modules())
    sums: dict[str, Tensor] = {}
    counts = dict.fromkeys(layers, 0)
    recorders = [(modules[site], _accumulating_hook(sums, counts, name, statistic))
                 for name, site in sites.items()]
    with eval_mode(model), hooks(forward=recorders):
        seen = _run(model, loader, n_images)
    _check_counts(counts, seen, sites)
    return {name: (sums[name] / seen).float().cpu() for name in layers}


def _check_counts(counts: dict[str, int], seen: int, sites: dict[str, str]) -> None:
    """Raise if the loader was empty or a site did not run exactly once per image."""
    if seen == 0:
        raise ValueError("the loader yielded no images")
    wrong = {name: counts[name] for name in counts if counts[name] != seen}
    if wrong:
        detail = ", ".join(f"{sites[n]} (for {n}): {c}" for n, c in wrong.items())
        raise ValueError(f"expected each activation site to see {seen} images, got {detail}; a site "
                         "must run exactly once per forward pass")


def _moment_hook(sums: dict[str, list], name: str) -> Callable:
    """A forward *pre*-hook that adds a BatchNorm input's per-channel count, sum and sum of squares."""
    def hook(module: nn.Module, inputs: tuple) -> None:
        x = inputs[0].detach().double().transpose(0, 1).flatten(1)      # (C, B·H·W)
        count, total, squares = sums.get(name, (0, 0.0, 0.0))
        sums[name] = (count + x.shape[1], x.sum(1) + total, (x * x).sum(1) + squares)
    return hook


@torch.no_grad()
def batchnorm_statistics(model: nn.Module, loader: Iterable, *, n_images: int = 256) -> list[dict]:
    """What each BatchNorm expects (running statistics) next to what it gets on ``n_images`` images.

    For every BatchNorm with running statistics, in forward order: the per-channel mean and unbiased
    variance of its *input* over all images and positions, measured in eval mode, beside its
    ``running_mean`` and ``running_var``. In a trained network the two agree; after pruning they
    no longer do (the pruned network produces other statistics), which is why accuracy collapses
    until the running statistics are re-estimated (``train.recalibrate_bn``) or fine-tuned.

    Args:
        model: Not modified (eval mode and hooks are undone afterwards).
        loader: Yields ``(x, y)`` batches; ``y`` is ignored.
        n_images: Use the first ``n_images`` images (fewer if the loader runs out first).

    Returns:
        One record per BatchNorm channel: {"layer", "channel", "running_mean", "running_var",
        "mean", "var"}.

    Raises:
        ValueError: ``n_images < 1``, an empty loader, or a model without such BatchNorms.
    """
    if n_images < 1:
        raise ValueError(f"n_images must be at least 1, got {n_images}")
    norms = [(name, m) for name, m in model.named_modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        raise ValueError("the model has no BatchNorm with running statistics")
    sums: dict[str, tuple] = {}
    with eval_mode(model), hooks(pre=[(m, _moment_hook(sums, name)) for name, m in norms]):
        seen = _run(model, loader, n_images)
    if seen == 0:
        raise ValueError("the loader yielded no images")
    rows = []
    for name, norm in norms:
        count, total, squares = sums[name]
        mean = total / count
        var = (squares - count * mean * mean) / max(count - 1, 1)
        rows += [{"layer": name, "channel": k, "running_mean": float(norm.running_mean[k]),
                  "running_var": float(norm.running_var[k]), "mean": float(mean[k]), "var": float(var[k])}
                 for k in range(len(mean))]
    return rows
