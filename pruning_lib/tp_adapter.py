"""The one place that talks to Torch-Pruning (pinned 1.6.1): dependency graphs and groups.

Torch-Pruning traces a model once (autograd graph of ``example_input``) and knows, for every
channel it could remove, which other layers must change with it: the BatchNorm after a conv, the
next conv's input channels, the Linear after a flatten, every conv that feeds the same residual
add, and the depthwise conv that follows a pointwise conv. No ``tp`` object leaves this module.

Introduced in: notebooks/00_tour.ipynb (§Coupled channels).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch_pruning as tp
from torch import Tensor, nn

OUT = "prune_out_channels"


def dependency_graph(model: nn.Module, example_input: Tensor) -> tp.DependencyGraph:
    """Trace ``model`` on ``example_input`` (B, C, H, W) and return Torch-Pruning's graph.

    Tracing follows autograd, so it runs with gradients enabled even inside ``torch.no_grad()``.
    """
    if torch.is_inference_mode_enabled():
        raise RuntimeError("cannot trace a model inside torch.inference_mode(): Torch-Pruning "
                           "follows the autograd graph; call surgery outside that block")
    with torch.enable_grad():
        return tp.DependencyGraph().build_dependency(model, example_inputs=example_input)


def _group(graph: tp.DependencyGraph, conv: nn.Module, idxs: Sequence[int]):  # noqa: ANN202
    return graph.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=list(idxs))


def group_members(graph: tp.DependencyGraph, model: nn.Module, conv_name: str) -> list[dict]:
    """Describe every layer in the group of ``conv_name``'s output channels.

    Returns:
        One dict per parametrised member: {"name", "type", "side"} where side is "out" (its own
        filters/channels go) or "in" (it loses input channels).
    """
    names = {m: n for n, m in model.named_modules()}
    modules = dict(model.named_modules())
    members = []
    for dep, _ in _group(graph, modules[conv_name], [0]):
        module = dep.target.module
        if module in names and any(True for _ in module.parameters(recurse=False)):
            side = "out" if dep.handler.__name__ == OUT else "in"
            members.append({"name": names[module], "type": type(module).__name__, "side": side})
    return members


def coupled_out_convs(graph: tp.DependencyGraph, model: nn.Module, conv_name: str,
                      candidates: Sequence[str]) -> list[str]:
    """The ``candidates`` (prunable conv names) whose output channels go with ``conv_name``'s."""
    wanted = set(candidates)
    found = {m["name"] for m in group_members(graph, model, conv_name)
             if m["side"] == "out" and m["name"] in wanted}
    return [name for name in candidates if name in found]


def prune_out_channels(graph: tp.DependencyGraph, conv: nn.Module, idxs: Sequence[int]) -> None:
    """Physically remove output channels ``idxs`` of ``conv`` and everything coupled to them.

    Mutates the traced model in place (callers work on a copy).
    """
    group = _group(graph, conv, idxs)
    if not graph.check_pruning_group(group):
        raise ValueError(f"Torch-Pruning refuses this group (it would empty a layer): {idxs}")
    group.prune()


@torch.no_grad()
def zero_out_channels(graph: tp.DependencyGraph, conv: nn.Module, idxs: Sequence[int]) -> None:
    """Mask instead of removing: zero the output-side weights of channels ``idxs`` in the group.

    Every member that *produces* those channels (convs, depthwise convs, BatchNorms, Linear outputs)
    gets its weight rows and bias entries set to 0, so the channels carry exact zeros; consumers keep
    their (now unused) input weights. Mutates the traced model in place.
    """
    index = torch.as_tensor(list(idxs), dtype=torch.long)
    for dep, member_idxs in _group(graph, conv, idxs):
        module = dep.target.module
        if dep.handler.__name__ != OUT or not isinstance(module, nn.Conv2d | nn.BatchNorm2d
                                                         | nn.Linear | nn.Conv1d | nn.BatchNorm1d):
            continue
        rows = torch.as_tensor(list(member_idxs), dtype=torch.long) if member_idxs else index
        module.weight[rows] = 0.0
        if module.bias is not None:
            module.bias[rows] = 0.0
