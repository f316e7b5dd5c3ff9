"""Apply a plan: a NEW, physically smaller model (or its masked twin). Inputs are never mutated.

``apply_plan`` removes the planned filters for real: conv weights shrink, BatchNorms and the next
layer's input channels follow, and coupled layers (residual adds, depthwise convs) change together,
through Torch-Pruning's dependency graph (``tp_adapter``). ``mask_plan`` zeroes the same channels
and keeps every shape: it computes the same function, but is not smaller or faster.

A plan is refused, before any surgery, when removing its channels cannot equal masking them: the
channels are the network's output, a grouped (non-depthwise) conv consumes them, or a
normalisation that mixes channels (GroupNorm, LayerNorm) follows. ``refused_convs`` lists such
convs with the reason; ``coupled_groups`` leaves them out. As a last guard, ``apply_plan`` runs the
pruned and the masked model on a probe input and refuses to return a model that differs.

Example inputs are moved to the device of the model's parameters (one device rule for the
library); the pruned model stays on that device.

Pruned models are saved as plan + ``state_dict`` and reloaded with ``weights_only=True``: no
pickled modules.

Introduced in: notebooks/00_tour.ipynb (§Masks vs physical removal).
"""

from __future__ import annotations

import copy
import operator
import pickle
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from pruning_lib import models, repro, tp_adapter
from pruning_lib.selection import Plan

FORMAT = "pruning_lib.pruned/1"
# apply_plan's last guard: max |pruned - masked| on the probe input, relative to max |masked|.
# Float noise from fewer summands is ~1e-6 relative; every known mismatch is > 10% of the scale.
VERIFY_RTOL = 1e-3


def _analyse(work: nn.Module, example_input: Tensor) -> tuple[list[list[str]], dict[str, str]]:
    """(coupled groups of the prunable convs, {refused conv: reason}) of a model in eval mode."""
    graph = tp_adapter.dependency_graph(work, example_input)
    convs = models.prunable_convs(work)
    groups, refused, seen = [], {}, set()
    for name in convs:
        if name in seen:
            continue
        members, problem = tp_adapter.group_report(graph, work, name)
        group = tp_adapter.out_convs(members, convs) or [name]
        seen.update(group)
        if problem is None:
            groups.append(group)
        else:
            refused.update({member: problem for member in group})
    return groups, refused


def coupled_groups(model: nn.Module, example_input: Tensor) -> list[list[str]]:
    """Partition the prunable convs of ``model`` into groups whose output channels are coupled.

    Convs that ``refused_convs`` lists (the output layer, convs feeding a grouped conv or a
    channel-mixing normalisation) are left out: no plan may touch them.

    Args:
        model: Not modified (it is traced on a copy).
        example_input: (B, C, H, W) input the model accepts.

    Returns:
        Lists of conv names, in forward order; a conv that is coupled to nothing is alone in its
        list. In a ResNet, the stem and every block's last conv of a stage share one group.

    Raises:
        ValueError: Torch-Pruning cannot trace the model (e.g. a channel shuffle).
    """
    return _analyse(copy.deepcopy(model).eval(), _on_model(model, example_input))[0]


def refused_convs(model: nn.Module, example_input: Tensor) -> dict[str, str]:
    """Convs (groups == 1) whose filters cannot be removed so that pruned ≡ masked, with why.

    Args:
        model: Not modified (it is traced on a copy).
        example_input: (B, C, H, W) input the model accepts.

    Returns:
        {conv name: reason}, e.g. the classifier conv of SqueezeNet ("its channels are the
        network's output …"), or every conv before a LayerNorm in ConvNeXt. Empty for the zoo.
    """
    return _analyse(copy.deepcopy(model).eval(), _on_model(model, example_input))[1]


def describe_group(model: nn.Module, layer: str, example_input: Tensor) -> list[dict]:
    """Every parametrised layer that changes when output channels of conv ``layer`` are removed.

    Returns:
        One dict per member: {"name", "type", "side"}; side "out" = it loses its own output
        channels (filters, BN entries), "in" = it loses input channels. ``model`` is untouched.
    """
    work = copy.deepcopy(model).eval()
    if layer not in models.prunable_convs(work):
        raise KeyError(f"{layer!r} is not a prunable conv; available: {models.prunable_convs(work)}")
    return tp_adapter.group_members(tp_adapter.dependency_graph(work, _on_model(work, example_input)),
                                    work, layer)


_PLAN_SHAPE = "a plan is {'removed': {conv name: [int, ...]}, 'coupled': [[conv name, ...], ...]}"


def _index(value: object, where: str) -> int:
    """``value`` as an int (Python/numpy integer or 0-d integer tensor); ValueError otherwise."""
    if not isinstance(value, bool):
        try:
            return operator.index(value)
        except TypeError:
            pass
    raise ValueError(f"{where}: filter indices must be integers, got {value!r} "
                     f"({type(value).__name__}); {_PLAN_SHAPE}")


def normalise_plan(plan: Plan) -> tuple[dict[str, list[int]], list[list[str]]]:
    """Check the structure of ``plan`` and return (removed, coupled) with sorted int indices.

    Args:
        plan: {"removed": {conv name: indices}, "coupled": [[conv names], ...]} ("coupled" may
            be missing), e.g. read back from JSON. Not modified.

    Returns:
        (removed, coupled): new containers; each index list sorted.

    Raises:
        ValueError: anything else (not a dict, other keys, names that are not strings, indices
            that are not integers, e.g. "3" or 3.0).
    """
    if not isinstance(plan, dict) or "removed" not in plan:
        got = f"keys {list(plan)}" if isinstance(plan, dict) else type(plan).__name__
        raise ValueError(f"{_PLAN_SHAPE}; got {got}")
    extra = set(plan) - {"removed", "coupled"}
    if extra:
        raise ValueError(f"{_PLAN_SHAPE}; got extra keys {sorted(extra)}")
    if not isinstance(plan["removed"], dict):
        raise ValueError(f"{_PLAN_SHAPE}; plan['removed'] is a {type(plan['removed']).__name__}")
    removed = {}
    for name, idxs in plan["removed"].items():
        if not isinstance(name, str) or not isinstance(idxs, list | tuple):
            raise ValueError(f"{_PLAN_SHAPE}; got {name!r}: {idxs!r}")
        removed[name] = sorted(_index(i, f"plan['removed'][{name!r}]") for i in idxs)
    coupled = plan.get("coupled", [])
    if not isinstance(coupled, list | tuple) or not all(
            isinstance(g, list | tuple) and all(isinstance(n, str) for n in g) for g in coupled):
        raise ValueError(f"{_PLAN_SHAPE}; got coupled = {coupled!r}")
    return removed, [list(g) for g in coupled]


def _units(removed: dict[str, list[int]], coupled: list[list[str]],
           convs: list[str]) -> list[tuple[str, list[int]]]:
    """Validate a normalised plan against the model; return one (root conv, indices) per unit."""
    unknown = [n for n in removed if n not in convs]
    if unknown:
        raise KeyError(f"plan names layers that are not prunable convs of this model: {unknown}")
    done: set[str] = set()
    units = []
    group_of = {n: g for g in coupled for n in g}
    for name, idxs in removed.items():
        if name in done:
            continue
        for other in group_of.get(name, [name]):
            if other in removed and removed[other] != idxs:
                raise ValueError(f"coupled layers {name} and {other} must lose the same channels")
        done.add(name)
        if idxs:
            units.append((name, idxs))
    return units


def _roots(graph: object, model: nn.Module, removed: dict[str, list[int]], units: list,
           convs: list) -> list:
    """One (root, indices, mask targets) per truly coupled group.

    Refuse plans that hide or split a coupling, or that remove channels which cannot be removed
    correctly (``refused_convs``).

    A plan must name every coupled layer it changes, with the same indices: otherwise removing
    filters of one conv would silently remove channels of others (or prune a group twice).
    """
    hint = "build the plan with groups=surgery.coupled_groups(model, example_input)"
    roots, covered = [], set()
    for root, idxs in units:
        members, problem = tp_adapter.group_report(graph, model, root, idxs)
        if problem is not None:
            raise ValueError(f"cannot remove filters {idxs} of {root}: {problem}; only the convs "
                             "of surgery.coupled_groups(model, example_input) can be pruned")
        partners = tp_adapter.out_convs(members, convs)
        missing = [p for p in partners if p not in removed]
        if missing:
            raise ValueError(f"{root} is coupled with {missing} (same residual add or depthwise "
                             f"chain) but the plan does not name them; {hint}")
        for other in partners:
            if removed[other] != idxs:
                raise ValueError(f"{root} and {other} are coupled (same residual add or depthwise "
                                 f"chain) but the plan removes different filters from them; {hint}")
        if root not in covered:
            roots.append((root, idxs, tp_adapter.zero_targets(members)))
            covered.update([root, *partners])
    return roots


def _check_indices(modules: dict[str, nn.Module], units: list[tuple[str, list[int]]]) -> None:
    for name, idxs in units:
        n = modules[name].out_channels
        if len(set(idxs)) != len(idxs) or min(idxs) < 0 or max(idxs) >= n:
            raise ValueError(f"{name}: removed indices must be unique and in [0, {n}) (the layer "
                             f"has {n} filters: were the scores computed on another model?), "
                             f"got {idxs}")
        if len(idxs) >= n:
            raise ValueError(f"{name}: the plan removes all {n} filters; at least one must stay")


def _on_model(model: nn.Module, example_input: Tensor) -> Tensor:
    """``example_input`` on the device of ``model``'s parameters (the tensor itself if already there)."""
    return example_input.to(repro.model_device(model))


def _prepare(model: nn.Module, plan: Plan, example_input: Tensor):  # noqa: ANN202
    """Validate, deep-copy and trace; returns (copy in ``model``'s mode, graph, roots)."""
    removed, coupled = normalise_plan(plan)
    work = copy.deepcopy(model)
    convs = models.prunable_convs(work)
    units = _units(removed, coupled, convs)
    _check_indices(dict(work.named_modules()), units)
    was_training = work.training
    work.eval()
    graph = tp_adapter.dependency_graph(work, example_input)
    roots = _roots(graph, work, removed, units, convs)
    work.train(was_training)
    return work, graph, roots


def _probe(example_input: Tensor) -> Tensor:
    """A random input shaped like ``example_input`` (batch ≤ 2), from a local generator.

    Example inputs are often zeros; a random probe makes the check meaningful. The global RNG is
    not touched.
    """
    x = example_input[:2]
    if not x.is_floating_point():
        return x
    g = torch.Generator().manual_seed(0)
    return torch.randn(x.shape, generator=g, dtype=x.dtype).to(x.device)


@torch.no_grad()
def _verify(pruned: nn.Module, masked: nn.Module, example_input: Tensor) -> None:
    """Raise ValueError unless ``pruned`` computes what ``masked`` computes (eval mode).

    Both are this module's own copies; ``pruned`` gets its train/eval mode back.
    """
    was_training = pruned.training
    pruned.eval()
    masked.eval()
    x = _probe(example_input)
    try:
        want = masked(x)
        try:
            got = pruned(x)
        except Exception as err:
            raise ValueError(f"Torch-Pruning returned a model that fails on forward ({err}); "
                             "this model's coupling is not supported, nothing was pruned") from err
    finally:
        pruned.train(was_training)
    got, want = _tensors(got), _tensors(want)
    if len(got) != len(want):
        raise ValueError(f"the pruned model returns {len(got)} tensors, the masked one {len(want)}")
    for got_t, want_t in zip(got, want, strict=True):
        _compare(got_t, want_t)


def _tensors(output: object) -> list[Tensor]:
    """The tensors of a model output (a tensor, or tuples/lists/dicts of them), in order."""
    if isinstance(output, Tensor):
        return [output]
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, list | tuple):
        return [t for item in output for t in _tensors(item)]
    return []


def _compare(got: Tensor, want: Tensor) -> None:
    """Raise ValueError unless ``got`` has ``want``'s shape and values (``VERIFY_RTOL``)."""
    if got.shape != want.shape:
        raise ValueError(f"pruning would change the output shape from {tuple(want.shape)} to "
                         f"{tuple(got.shape)}; refusing (the output layer is not prunable)")
    finite = torch.isfinite(want)
    if not torch.equal(finite, torch.isfinite(got)):
        raise ValueError("the pruned model's output is NaN/inf where the masked one's is not (or "
                         "the reverse); refusing rather than returning a different network")
    want, got = want[finite].double(), got[finite].double()
    scale = float(want.abs().max()) if want.numel() else 0.0
    gap = float((got - want).abs().max()) if want.numel() else 0.0
    if not gap <= VERIFY_RTOL * max(scale, 1e-6):
        raise ValueError(f"the pruned model differs from the masked one by {gap:.3g} (output scale "
                         f"{scale:.3g}): Torch-Pruning does not handle this model's coupling; "
                         "refusing rather than returning a different network")


def apply_plan(model: nn.Module, plan: Plan, example_input: Tensor) -> nn.Module:
    """Return a NEW model with the planned filters physically removed; ``model`` is untouched.

    Args:
        model: The model to prune (any mode); it is deep-copied first.
        plan: {"removed": {conv name: indices}, "coupled": [...]}, e.g. from ``selection``.
        example_input: (B, C, H, W) input used to trace the dependency graph (and, as its shape,
            for a random probe on which the result must equal ``mask_plan``'s).

    Returns:
        The smaller model, in the same train/eval mode as ``model``. Its ``pruning_plan``
        attribute holds the plan that made it (indices as sorted Python ints).

    Raises:
        KeyError: the plan names a layer that is not a prunable conv.
        ValueError: malformed plan (not the documented structure, non-integer indices), bad
            indices (out of range for the layer, repeated), all filters of a layer, coupled
            layers with different removal sets, a conv listed by ``refused_convs``, or a pruned
            model that would differ from the masked one. Nothing is modified when an error is
            raised.
    """
    example_input = _on_model(model, example_input)
    work, graph, units = _prepare(model, plan, example_input)
    masked = copy.deepcopy(work)
    for _, _, targets in units:
        tp_adapter.zero_rows(masked, targets)
    for name, idxs, _ in units:
        tp_adapter.prune_out_channels(graph, work.get_submodule(name), idxs)
    _verify(work, masked, example_input)
    removed, coupled = normalise_plan(plan)
    work.pruning_plan = {"removed": removed, "coupled": coupled}     # plain ints: JSON and torch.save
    work.pruning_example_shape = list(example_input.shape)
    return work


def _checked_keep(conv: nn.Conv2d, bn: nn.BatchNorm2d, next_conv: nn.Conv2d,
                  keep: Sequence[int]) -> list[int]:
    """``keep`` as a list of ints, after ``remove_filters_by_hand``'s checks (ValueError otherwise)."""
    n = conv.out_channels
    if bn.num_features != n:
        raise ValueError(f"the BatchNorm has {bn.num_features} channels but the conv has {n} filters: "
                         "pass the BatchNorm that follows this conv")
    if next_conv.in_channels != n:
        raise ValueError(f"next_conv reads {next_conv.in_channels} channels but the conv has {n} filters: "
                         "pass the conv that reads this conv's output")
    if conv.groups != 1 or next_conv.groups != 1:
        raise ValueError("grouped convs are not handled by hand: use apply_plan")
    try:
        keep = [operator.index(i) for i in keep]                    # ints, numpy ints, 0-d int tensors
    except TypeError as err:
        raise ValueError(f"keep must hold integer filter indices, got {list(keep)}") from err
    if not keep:
        raise ValueError(f"keep is empty: at least one of the {n} filters must stay")
    if len(set(keep)) != len(keep) or min(keep) < 0 or max(keep) >= n:
        raise ValueError(f"keep must hold unique indices in [0, {n}) (the conv has {n} filters), got {keep}")
    return keep


def remove_filters_by_hand(conv: nn.Conv2d, bn: nn.BatchNorm2d, next_conv: nn.Conv2d,
                           keep: Sequence[int]) -> tuple[nn.Conv2d, nn.BatchNorm2d, nn.Conv2d]:
    """Keep only filters ``keep`` of ``conv`` in a conv → BatchNorm → (ReLU) → conv chain, slice by slice.

    A deliberately explicit reference for lesson 00: every tensor that holds one entry per filter of
    ``conv`` is sliced with the same indices, and nothing else is touched. ``apply_plan`` does the
    same through a dependency graph, which also finds coupled layers (residual adds) that this
    function knows nothing about. With k = len(keep):

    - ``conv.weight`` (n, c, kh, kw) → (k, c, kh, kw) and ``conv.bias`` (n,) → (k,): the filters;
    - ``bn.weight``, ``bn.bias``, ``bn.running_mean``, ``bn.running_var`` (n,) → (k,): γ, β and
      the running statistics of the channels the filters produced;
    - ``next_conv.weight`` (n', n, kh', kw') → (n', k, kh', kw'): the next conv's input channels
      (its filters and bias (n',) are unchanged).

    Args:
        conv: The conv whose filters go; groups == 1.
        bn: The BatchNorm right after it, with n = conv.out_channels channels.
        next_conv: The conv that reads the BatchNorm's (ReLU'd) output; n input channels, groups == 1.
        keep: Indices of the filters that stay, unique, in [0, n); at least one. Kept in the order
            given (sorted indices keep the layer's order).

    Returns:
        (new conv, new BatchNorm, new next conv): new modules with copied tensors, in the
        train/eval modes of the inputs and on their device. The inputs are not modified.

    Raises:
        ValueError: empty ``keep``, an index out of range or repeated, a BatchNorm or next conv
            whose width does not match ``conv``'s filters, or a grouped conv.
    """
    keep = _checked_keep(conv, bn, next_conv, keep)
    idx = torch.tensor(keep, device=conv.weight.device)
    k = len(keep)
    like = {"device": conv.weight.device, "dtype": conv.weight.dtype}

    # new modules, left uninitialised (skip_init draws no random numbers): every tensor is copied below
    # 1. the conv: filters are the rows of its weight (dim 0), one bias entry each
    new_conv = nn.utils.skip_init(
        nn.Conv2d, conv.in_channels, k, conv.kernel_size, stride=conv.stride, padding=conv.padding,
        dilation=conv.dilation, bias=conv.bias is not None, padding_mode=conv.padding_mode, **like)
    # 2. the BatchNorm: one γ, β, running mean and running variance per channel
    new_bn = nn.utils.skip_init(nn.BatchNorm2d, k, eps=bn.eps, momentum=bn.momentum, affine=bn.affine,
                                track_running_stats=bn.track_running_stats, **like)
    # 3. the next conv: its weight's dim 1 runs over the channels it reads
    new_next = nn.utils.skip_init(
        nn.Conv2d, k, next_conv.out_channels, next_conv.kernel_size, stride=next_conv.stride,
        padding=next_conv.padding, dilation=next_conv.dilation, bias=next_conv.bias is not None,
        padding_mode=next_conv.padding_mode, **like)
    with torch.no_grad():
        new_conv.weight.copy_(conv.weight[idx])                     # (k, c, kh, kw)
        if conv.bias is not None:
            new_conv.bias.copy_(conv.bias[idx])                     # (k,)
        if bn.affine:
            new_bn.weight.copy_(bn.weight[idx])                     # γ, (k,)
            new_bn.bias.copy_(bn.bias[idx])                         # β, (k,)
        if bn.track_running_stats:
            new_bn.running_mean.copy_(bn.running_mean[idx])         # (k,)
            new_bn.running_var.copy_(bn.running_var[idx])           # (k,)
            new_bn.num_batches_tracked.copy_(bn.num_batches_tracked)
        new_next.weight.copy_(next_conv.weight[:, idx])             # (n', k, kh', kw')
        if next_conv.bias is not None:
            new_next.bias.copy_(next_conv.bias)                     # (n',), unchanged
    return new_conv.train(conv.training), new_bn.train(bn.training), new_next.train(next_conv.training)


def mask_plan(model: nn.Module, plan: Plan, example_input: Tensor) -> nn.Module:
    """Return a NEW model of the same shapes whose planned channels are zeroed (a mask).

    Same arguments and errors as ``apply_plan``. In eval mode, ``mask_plan(m)(x)`` equals
    ``apply_plan(m)(x)``: zero channels contribute nothing downstream.
    """
    work, _, units = _prepare(model, plan, _on_model(model, example_input))
    for _, _, targets in units:
        tp_adapter.zero_rows(work, targets)
    return work


def save_pruned(model: nn.Module, plan: Plan, path: str | Path,
                example_input: Tensor | None = None, *, constructor: str | None = None,
                constructor_kwargs: dict | None = None) -> Path:
    """Save a pruned model as {architecture, plan, example input shape, state_dict} in one file.

    The file holds only tensors, strings, numbers, lists and dicts, so ``load_pruned`` reads it
    with ``torch.load(..., weights_only=True)``. The architecture is a name (``models.build``) or
    a constructor's import path with its keyword arguments (``models.build_from``), never code.

    Args:
        model: The pruned model (on any device; the weights are saved as CPU tensors).
        plan: The plan that produced it from the unpruned architecture.
        path: Output file (``.pt``).
        example_input: The input used for ``apply_plan`` (only its shape is stored); default:
            the shape ``apply_plan`` recorded on the model.
        constructor: How to rebuild the UNPRUNED architecture, e.g.
            ``"torchvision.models.resnet18"`` (allow-list: ``models.resolve_constructor``); default:
            the ``arch_spec`` of a model made by ``models.build``/``build_from``/``load_pretrained``.
        constructor_kwargs: Its keyword arguments, plain data (e.g. ``{"num_classes": 10}``).

    Raises:
        ValueError: no way to rebuild the model (no ``arch_spec``, no ``constructor``), a
            constructor outside the allow-list, kwargs asking for downloaded weights, or no
            example shape. TypeError: kwargs that are not plain data.
    """
    if constructor is not None:
        models.resolve_constructor(constructor)
        spec = {"constructor": constructor,
                "kwargs": models.check_constructor_kwargs(constructor_kwargs or {})}
    else:
        spec = getattr(model, "arch_spec", None)
    if spec is None:
        raise ValueError("model has no arch_spec: build it with models.build(...), "
                         "models.build_from('torchvision.models.resnet18', ...) or "
                         "models.load_pretrained(...), or pass constructor='torchvision.models.…' "
                         "and constructor_kwargs={...}, so that it can be rebuilt")
    shape = list(example_input.shape) if example_input is not None else getattr(
        model, "pruning_example_shape", None)
    if shape is None:
        raise ValueError("pass example_input: the model was not made by apply_plan, so the "
                         "input shape for replaying the plan is unknown")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    removed, coupled = normalise_plan(plan)
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    torch.save({"format": FORMAT, "arch": spec, "plan": {"removed": removed, "coupled": coupled},
                "example_shape": shape, "state_dict": state}, path)
    return path


def _rebuild(arch: object, path: Path) -> nn.Module:
    """The unpruned model an ``arch`` entry names, after the allow-list check."""
    if isinstance(arch, dict) and isinstance(arch.get("kwargs", {}), dict):
        if "constructor" in arch:
            return models.build_from(arch["constructor"], **arch.get("kwargs", {}))
        if "name" in arch:
            return models.build(arch["name"], **arch.get("kwargs", {}))
    raise ValueError(f"{path}: its architecture entry {arch!r} names no model")


def load_pruned(path: str | Path) -> nn.Module:
    """Rebuild a model saved by ``save_pruned``: build, replay the plan, load the weights.

    The architecture is rebuilt only from an allow-listed constructor (``models.resolve_constructor``:
    names given to ``models.register``, ``pruning_lib.*`` modules, ``torchvision.models.*``); a
    file naming anything else is refused before anything is called.

    Returns:
        The pruned model in eval mode, on the CPU (``.to(repro.device())`` moves it).

    Raises:
        FileNotFoundError: no such file.
        ValueError: when the file is not a ``save_pruned`` file (another torch file, a pickled
            module, which ``weights_only=True`` refuses to load, or not a torch file at all), or
            names a constructor outside the allow-list.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no pruned-model file at {path}")
    not_ours = f"{path} is not a pruned-model file written by save_pruned ({FORMAT})"
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as err:
        raise ValueError(f"{not_ours}: torch.load(weights_only=True) refused it ({err})") from err
    if (not isinstance(blob, dict) or blob.get("format") != FORMAT
            or not {"arch", "plan", "example_shape", "state_dict"} <= set(blob)):
        raise ValueError(not_ours)
    fresh = _rebuild(blob["arch"], path).eval()
    pruned = apply_plan(fresh, blob["plan"], torch.zeros(blob["example_shape"]))
    pruned.load_state_dict(blob["state_dict"])
    return pruned.eval()


def rescale_filter(model: nn.Module, conv: str, index: int, alpha: float, *,
                   bn: str | None = None) -> nn.Module:
    """A NEW model that computes the same function, with filter ``index`` of ``conv`` scaled by ``alpha``.

    The BatchNorm after the conv undoes the scale: channel ``index`` of the conv output becomes α·z, so
    its running mean becomes α·μ and its running variance α²(σ² + ε) − ε, and
    γ(αz − αμ)/√(α²(σ² + ε)) = γ(z − μ)/√(σ² + ε): the eval-mode output is unchanged (up to rounding),
    while every norm of filter ``index`` is multiplied by α. This is why a norm criterion's ranking means
    little when a BatchNorm follows the conv (the scale of a filter is not part of the function).

    Args:
        model: Not modified.
        conv: Name of a conv followed by a BatchNorm, e.g. "features.conv3.conv".
        index: The filter to rescale, 0 ≤ index < n.
        alpha: The factor, > 0.
        bn: Name of that BatchNorm; None: the conv's sibling "bn" (the zoo's ``ConvBNReLU``).

    Returns:
        The rescaled copy (the same train/eval modes).

    Raises:
        ValueError: alpha ≤ 0, an index out of range, or a BatchNorm whose width differs from the
            conv's. KeyError: no such conv or BatchNorm.
    """
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0 (a negative factor would flip the ReLU's side), got {alpha}")
    modules = dict(model.named_modules())
    bn = bn if bn is not None else (conv.rsplit(".", 1)[0] + ".bn" if "." in conv else "bn")
    for name, kind in ((conv, nn.Conv2d), (bn, nn.BatchNorm2d)):
        if not isinstance(modules.get(name), kind):
            raise KeyError(f"{name!r} is not a {kind.__name__} of the model")
    n = modules[conv].out_channels
    if modules[bn].num_features != n or modules[bn].running_var is None:
        raise ValueError(f"{bn} ({modules[bn].num_features} channels) must normalise the {n} outputs of "
                         f"{conv} with running statistics")
    if not 0 <= index < n:
        raise ValueError(f"filter index must be in [0, {n}), got {index}")
    new = copy.deepcopy(model)
    fresh = dict(new.named_modules())
    layer, norm = fresh[conv], fresh[bn]
    with torch.no_grad():
        layer.weight[index] *= alpha
        if layer.bias is not None:
            layer.bias[index] *= alpha
        norm.running_mean[index] *= alpha
        norm.running_var[index] = alpha ** 2 * (norm.running_var[index] + norm.eps) - norm.eps
    return new
