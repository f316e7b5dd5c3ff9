"""Experiments the lessons run: ratio sweeps (prune → evaluate → fine-tune → evaluate) and
agreement between criteria.

Every function returns plain records (dicts) that pandas and seaborn read directly; nothing here
plots or prints.

Introduced in: notebooks/01_norms_and_operator_norm.ipynb (§Experiment).
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from pruning_lib import depth, metrics, selection, surgery, train


@dataclass(frozen=True)
class SweepSetup:
    """What a ratio sweep needs besides the model and the scores.

    Attributes:
        example_input: (1, C, H, W) for tracing and MAC counting.
        test_loader: Where accuracy is measured (its size is reported as ``n``).
        groups: Coupled conv groups (``surgery.coupled_groups``).
        train_loader: Fine-tuning data; None = no fine-tuning.
        finetune: Fine-tuning recipe; None = no fine-tuning.
        plan_fn: ``selection.plan_uniform`` (default) or ``selection.plan_global``.
        macs_exclude: Submodules left out of MAC counts (``metrics.count_macs``), e.g.
            ``("frontend",)`` to count the audio CNNs without their log-mel front end.
    """

    example_input: Tensor
    test_loader: DataLoader
    groups: Sequence[Sequence[str]] = ()
    train_loader: DataLoader | None = None
    finetune: train.TrainConfig | None = None
    plan_fn: Callable[..., dict] = selection.plan_uniform
    macs_exclude: Sequence[str] = ()


def prune_and_evaluate(model: nn.Module, scores: dict[str, Tensor], ratio: float,
                       setup: SweepSetup) -> list[dict]:
    """Prune a copy of ``model`` at ``ratio``, evaluate it, and (if set up) fine-tune and evaluate.

    Returns:
        One record per stage ("pruned", and "fine-tuned" when fine-tuning is set up):
        {"ratio", "stage", "accuracy", "correct", "n", "macs", "params", "seconds"}.
    """
    plan = setup.plan_fn(scores, ratio, groups=setup.groups)
    return [{"ratio": ratio, **r} for r in evaluate_plan(model, plan, setup)]


def evaluate_plan(model: nn.Module, plan: dict, setup: SweepSetup) -> list[dict]:
    """Apply ``plan`` to a copy of ``model``, evaluate, and (if set up) fine-tune and evaluate.

    Returns:
        One record per stage: {"stage", "accuracy", "correct", "n", "macs", "params", "seconds"}.
    """
    start = time.perf_counter()
    return evaluate_pruned(surgery.apply_plan(model, plan, setup.example_input), setup, start=start)


def evaluate_pruned(pruned: nn.Module, setup: SweepSetup, *, start: float | None = None) -> list[dict]:
    """Evaluate an already pruned model, and (if set up) fine-tune a copy and evaluate it.

    Returns:
        One record per stage: {"stage", "accuracy", "correct", "n", "macs", "params", "seconds"}
        ("seconds" counts from ``start``, default: now).
    """
    start = time.perf_counter() if start is None else start
    common = {"macs": metrics.count_macs(pruned, setup.example_input, exclude=setup.macs_exclude),
              "params": metrics.count_params(pruned)}
    records = [{**common, "stage": "pruned", **train.evaluate(pruned, setup.test_loader)}]
    if setup.finetune is not None and setup.train_loader is not None:
        tuned, _ = train.fine_tune(pruned, setup.train_loader, None, setup.finetune)
        records.append({**common, "stage": "fine-tuned", **train.evaluate(tuned, setup.test_loader)})
    for record in records:
        record["seconds"] = round(time.perf_counter() - start, 2)
    return records


def ratio_sweep(model: nn.Module, scores_by_criterion: dict[str, dict[str, Tensor]],
                ratios: Sequence[float], setup: SweepSetup, *, label: str = "") -> list[dict]:
    """Run ``prune_and_evaluate`` for every criterion × ratio (a tqdm bar shows progress).

    Args:
        model: The unpruned model (untouched).
        scores_by_criterion: {criterion: {conv name: (n,)}}.
        ratios: Fractions of filters removed, each in [0, 1).
        setup: Loaders, coupling, fine-tuning recipe.
        label: Stored as "model" in every record (e.g. "vgg16_slim").

    Returns:
        Records with "model" and "criterion" added (see ``prune_and_evaluate``).
    """
    rows = []
    combos = list(itertools.product(scores_by_criterion, ratios))
    for criterion, ratio in tqdm(combos, desc=f"sweep {label}".strip(), leave=False):
        for record in prune_and_evaluate(model, scores_by_criterion[criterion], ratio, setup):
            rows.append({"model": label, "criterion": criterion, **record})
    return rows


def plan_table(model: nn.Module, plans: dict[str, dict[str, dict]], setup: SweepSetup, *,
               label: str = "") -> list[dict]:
    """Evaluate named plans per criterion: the layer-by-layer table of Interspeech'22.

    Every plan is applied to a fresh copy of ``model`` and evaluated (and fine-tuned, if the setup
    says so) with ``evaluate_plan``; MACs are also counted the "own layer only" way
    (``metrics.mac_reductions``). A tqdm bar shows progress.

    Args:
        model: The unpruned model (untouched).
        plans: {criterion: {configuration name, e.g. "C1+C2": plan}}.
        setup: Loaders, fine-tuning recipe, ``macs_exclude``.
        label: Stored as "model" in every record.

    Returns:
        Records {"model", "criterion", "config", "stage", "accuracy", "correct", "n", "params",
        "macs", "own_reduction", "with_next_reduction", "seconds"}; the reductions are fractions
        of the unpruned model's MACs.
    """
    base = metrics.count_macs(model, setup.example_input, exclude=setup.macs_exclude)
    rows = []
    combos = [(c, name) for c in plans for name in plans[c]]
    for criterion, config in tqdm(combos, desc=f"table {label}".strip(), leave=False):
        plan = plans[criterion][config]
        saved_own = metrics.own_layer_saving(model, plan, setup.example_input)
        for record in evaluate_plan(model, plan, setup):
            rows.append({"model": label, "criterion": criterion, "config": config, **record,
                         "own_reduction": saved_own / base,
                         "with_next_reduction": (base - record["macs"]) / base})
    return rows


def match_macs(model: nn.Module, scores: dict[str, Tensor], target_macs: float, example_input: Tensor, *,
               groups: Sequence[Sequence[str]] = (), step: float = 0.01, max_ratio: float = 0.95,
               exclude: Sequence[str] = (),
               plan_fn: Callable[..., dict] = selection.plan_uniform) -> tuple[float, nn.Module]:
    """The ratio (a multiple of ``step``) whose pruned model's MACs come closest to a target.

    With ``plan_uniform`` every criterion gets the same widths at a ratio; with ``plan_global`` the
    criterion decides each layer's width, so equal ratios can cost different MACs and matching the
    MACs is what makes a comparison fair. Either way a larger ratio removes a superset of filters, so
    MACs never increase with the ratio, and a bisection over the grid needs about log2(max_ratio / step)
    surgeries (7 for the defaults). Used to compare criteria, or depth against width, at equal MACs.

    Args:
        model: The unpruned model (untouched).
        scores: {conv name: (n,)}, higher = keep.
        target_macs: MACs (on ``example_input``) to match.
        example_input: (1, C, H, W).
        groups: Coupled conv groups (``surgery.coupled_groups``).
        step: Grid of ratios tried: 0, step, 2·step, … ≤ max_ratio.
        exclude: Submodules left out of the MAC count (``metrics.count_macs``).
        plan_fn: ``selection.plan_uniform`` or ``selection.plan_global``.

    Returns:
        (ratio, pruned model) with |MACs − target| smallest over the grid (ties: the smaller ratio).
    """
    grid = [round(i * step, 10) for i in range(int(max_ratio / step + 1e-9) + 1)]
    cache: dict[int, tuple[int, nn.Module]] = {}

    def at(i: int) -> tuple[int, nn.Module]:
        if i not in cache:
            pruned = surgery.apply_plan(model, plan_fn(scores, grid[i], groups=groups), example_input)
            cache[i] = (metrics.count_macs(pruned, example_input, exclude=exclude), pruned)
        return cache[i]

    lo, hi = 0, len(grid) - 1            # invariant: MACs(lo) >= target > MACs(hi), unless at the ends
    if at(hi)[0] >= target_macs:
        return grid[hi], at(hi)[1]
    if at(lo)[0] <= target_macs:
        return grid[lo], at(lo)[1]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if at(mid)[0] >= target_macs else (lo, mid)
    best = min((lo, hi), key=lambda i: (abs(at(i)[0] - target_macs), i))
    return grid[best], at(best)[1]


def budget_sweep(model: nn.Module, scores_by_criterion: dict[str, dict[str, Tensor]],
                 budgets: Sequence[float], setup: SweepSetup, *, label: str = "",
                 step: float = 0.01) -> list[dict]:
    """Compare criteria at equal cost: for each MAC budget, prune by each criterion at the ratio whose
    MACs come closest to it (``match_macs`` with ``setup.plan_fn``: uniform or global), then evaluate
    (and fine-tune, if set up).

    Args:
        model: The unpruned model (untouched).
        scores_by_criterion: {criterion: {conv name: (n,)}}.
        budgets: MACs to keep, as fractions of the unpruned model's, e.g. [0.5, 0.25].
        setup: Loaders, coupling (``groups``), fine-tuning, ``macs_exclude`` (left out of every count).
        label: Stored as "model" in every record.
        step: Ratio grid of ``match_macs``.

    Returns:
        Records {"model", "criterion", "budget", "ratio", "macs_fraction", "stage", "accuracy",
        "correct", "n", "macs", "params", "seconds"} (one per stage).
    """
    if any(not 0 < b <= 1 for b in budgets):
        raise ValueError(f"budgets are fractions of the unpruned MACs in (0, 1], got {list(budgets)}")
    base = metrics.count_macs(model, setup.example_input, exclude=setup.macs_exclude)
    rows = []
    combos = list(itertools.product(scores_by_criterion, budgets))
    for criterion, budget in tqdm(combos, desc=f"budgets {label}".strip(), leave=False):
        start = time.perf_counter()
        ratio, pruned = match_macs(model, scores_by_criterion[criterion], budget * base, setup.example_input,
                                   groups=setup.groups, step=step, exclude=setup.macs_exclude,
                                   plan_fn=setup.plan_fn)
        for record in evaluate_pruned(pruned, setup, start=start):
            rows.append({"model": label, "criterion": criterion, "budget": budget, "ratio": ratio,
                         "macs_fraction": record["macs"] / base, **record})
    return rows


# Measurements behind the lessons' "Try it" widgets (pruning_lib.lab.widgets displays them).


def prune_and_measure(model: nn.Module, scores: dict[str, Tensor], ratio: float, *,
                      example_input: Tensor, loader: DataLoader,
                      groups: Sequence[Sequence[str]] = (), layers: Sequence[str] | None = None,
                      macs_exclude: Sequence[str] = ()) -> dict:
    """Prune a copy of ``model`` uniformly at ``ratio`` by ``scores``; measure it.

    Args:
        model: Unpruned model (untouched).
        scores: {conv name: (n,)} precomputed scores.
        ratio: Fraction of filters removed in every layer/group, in [0, 1).
        example_input: (1, C, H, W) (or (1, T) for the audio models) for tracing and MAC counting.
        loader: Small evaluation split.
        groups: Coupled conv groups (``surgery.coupled_groups``).
        layers: Prune only these scored layers (None: all of them; empty: none).
        macs_exclude: Submodules left out of the MAC count (``metrics.count_macs``).

    Returns:
        {"ratio", "layers", "accuracy", "correct", "n", "macs", "params", "widths", "plan",
        "seconds"}.

    Raises:
        KeyError: a layer in ``layers`` that has no scores.
    """
    start = time.perf_counter()
    layers = list(scores) if layers is None else list(layers)
    unknown = [name for name in layers if name not in scores]
    if unknown:
        raise KeyError(f"no scores for {unknown}; scored layers: {list(scores)}")
    chosen = {name: scores[name] for name in layers}
    plan = (selection.plan_uniform(chosen, ratio, groups=groups) if chosen
            else {"removed": {}, "coupled": []})
    pruned = surgery.apply_plan(model, plan, example_input)
    result = train.evaluate(pruned, loader)
    modules = dict(pruned.named_modules())
    return {"ratio": ratio, "layers": layers, "accuracy": result["accuracy"],
            "correct": result["correct"], "n": result["n"],
            "macs": metrics.count_macs(pruned, example_input, exclude=macs_exclude),
            "params": metrics.count_params(pruned),
            "widths": {name: modules[name].out_channels for name in scores},
            "plan": plan, "seconds": time.perf_counter() - start}


def budget_and_measure(model: nn.Module, scores: dict[str, Tensor], budget: float, *, example_input: Tensor,
                       loader: DataLoader, groups: Sequence[Sequence[str]] = (),
                       plan_fn: Callable[..., dict] = selection.plan_uniform, step: float = 0.01) -> dict:
    """Prune ``model`` by ``scores`` to about ``budget`` of its MACs (``experiments.match_macs``); measure.

    Returns:
        {"budget", "ratio", "accuracy", "correct", "n", "macs", "macs_fraction", "params", "seconds"}.
    """
    start = time.perf_counter()
    base = metrics.count_macs(model, example_input)
    ratio, pruned = match_macs(model, scores, budget * base, example_input, groups=groups,
                                           step=step, plan_fn=plan_fn)
    result = train.evaluate(pruned, loader)
    macs = metrics.count_macs(pruned, example_input)
    return {"budget": budget, "ratio": ratio, "accuracy": result["accuracy"], "correct": result["correct"],
            "n": result["n"], "macs": macs, "macs_fraction": macs / base,
            "params": metrics.count_params(pruned), "seconds": time.perf_counter() - start}


def truncate_and_measure(model: nn.Module, block: str, *, fit_loader: DataLoader, loader: DataLoader,
                         example_input: Tensor) -> dict:
    """Cut ``model`` after ``block`` (``depth.truncate``), fit the new head by ridge regression
    on ``fit_loader`` (``depth.fit_head``), and measure it on ``loader``.

    Returns:
        {"block", "accuracy", "correct", "n", "macs", "params", "blocks_kept", "seconds"}.
    """
    start = time.perf_counter()
    net = depth.fit_head(depth.truncate(model, block), fit_loader)
    result = train.evaluate(net, loader)
    return {"block": block, "accuracy": result["accuracy"], "correct": result["correct"], "n": result["n"],
            "macs": metrics.count_macs(net, example_input), "params": metrics.count_params(net),
            "blocks_kept": len(net.trunk), "seconds": time.perf_counter() - start}


def spearman(a: Tensor, b: Tensor) -> float:
    """Spearman rank correlation of two score vectors of shape (n,) (ties broken by index).

    Example:
        >>> round(spearman(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([10.0, 30.0, 20.0])), 6)
        0.5
    """
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"need two 1-D score vectors of equal length >= 2, got {a.shape}, {b.shape}")
    ra = torch.sort(a.double(), stable=True).indices.argsort().double()
    rb = torch.sort(b.double(), stable=True).indices.argsort().double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra @ rb) / (ra.norm() * rb.norm()))


def jaccard(a: Sequence[int], b: Sequence[int]) -> float:
    """|A ∩ B| / |A ∪ B| of two index sets (1.0 when both are empty)."""
    sa, sb = set(a), set(b)
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


def criterion_agreement(scores_by_criterion: dict[str, dict[str, Tensor]],
                        ratio: float) -> tuple[Tensor, Tensor]:
    """How much criteria agree, averaged over layers.

    Args:
        scores_by_criterion: {criterion: {layer: (n,)}}; every criterion scores the same layers.
        ratio: The ratio whose removal sets are compared (uniform plans, no coupling).

    Returns:
        (rank correlation, overlap): two (K, K) matrices for K criteria, in the dict's order:
        mean Spearman ρ of the scores, and mean Jaccard index of the removed filters.
    """
    names = list(scores_by_criterion)
    layers = list(scores_by_criterion[names[0]])
    removed = {c: selection.plan_uniform(scores_by_criterion[c], ratio)["removed"] for c in names}
    rho = torch.zeros(len(names), len(names))
    overlap = torch.zeros(len(names), len(names))
    for (i, a), (j, b) in itertools.product(enumerate(names), repeat=2):
        rho[i, j] = sum(spearman(scores_by_criterion[a][ly], scores_by_criterion[b][ly])
                        for ly in layers) / len(layers)
        overlap[i, j] = sum(jaccard(removed[a][ly], removed[b][ly]) for ly in layers) / len(layers)
    return rho, overlap


def time_call(fn: Callable[[], object], *, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
