"""The one place that talks to Torch-Pruning (pinned 1.6.1): dependency graphs and groups.

Torch-Pruning traces a model once (autograd graph of ``example_input``) and knows, for every
channel it could remove, which other layers must change with it: the BatchNorm after a conv, the
next conv's input channels, the Linear after a flatten, every conv that feeds the same residual
add, and the depthwise conv that follows a pointwise conv. No ``tp`` object leaves this module.

Some couplings cannot be pruned so that the smaller model equals the masked one; ``group_problem``
names them, so that ``surgery`` refuses such plans before any surgery:

- the channels are the network's output (a classifier conv or Linear);
- a grouped, non-depthwise conv consumes them (removing channels breaks its groups);
- a normalisation that mixes channels follows (GroupNorm, LayerNorm, LocalResponseNorm): the
  statistics of the other channels change when one is removed, but not when it is zeroed.

Introduced in: notebooks/00_tour.ipynb (§Coupled channels).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch_pruning as tp
from torch import Tensor, nn
from torch_pruning.dependency import index_mapping

OUT = "prune_out_channels"
# Layers whose output for one channel depends on the other channels (besides convs/Linears).
_MIXING_NORMS = (nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)
# Producers whose weight rows / bias entries a mask zeroes.
_MASKABLE = (nn.Conv1d, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.Linear)


def dependency_graph(model: nn.Module, example_input: Tensor) -> tp.DependencyGraph:
    """Trace ``model`` on ``example_input`` (B, C, H, W) and return Torch-Pruning's graph.

    Tracing follows autograd, so it runs with gradients enabled even inside ``torch.no_grad()``.
    Torch-Pruning traces in eval mode (BatchNorm statistics do not move); every module's
    train/eval flag is restored afterwards.

    Raises:
        RuntimeError: inside ``torch.inference_mode()``.
        ValueError: a reshape that Torch-Pruning cannot follow (e.g. ShuffleNet's channel shuffle,
            a ``view`` that splits the channel axis).
    """
    if torch.is_inference_mode_enabled():
        raise RuntimeError("cannot trace a model inside torch.inference_mode(): Torch-Pruning "
                           "follows the autograd graph; call surgery outside that block")
    modes = [(m, m.training) for m in model.modules()]   # build_dependency calls model.eval()
    with torch.enable_grad():
        try:
            return tp.DependencyGraph().build_dependency(model, example_inputs=example_input)
        except ZeroDivisionError as err:
            raise ValueError(
                f"Torch-Pruning 1.6.1 cannot trace {type(model).__name__}: a reshape/view splits or "
                "interleaves the channel axis (e.g. ShuffleNet's channel shuffle), so it cannot "
                "tell which channels belong together; this model cannot be pruned here") from err
        finally:
            for module, training in modes:
                module.training = training


_UPDATERS = {
    tp.ops.OPTYPE.SPLIT: index_mapping.update_split_index_mapping,
    tp.ops.OPTYPE.RESHAPE: index_mapping.update_reshape_index_mapping,
    tp.ops.OPTYPE.UNBIND: index_mapping.update_unbind_index_mapping,
    tp.ops.OPTYPE.EXPAND: index_mapping.update_expand_index_mapping,
    tp.ops.OPTYPE.SLICE: index_mapping.update_slice_index_mapping,
}


def _refresh_index_mapping(graph: tp.DependencyGraph) -> None:
    """Torch-Pruning's ``update_index_mapping``, but a concat is remapped only when its sizes changed.

    ``get_pruning_group`` recomputes the mapping of every concat of the graph on each call, at a
    cost of O(concats x their dependencies): 16 s for densenet121's 120 convs. A concat's mapping
    depends only on the channel counts of its inputs (``concat_sizes``), which change only when one
    of them is pruned, so unchanged concats keep the mapping they have.
    """
    done = graph.__dict__.setdefault("_pruning_lab_concat_sizes", {})
    for node in graph.module2node.values():
        if node.type == tp.ops.OPTYPE.CONCAT:
            sizes = node.module.concat_sizes
            if sizes is None or done.get(node) != tuple(sizes):
                index_mapping.update_concat_index_mapping(graph, node)
                if node.module.concat_sizes is not None:
                    done[node] = tuple(node.module.concat_sizes)
        elif node.type in _UPDATERS:
            _UPDATERS[node.type](graph, node)


def _group(graph: tp.DependencyGraph, conv: nn.Module, idxs: Sequence[int]):  # noqa: ANN202
    """Torch-Pruning's group for removing output channels ``idxs`` of ``conv``."""
    original = index_mapping.update_index_mapping
    index_mapping.update_index_mapping = _refresh_index_mapping
    try:
        return graph.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=list(idxs))
    finally:
        index_mapping.update_index_mapping = original


def _names(graph: tp.DependencyGraph, model: nn.Module) -> dict[nn.Module, str]:
    """{module: qualified name} of ``model``, computed once per graph (pruning keeps modules)."""
    cached = graph.__dict__.get("_pruning_lab_names")
    if cached is None or cached[0] is not model:
        cached = (model, {m: n for n, m in model.named_modules()})
        graph._pruning_lab_names = cached
    return cached[1]


def _is_depthwise(module: nn.Module) -> bool:
    return (isinstance(module, nn.Conv1d | nn.Conv2d) and module.groups > 1
            and module.groups == module.in_channels == module.out_channels)


def _member_problem(dep: object, name: str, idxs: list[int]) -> str | None:
    """Why removing channels ``idxs`` of a group member cannot equal masking them, or None.

    A member that carries the group's channels (out side) and feeds nothing produces the model's
    output: Torch-Pruning marks a trailing op with ``_OutputOp``, but a model that ends in a conv
    has no such op, only a conv node without outputs.
    """
    module = dep.target.module
    carries = dep.handler.__name__ == OUT and not isinstance(module, nn.Parameter)
    if isinstance(module, tp.ops._OutputOp) or (carries and not dep.target.outputs):
        return ("its channels are the network's output (the classifier): the output layer is "
                "never prunable")
    if isinstance(module, nn.Conv1d | nn.Conv2d) and module.groups > 1 and not _is_depthwise(module):
        side = "output" if dep.handler.__name__ == OUT else "input"
        per = (module.out_channels if side == "output" else module.in_channels) // module.groups
        touched = sorted({i // per for i in idxs})
        return (f"{name!r} is a grouped conv (groups={module.groups}, {per} {side} channels per "
                f"group): removing its {side} channels {idxs} (groups {touched}) would break its "
                "groups, which Torch-Pruning 1.6.1 does not handle")
    if isinstance(module, _MIXING_NORMS):
        return (f"{name!r} ({type(module).__name__}) normalises across channels: removing a channel "
                "changes the statistics of the others, zeroing it does not")
    return None


def group_report(graph: tp.DependencyGraph, model: nn.Module, conv_name: str,
                 idxs: Sequence[int] = (0,)) -> tuple[list[dict], str | None]:
    """Members of the group of ``conv_name``'s output channels ``idxs``, and why it is unprunable.

    Args:
        graph: From ``dependency_graph(model, ...)``.
        model: The traced model (not modified).
        conv_name: A conv of ``model`` (groups == 1).
        idxs: Its output channels to remove; the members' ``idxs`` follow from them (through
            concatenations, for instance).

    Returns:
        (members, problem): one dict per parametrised member, {"name", "type", "side", "idxs"}
        (side "out" = it loses its own filters/channels, "in" = it loses input channels; idxs =
        its channels that go; maskable = a conv, BatchNorm or Linear, whose rows a mask zeroes);
        problem = the first reason the group cannot be pruned so that the pruned model equals the
        masked one (see the module docstring), or None.
    """
    names = _names(graph, model)
    conv = model.get_submodule(conv_name)
    if conv not in graph.module2node:
        return [], (f"{conv_name!r} is not in Torch-Pruning's trace of the model (unused in forward, "
                    "or reached through a reshape of the channel axis it cannot follow)")
    members, problem = [], None
    for dep, member_idxs in _group(graph, conv, idxs):
        module = dep.target.module
        name = names.get(module, type(module).__name__)
        problem = problem or _member_problem(dep, name, [int(i) for i in member_idxs])
        if module in names and any(True for _ in module.parameters(recurse=False)):
            side = "out" if dep.handler.__name__ == OUT else "in"
            members.append({"name": name, "type": type(module).__name__, "side": side,
                            "idxs": [int(i) for i in member_idxs] or list(idxs),
                            "maskable": isinstance(module, _MASKABLE)})
    return members, problem


def group_members(graph: tp.DependencyGraph, model: nn.Module, conv_name: str) -> list[dict]:
    """Describe every layer in the group of ``conv_name``'s output channels.

    Returns:
        One dict per parametrised member: {"name", "type", "side"} where side is "out" (its own
        filters/channels go) or "in" (it loses input channels).
    """
    members, _ = group_report(graph, model, conv_name)
    return [{k: m[k] for k in ("name", "type", "side")} for m in members]


def coupled_out_convs(graph: tp.DependencyGraph, model: nn.Module, conv_name: str,
                      candidates: Sequence[str]) -> list[str]:
    """The ``candidates`` (prunable conv names) whose output channels go with ``conv_name``'s."""
    members, _ = group_report(graph, model, conv_name)
    return out_convs(members, candidates)


def out_convs(members: list[dict], candidates: Sequence[str]) -> list[str]:
    """The ``candidates`` that lose their own output channels among ``members`` (forward order)."""
    found = {m["name"] for m in members if m["side"] == "out"}
    return [name for name in candidates if name in found]


def group_problem(graph: tp.DependencyGraph, model: nn.Module, conv_name: str,
                  idxs: Sequence[int] = (0,)) -> str | None:
    """Why the output channels ``idxs`` of ``conv_name`` cannot be pruned correctly, or None."""
    return group_report(graph, model, conv_name, idxs)[1]


def prune_out_channels(graph: tp.DependencyGraph, conv: nn.Module, idxs: Sequence[int]) -> None:
    """Physically remove output channels ``idxs`` of ``conv`` and everything coupled to them.

    Mutates the traced model in place (callers work on a copy).
    """
    group = _group(graph, conv, idxs)
    if not graph.check_pruning_group(group):
        raise ValueError(f"Torch-Pruning refuses this group (it would empty a layer): {idxs}")
    group.prune()


def zero_targets(members: list[dict]) -> list[tuple[str, list[int]]]:
    """(member name, rows) of the ``group_report`` members that *produce* the group's channels.

    These are the rows a mask zeroes: convs, depthwise convs, BatchNorms and Linear outputs.
    """
    return [(m["name"], m["idxs"]) for m in members if m["side"] == "out" and m["maskable"]]


@torch.no_grad()
def zero_rows(model: nn.Module, targets: Sequence[tuple[str, Sequence[int]]]) -> None:
    """Set weight rows and bias entries ``rows`` of each named layer to 0 (in place)."""
    for name, rows in targets:
        module, index = model.get_submodule(name), torch.as_tensor(list(rows), dtype=torch.long)
        module.weight[index] = 0.0
        if module.bias is not None:
            module.bias[index] = 0.0


def zero_out_channels(graph: tp.DependencyGraph, conv: nn.Module, idxs: Sequence[int]) -> None:
    """Mask instead of removing: zero the output-side weights of channels ``idxs`` in the group.

    Every member that *produces* those channels (convs, depthwise convs, BatchNorms, Linear outputs)
    gets its weight rows and bias entries set to 0, so the channels carry exact zeros; consumers keep
    their (now unused) input weights. Mutates the traced model in place.
    """
    model = graph.model
    members, _ = group_report(graph, model, _names(graph, model)[conv], idxs)
    zero_rows(model, zero_targets(members))
