"""Apply a plan: a NEW, physically smaller model (or its masked twin). Inputs are never mutated.

``apply_plan`` removes the planned filters for real: conv weights shrink, BatchNorms and the next
layer's input channels follow, and coupled layers (residual adds, depthwise convs) change together,
through Torch-Pruning's dependency graph (``tp_adapter``). ``mask_plan`` zeroes the same channels
and keeps every shape: it computes the same function, but is not smaller or faster.

Pruned models are saved as plan + ``state_dict`` and reloaded with ``weights_only=True``: no
pickled modules.

Introduced in: notebooks/00_tour.ipynb (§Masks vs physical removal).
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import Tensor, nn

from pruning_lib import models, tp_adapter
from pruning_lib.selection import Plan

FORMAT = "pruning_lib.pruned/1"


def coupled_groups(model: nn.Module, example_input: Tensor) -> list[list[str]]:
    """Partition the prunable convs of ``model`` into groups whose output channels are coupled.

    Args:
        model: Not modified (it is traced on a copy).
        example_input: (B, C, H, W) input the model accepts.

    Returns:
        Lists of conv names, in forward order; a conv that is coupled to nothing is alone in its
        list. In a ResNet, the stem and every block's last conv of a stage share one group.
    """
    work = copy.deepcopy(model).eval()
    graph = tp_adapter.dependency_graph(work, example_input)
    convs = models.prunable_convs(work)
    groups, seen = [], set()
    for name in convs:
        if name not in seen:
            group = tp_adapter.coupled_out_convs(graph, work, name, convs) or [name]
            groups.append(group)
            seen.update(group)
    return groups


def describe_group(model: nn.Module, layer: str, example_input: Tensor) -> list[dict]:
    """Every parametrised layer that changes when output channels of conv ``layer`` are removed.

    Returns:
        One dict per member: {"name", "type", "side"}; side "out" = it loses its own output
        channels (filters, BN entries), "in" = it loses input channels. ``model`` is untouched.
    """
    work = copy.deepcopy(model).eval()
    if layer not in models.prunable_convs(work):
        raise KeyError(f"{layer!r} is not a prunable conv; available: {models.prunable_convs(work)}")
    return tp_adapter.group_members(tp_adapter.dependency_graph(work, example_input), work, layer)


def _units(plan: Plan, convs: list[str]) -> list[tuple[str, list[int]]]:
    """Validate ``plan`` against the model; return one (root conv, removed indices) per unit."""
    if not isinstance(plan, dict) or "removed" not in plan:
        got = f"keys {list(plan)}" if isinstance(plan, dict) else type(plan).__name__
        raise ValueError(f"a plan is {{'removed': {{layer: [indices]}}, 'coupled': [[layers]]}}; got {got}")
    removed = plan["removed"]
    unknown = [n for n in removed if n not in convs]
    if unknown:
        raise KeyError(f"plan names layers that are not prunable convs of this model: {unknown}")
    done: set[str] = set()
    units = []
    group_of = {n: g for g in plan.get("coupled", []) for n in g}
    for name, idxs in removed.items():
        if name in done:
            continue
        group = group_of.get(name, [name])
        for other in group:
            if other in removed and sorted(removed[other]) != sorted(idxs):
                raise ValueError(f"coupled layers {name} and {other} must lose the same channels")
        done.add(name)
        if idxs:
            units.append((name, sorted(int(i) for i in idxs)))
    return units


def _roots(graph: object, model: nn.Module, plan: Plan, units: list, convs: list) -> list:
    """One (root, indices) per truly coupled group; refuse plans that hide or split a coupling.

    A plan must name every coupled layer it changes, with the same indices: otherwise removing
    filters of one conv would silently remove channels of others (or prune a group twice).
    """
    removed = plan["removed"]
    hint = "build the plan with groups=surgery.coupled_groups(model, example_input)"
    roots, covered = [], set()
    for root, idxs in units:
        partners = tp_adapter.coupled_out_convs(graph, model, root, convs)
        missing = [p for p in partners if p not in removed]
        if missing:
            raise ValueError(f"{root} is coupled with {missing} (same residual add or depthwise "
                             f"chain) but the plan does not name them; {hint}")
        for other in partners:
            if sorted(removed[other]) != idxs:
                raise ValueError(f"{root} and {other} are coupled (same residual add or depthwise "
                                 f"chain) but the plan removes different filters from them; {hint}")
        if root not in covered:
            roots.append((root, idxs))
            covered.update([root, *partners])
    return roots


def _check_indices(modules: dict[str, nn.Module], units: list[tuple[str, list[int]]]) -> None:
    for name, idxs in units:
        n = modules[name].out_channels
        if len(set(idxs)) != len(idxs) or min(idxs) < 0 or max(idxs) >= n:
            raise ValueError(f"{name}: removed indices must be unique and in [0, {n}), got {idxs}")
        if len(idxs) >= n:
            raise ValueError(f"{name}: the plan removes all {n} filters; at least one must stay")


def _prepare(model: nn.Module, plan: Plan, example_input: Tensor):  # noqa: ANN202
    """Deep-copy, trace and validate; returns (copy, graph, units)."""
    work = copy.deepcopy(model)
    convs = models.prunable_convs(work)
    units = _units(plan, convs)
    _check_indices(dict(work.named_modules()), units)
    was_training = work.training
    work.eval()
    graph = tp_adapter.dependency_graph(work, example_input)
    work.train(was_training)
    return work, graph, _roots(graph, work, plan, units, convs)


def apply_plan(model: nn.Module, plan: Plan, example_input: Tensor) -> nn.Module:
    """Return a NEW model with the planned filters physically removed; ``model`` is untouched.

    Args:
        model: The model to prune (any mode); it is deep-copied first.
        plan: {"removed": {conv name: indices}, "coupled": [...]}, e.g. from ``selection``.
        example_input: (B, C, H, W) input used to trace the dependency graph.

    Returns:
        The smaller model, in the same train/eval mode as ``model``. Its ``pruning_plan``
        attribute holds the plan that made it.

    Raises:
        KeyError: the plan names a layer that is not a prunable conv.
        ValueError: malformed plan, bad indices, all filters of a layer, or coupled layers with
            different removal sets. Nothing is modified when an error is raised.
    """
    work, graph, units = _prepare(model, plan, example_input)
    modules = dict(work.named_modules())
    for name, idxs in units:
        tp_adapter.prune_out_channels(graph, modules[name], idxs)
    work.pruning_plan = copy.deepcopy(plan)
    work.pruning_example_shape = list(example_input.shape)
    return work


def mask_plan(model: nn.Module, plan: Plan, example_input: Tensor) -> nn.Module:
    """Return a NEW model of the same shapes whose planned channels are zeroed (a mask).

    Same arguments and errors as ``apply_plan``. In eval mode, ``mask_plan(m)(x)`` equals
    ``apply_plan(m)(x)``: zero channels contribute nothing downstream.
    """
    work, graph, units = _prepare(model, plan, example_input)
    modules = dict(work.named_modules())
    for name, idxs in units:
        tp_adapter.zero_out_channels(graph, modules[name], idxs)
    return work


def save_pruned(model: nn.Module, plan: Plan, path: str | Path,
                example_input: Tensor | None = None) -> Path:
    """Save a pruned model as {architecture, plan, example input shape, state_dict} in one file.

    The file holds only tensors, strings, numbers, lists and dicts, so ``load_pruned`` reads it
    with ``torch.load(..., weights_only=True)``.

    Args:
        model: The pruned model; it must come from ``models.build`` (it has ``arch_spec``).
        plan: The plan that produced it from the unpruned architecture.
        path: Output file (``.pt``).
        example_input: The input used for ``apply_plan`` (only its shape is stored); default:
            the shape ``apply_plan`` recorded on the model.
    """
    spec = getattr(model, "arch_spec", None)
    if spec is None:
        raise ValueError("model has no arch_spec: build it with models.build(...) or "
                         "models.load_pretrained(...) so that it can be rebuilt")
    shape = list(example_input.shape) if example_input is not None else getattr(
        model, "pruning_example_shape", None)
    if shape is None:
        raise ValueError("pass example_input: the model was not made by apply_plan, so the "
                         "input shape for replaying the plan is unknown")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": FORMAT, "arch": spec, "plan": plan,
                "example_shape": shape, "state_dict": model.state_dict()}, path)
    return path


def load_pruned(path: str | Path) -> nn.Module:
    """Rebuild a model saved by ``save_pruned``: build, replay the plan, load the weights.

    Returns:
        The pruned model in eval mode.

    Raises:
        ValueError: when the file is not a ``save_pruned`` file.
    """
    blob = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(f"{path} is not a pruned-model file written by save_pruned ({FORMAT})")
    fresh = models.build(blob["arch"]["name"], **blob["arch"]["kwargs"]).eval()
    pruned = apply_plan(fresh, blob["plan"], torch.zeros(blob["example_shape"]))
    pruned.load_state_dict(blob["state_dict"])
    return pruned.eval()
