"""From scores to a pruning plan: which filters of which layer are removed.

A plan is plain, JSON-serialisable data::

    {"removed": {"features.conv1.conv": [0, 5, 7], ...},   # sorted filter indices to REMOVE
     "coupled": [["stem.conv", "layer1.0.conv2.conv", ...], ...]}   # layers pruned together

Coupled layers (a residual add, a depthwise chain) must lose the same channels. When ``groups`` is
given (``surgery.coupled_groups(model, x)``) the scores of a group's members are normalised by
their mean absolute value and averaged, one removal set is chosen for the whole group, and the plan
lists the group under ``"coupled"``.

Tie-breaking is deterministic: filters are sorted by score with a stable sort, so among equal
scores the lower index is removed first.

Hardware-aware widths: ``plan_uniform`` and ``plan_global`` take ``round_to=k`` (as Torch-Pruning's
``round_to``): every unit keeps a multiple of k filters, at least k, chosen as the k·⌊kept/k⌋
highest-scoring (so rounding removes a few more filters, unless fewer than k would stay). GPU
kernels, and many CPU ones, work on channel tiles of 8, 16 or 32: a layer of 61 channels often
costs what 64 do.

Scores may live on any device; plans are plain Python data.

Introduced in: notebooks/00_tour.ipynb (§The pipeline).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor

Plan = dict[str, object]
_EPS = 1e-12


def _check_ratio(ratio: object) -> float:
    """``ratio`` as a float in [0, 1): any real number (int, float, numpy scalar, 0-d tensor)."""
    value = ratio
    if isinstance(ratio, Tensor) and ratio.ndim == 0 and not ratio.dtype.is_complex:
        value = ratio.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"prune ratio must be a real number in [0, 1) (the fraction REMOVED), "
                         f"got {ratio!r} ({type(ratio).__name__})")
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"prune ratio must be in [0, 1) (the fraction REMOVED), got {ratio!r}")
    return float(value)


def _check_scores(scores: dict[str, Tensor], sizes: Mapping[str, int] | None = None) -> None:
    """Non-empty, finite 1-D scores; with ``sizes``, one score per filter of each layer."""
    if not scores:
        raise ValueError("scores is empty: expected {layer name: Tensor[n_filters]}")
    for name, s in scores.items():
        if not isinstance(s, Tensor) or s.ndim != 1 or len(s) == 0:
            raise ValueError(f"scores[{name!r}] must be a non-empty 1-D tensor, got "
                             f"{getattr(s, 'shape', type(s).__name__)}")
        if not torch.isfinite(s).all():
            raise ValueError(f"scores[{name!r}] contains NaN or inf")
    if sizes is not None:
        unknown = [name for name in scores if name not in sizes]
        if unknown:
            raise KeyError(f"scored layers {unknown} are not in sizes (layers: {list(sizes)})")
        wrong = {name: (len(s), sizes[name]) for name, s in scores.items() if len(s) != sizes[name]}
        if wrong:
            raise ValueError("scores must have one entry per filter; (scores, filters): "
                             + ", ".join(f"{n}: {a} vs {b}" for n, (a, b) in wrong.items()))


def merge_groups(scores: dict[str, Tensor], groups: Sequence[Sequence[str]] = ()) -> list[list[str]]:
    """Partition the scored layers into units that are pruned together (forward order).

    A unit is a whole coupled group, including members that have no scores (they lose the same
    channels as the scored ones, so the plan names them too).

    Args:
        scores: {layer: (n,)}.
        groups: Coupled layer names, e.g. from ``surgery.coupled_groups``.

    Returns:
        One list per unit; every scored layer appears in exactly one.

    Raises:
        ValueError: when scored members of one group have different numbers of filters.
    """
    units: list[list[str]] = []
    seen: set[str] = set()
    group_of = {name: list(g) for g in groups for name in g}
    for name in scores:
        if name in seen:
            continue
        unit = group_of.get(name, [name])
        sizes = {len(scores[n]) for n in unit if n in scores}
        if len(sizes) != 1:
            raise ValueError(f"coupled layers {unit} have different filter counts {sorted(sizes)}")
        units.append(unit)
        seen.update(unit)
    return units


def unit_scores(scores: dict[str, Tensor], unit: Sequence[str]) -> Tensor:
    """Mean of the scored members' scores, each divided by its mean absolute value; shape (n,)."""
    stacked = torch.stack([scores[n].float() for n in unit if n in scores])   # (members, n)
    scale = stacked.abs().mean(dim=1, keepdim=True).clamp_min(_EPS)       # (members, 1)
    return (stacked / scale).mean(dim=0)


def check_round_to(round_to: object) -> int | None:
    """``round_to`` as a positive int, or None (no rounding); ValueError otherwise."""
    if round_to is None:
        return None
    if isinstance(round_to, bool) or not isinstance(round_to, numbers.Integral) or round_to < 1:
        raise ValueError(f"round_to must be a positive integer (e.g. 8) or None, got {round_to!r}")
    return int(round_to)


def rounded_keep(n: int, keep: int, round_to: int | None) -> int:
    """How many of ``n`` filters stay when ``keep`` are wanted and kept counts are multiples of ``round_to``.

    Rounds down (Torch-Pruning's rule): round_to · max(1, ⌊keep / round_to⌋), never below
    round_to. A unit with fewer than ``round_to`` filters cannot keep a multiple of it and
    stays whole.

    Example:
        >>> rounded_keep(64, 37, 8), rounded_keep(64, 5, 8), rounded_keep(6, 3, 8), rounded_keep(64, 37, None)
        (32, 8, 6, 37)
    """
    if round_to is None:
        return keep
    if n < round_to:
        return n
    return round_to * max(1, keep // round_to)


def lowest(scores: Tensor, k: int) -> list[int]:
    """Sorted indices of the ``k`` lowest scores (stable: lower index first among ties)."""
    order = torch.sort(scores, stable=True).indices
    return sorted(order[:k].tolist())


def _plan(removed_by_unit: dict[tuple[str, ...], list[int]]) -> Plan:
    removed = {name: idx for unit, idx in removed_by_unit.items() for name in unit}
    coupled = [list(unit) for unit in removed_by_unit if len(unit) > 1]
    return {"removed": removed, "coupled": coupled}


def plan_uniform(scores: dict[str, Tensor], ratio: float, *,
                 groups: Sequence[Sequence[str]] = (),
                 sizes: Mapping[str, int] | None = None,
                 round_to: int | None = None) -> Plan:
    """Remove the same fraction of filters from every layer (or coupled group).

    Each unit of n filters loses ``floor(ratio · n)`` filters, at most n − 1: one always stays.
    With ``round_to=k`` the kept count is then rounded down to a multiple of k (``rounded_keep``).

    Kept count: n − ⌊ratio·n⌋ = ⌈(1 − ratio)·n⌉, as the authors' DCASE script (Singh & Plumbley). A
    deviation from their VGG scripts, which keep ``int((1 − p)·n)`` = ⌊(1 − ratio)·n⌋: one filter
    fewer whenever ratio·n is not a whole number (n = 13 at ratio 0.5: 7 kept here, 6 there).

    Args:
        scores: {layer: scores (n,)}, higher = keep.
        ratio: Fraction of filters to remove, in [0, 1) (any real number: float, numpy scalar,
            0-d tensor).
        groups: Coupled layer names (from ``surgery.coupled_groups``).
        sizes: {layer: filters}, e.g. ``models.conv_widths(model)``; when given, every score
            vector must have exactly that length.
        round_to: Keep a multiple of this many filters in every unit (at least that many; a
            unit with fewer filters stays whole); None: no rounding.

    Returns:
        A plan (see the module docstring).

    Raises:
        ValueError: ratio outside [0, 1) or not a real number; empty, non-1-D or non-finite
            scores; scores whose length differs from ``sizes``; ``round_to`` not a positive
            integer. KeyError: a scored layer missing from ``sizes``.

    Example:
        >>> plan_uniform({"c": torch.tensor([3.0, 1.0, 2.0, 0.5])}, 0.5)
        {'removed': {'c': [1, 3]}, 'coupled': []}
    """
    ratio = _check_ratio(ratio)
    round_to = check_round_to(round_to)
    _check_scores(scores, sizes)
    scores = _on_cpu(scores)
    removed = {}
    for unit in merge_groups(scores, groups):
        s = unit_scores(scores, unit)
        n = len(s)
        keep = rounded_keep(n, n - min(math.floor(ratio * n), n - 1), round_to)
        removed[tuple(unit)] = lowest(s, n - keep)
    return _plan(removed)


def _on_cpu(scores: dict[str, Tensor]) -> dict[str, Tensor]:
    """The scores as CPU tensors (plans are plain data, whatever device scored the filters)."""
    return {name: s.detach().cpu() for name, s in scores.items()}


def plan_global(scores: dict[str, Tensor], ratio: float, *,
                groups: Sequence[Sequence[str]] = (),
                sizes: Mapping[str, int] | None = None,
                round_to: int | None = None) -> Plan:
    """Rank all filters of all layers together and remove the lowest ``ratio`` of them.

    Scores are made comparable by dividing each layer's scores by their mean absolute value (as
    Torch-Pruning's "mean" normaliser does). One filter always stays in every layer, so a layer that
    would empty out keeps its best filter and the next-ranked filters elsewhere go instead. With
    ``round_to=k`` each unit's kept count is then rounded down to a multiple of k
    (``rounded_keep``), so slightly more than ``ratio`` of the filters may go.

    Args:
        scores: {layer: scores (n,)}, higher = keep.
        ratio: Fraction of ALL scored filters to remove, in [0, 1) (any real number).
        groups: Coupled layer names (a group counts its filters once).
        sizes: {layer: filters}; when given, every score vector must have that length.
        round_to: As ``plan_uniform``.

    Returns:
        A plan (see the module docstring).

    Raises:
        ValueError, KeyError: as ``plan_uniform``.
    """
    ratio = _check_ratio(ratio)
    round_to = check_round_to(round_to)
    _check_scores(scores, sizes)
    scores = _on_cpu(scores)
    units = merge_groups(scores, groups)
    per_unit = [unit_scores(scores, u) for u in units]
    flat = torch.cat(per_unit)                                             # (total,)
    unit_id = torch.cat([torch.full((len(s),), i) for i, s in enumerate(per_unit)])
    # rank of each filter inside its own unit (0 = lowest score)
    rank_in_unit = torch.cat([torch.sort(s, stable=True).indices.argsort() for s in per_unit])
    unit_sizes = torch.tensor([len(s) for s in per_unit])
    eligible = rank_in_unit < unit_sizes[unit_id] - 1                           # never the unit's best
    k = math.floor(ratio * len(flat))
    order = torch.sort(flat, stable=True).indices
    chosen = order[eligible[order]][:k]                                    # greedy in global order
    offsets = torch.cumsum(unit_sizes, 0) - unit_sizes
    removed = {}
    for i, unit in enumerate(units):
        n = len(per_unit[i])
        mine = chosen[unit_id[chosen] == i] - offsets[i]
        if round_to is None:
            removed[tuple(unit)] = sorted(mine.tolist())
        else:
            removed[tuple(unit)] = lowest(per_unit[i], n - rounded_keep(n, n - len(mine), round_to))
    return _plan(removed)


ALLOCATION_RULES: dict[str, Callable[..., Plan]] = {"uniform": plan_uniform, "global": plan_global}
"""How a ratio is spread over the layers, by name: every layer alike, or one global ranking."""


def plan_keep_counts(scores: dict[str, Tensor], keep: dict[str, int], *,
                     sizes: Mapping[str, int] | None = None) -> Plan:
    """Keep exactly ``keep[layer]`` filters (the highest-scoring) in each listed layer.

    Used to compare criteria at the same widths as a method that decides its own widths (e.g.
    similarity pruning). Layers without an entry in ``keep`` are not pruned. No coupling: plan
    coupled layers with ``plan_uniform(..., groups=...)`` instead.

    Args:
        scores: {layer: scores (n,)}, higher = keep.
        keep: {layer: number of filters to keep}, 1 ≤ keep ≤ n.
        sizes: {layer: filters}; when given, every score vector must have that length.

    Raises:
        KeyError: a layer in ``keep`` without scores. ValueError: a count outside [1, n], or
            scores whose length differs from ``sizes``.

    Example:
        >>> plan_keep_counts({"c": torch.tensor([3.0, 1.0, 2.0, 0.5])}, {"c": 1})
        {'removed': {'c': [1, 2, 3]}, 'coupled': []}
    """
    _check_scores(scores, sizes)
    removed = {}
    for name, k in keep.items():
        if name not in scores:
            raise KeyError(f"no scores for layer {name!r}; scored: {list(scores)}")
        n = len(scores[name])
        if not 1 <= k <= n:
            raise ValueError(f"{name}: can keep 1 to {n} filters, asked for {k}")
        removed[(name,)] = lowest(scores[name], n - k)
    return _plan(removed)


def kept_counts(plan: Plan, sizes: dict[str, int]) -> dict[str, int]:
    """Filters that stay in each layer: ``sizes[layer] - len(removed[layer])``."""
    removed = plan["removed"]
    return {name: n - len(removed.get(name, [])) for name, n in sizes.items()}


def restrict_plan(plan: Plan, layers: Sequence[str]) -> Plan:
    """The part of an uncoupled ``plan`` that prunes only ``layers`` (the others stay whole).

    Builds the layer-by-layer configurations of the Interspeech'22 table (C1, C2, C1+C2, …) from
    one plan for all layers.

    Raises:
        KeyError: a layer the plan does not prune. ValueError: the plan has coupled groups (a
            restriction could split one).

    Example:
        >>> restrict_plan({"removed": {"a": [0], "b": [1, 2]}, "coupled": []}, ["b"])
        {'removed': {'b': [1, 2]}, 'coupled': []}
    """
    if plan.get("coupled"):
        raise ValueError("restrict_plan works on uncoupled plans only; this one couples "
                         f"{plan['coupled']}")
    removed = plan["removed"]
    unknown = [name for name in layers if name not in removed]
    if unknown:
        raise KeyError(f"the plan does not prune {unknown}; it prunes {list(removed)}")
    return {"removed": {name: list(removed[name]) for name in layers}, "coupled": []}


def sensitivity_ratios(scan: Sequence[Mapping], tolerance: float, *,
                       metric: str = "recalibrated_accuracy", baseline: float | None = None,
                       monotone: bool = True) -> dict[str, float]:
    """Per-layer ratios from a sensitivity scan: the largest ratio whose accuracy drop ≤ ``tolerance``.

    Li et al. (ICLR 2017, "Pruning Filters for Efficient ConvNets") prune each layer alone over a grid
    of ratios, look at how fast its accuracy falls, and prune sensitive layers less. This turns
    such a scan (``experiments.sensitivity_scan``) into one ratio per scanned layer (or coupled
    group, named by its first member, the records' "layer").

    Args:
        scan: Records with "layer", "ratio", ``metric`` and (unless ``baseline`` is given)
            "baseline_accuracy", the unpruned model's accuracy on the same images.
        tolerance: Largest accepted drop, as a fraction (0.02 = two points of accuracy), ≥ 0.
        metric: The accuracy to read: "recalibrated_accuracy" (BatchNorm re-estimated, the default)
            or "accuracy" (as pruned).
        baseline: The unpruned accuracy; None: each record's "baseline_accuracy".
        monotone: True: the largest ratio r such that *every* scanned ratio ≤ r stays within the
            tolerance (a lucky point after a failing one is not trusted); False: the largest ratio
            whose own drop is within it.

    Returns:
        {layer: ratio}, 0.0 for a layer whose smallest scanned ratio already drops too much.

    Raises:
        ValueError: a negative tolerance, or an empty scan.

    Example:
        >>> scan = [{"layer": "a", "ratio": r, "recalibrated_accuracy": acc, "baseline_accuracy": 0.9}
        ...         for r, acc in [(0.25, 0.90), (0.5, 0.89), (0.75, 0.80)]]
        >>> sensitivity_ratios(scan, 0.02)
        {'a': 0.5}
    """
    if tolerance < 0:
        raise ValueError(f"tolerance is an accuracy drop >= 0 (0.02 = two points), got {tolerance}")
    if not scan:
        raise ValueError("the scan has no records")
    by_layer: dict[str, list[tuple[float, float]]] = {}
    for record in scan:
        base = float(record["baseline_accuracy"]) if baseline is None else float(baseline)
        drop = base - float(record[metric])
        by_layer.setdefault(str(record["layer"]), []).append((float(record["ratio"]), drop))
    ratios = {}
    for layer, points in by_layer.items():
        chosen = 0.0
        for ratio, drop in sorted(points):
            if drop <= tolerance + _EPS:
                chosen = max(chosen, ratio)
            elif monotone:
                break
        ratios[layer] = chosen
    return ratios


def plan_from_ratios(scores: dict[str, Tensor], ratios: Mapping[str, float], *,
                     groups: Sequence[Sequence[str]] = ()) -> Plan:
    """A plan that removes ``ratios[layer]`` of each layer's (or coupled group's) filters.

    Each unit (a layer, or a coupled group, see ``merge_groups``) of n filters loses
    ``floor(ratio · n)`` of its lowest-scoring filters, at most n − 1, as ``plan_uniform`` does
    with one ratio (so ⌈(1 − ratio)·n⌉ stay; the authors' VGG scripts keep ⌊(1 − ratio)·n⌋). A unit
    is looked up by any of its members' names; a unit without a ratio is not pruned.

    Args:
        scores: {layer: (n,)}, higher = keep.
        ratios: {layer: fraction removed in [0, 1)}, e.g. from ``sensitivity_ratios``.
        groups: Coupled layer names (``surgery.coupled_groups``).

    Raises:
        ValueError: a ratio outside [0, 1), bad scores, or two members of one group with different ratios.

    Example:
        >>> plan_from_ratios({"a": torch.tensor([3.0, 1.0, 2.0, 0.5]), "b": torch.tensor([1.0, 2.0])},
        ...                  {"a": 0.5})
        {'removed': {'a': [1, 3], 'b': []}, 'coupled': []}
    """
    _check_scores(scores)
    removed = {}
    for unit in merge_groups(scores, groups):
        given = {_check_ratio(ratios[name]) for name in unit if name in ratios}
        if len(given) > 1:
            raise ValueError(f"coupled layers {unit} were given different ratios {sorted(given)}")
        ratio = given.pop() if given else 0.0
        s = unit_scores(scores, unit)
        removed[tuple(unit)] = lowest(s, min(math.floor(ratio * len(s)), len(s) - 1))
    return _plan(removed)


def plan_from_sensitivity(scan: Sequence[Mapping], tolerance: float, scores: dict[str, Tensor], *,
                          groups: Sequence[Sequence[str]] = (), metric: str = "recalibrated_accuracy",
                          baseline: float | None = None, monotone: bool = True) -> Plan:
    """Li et al.'s allocation: each layer pruned at the largest ratio it tolerates alone.

    ``sensitivity_ratios`` reads the ratios off the scan; ``plan_from_ratios`` removes each layer's
    lowest-scoring filters at its ratio (coupled groups together; layers not in the scan stay whole).
    The layers are scanned one at a time, so their drops need not add up when all are pruned at once:
    the plan's accuracy must be measured, not read off the scan.

    Args:
        scan: Records of ``experiments.sensitivity_scan`` (see ``sensitivity_ratios``).
        tolerance: Largest accepted drop per layer, as a fraction (0.02 = two points).
        scores: {layer: (n,)}, higher = keep (the criterion the scan pruned with).
        groups: Coupled layer names, as in the scan.
        metric: As ``sensitivity_ratios``.
        baseline: As ``sensitivity_ratios``.
        monotone: As ``sensitivity_ratios``.

    Returns:
        A plan (see the module docstring).

    Example:
        >>> scan = [{"layer": "a", "ratio": 0.5, "recalibrated_accuracy": 0.89, "baseline_accuracy": 0.9}]
        >>> plan_from_sensitivity(scan, 0.02, {"a": torch.tensor([3.0, 1.0, 2.0, 0.5])})
        {'removed': {'a': [1, 3]}, 'coupled': []}
    """
    ratios = sensitivity_ratios(scan, tolerance, metric=metric, baseline=baseline, monotone=monotone)
    return plan_from_ratios(scores, ratios, groups=groups)
