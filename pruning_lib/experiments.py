"""Experiments the lessons run: ratio and MAC-budget sweeps, the from-scratch baseline, criterion agreement.

Every pruned network is measured at three stages: "pruned" (as surgery left it), "recalibrated"
(BatchNorm statistics re-estimated on training images, ``train.recalibrate_bn``) and "fine-tuned"
(the fine-tune starts from the *recalibrated* model). Sweeps take ``seeds=``: one fine-tune per seed,
and for a criterion given as a scores *factory* (``seed -> scores``, e.g. ``random_scores_factory``)
also one draw per seed. Every record carries "seed", "loss", "accuracy" and "hits", the per-image
correctness on the test loader (a bool tensor of shape (n,)) that ``stats.paired_bootstrap`` pairs.

Every function returns plain records (dicts) that pandas and seaborn read directly; nothing here
plots or prints.

Introduced in: notebooks/01_norms_and_operator_norm.ipynb (§Experiment).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from pruning_lib import criteria, data, depth, metrics, repro, scoped, selection, surgery, train

Scores = dict[str, Tensor]
ScoresOrFactory = Scores | Callable[[int], Scores]


@dataclass(frozen=True)
class SweepSetup:
    """What a ratio sweep needs besides the model and the scores.

    Attributes:
        example_input: (1, C, H, W) for tracing and MAC counting.
        test_loader: Where accuracy is measured (its size is reported as ``n``).
        groups: Coupled conv groups (``surgery.coupled_groups``).
        train_loader: Fine-tuning data; None = no fine-tuning.
        finetune: Fine-tuning recipe; None = no fine-tuning. Its ``seed`` is the default seed.
        plan_fn: ``selection.plan_uniform`` (default) or ``selection.plan_global``.
        macs_exclude: Submodules left out of MAC counts (``metrics.count_macs``), e.g.
            ``("frontend",)`` to count the audio CNNs without their log-mel front end.
        recalibrate_loader: Training images for BatchNorm recalibration (``train.recalibrate_bn``);
            None = ``train_loader``. Never the test loader (its statistics would leak the test images).
        recalibrate_images: Images forwarded for recalibration; 0 = no "recalibrated" stage (then
            the fine-tune starts from the pruned model).
    """

    example_input: Tensor
    test_loader: DataLoader
    groups: Sequence[Sequence[str]] = ()
    train_loader: DataLoader | None = None
    finetune: train.TrainConfig | None = None
    plan_fn: Callable[..., dict] = selection.plan_uniform
    macs_exclude: Sequence[str] = ()
    recalibrate_loader: DataLoader | None = None
    recalibrate_images: int = 1000

    @property
    def calibration_loader(self) -> DataLoader | None:
        """The loader recalibration uses (None: no "recalibrated" stage)."""
        if self.recalibrate_images < 1:
            return None
        return self.recalibrate_loader if self.recalibrate_loader is not None else self.train_loader

    def default_seeds(self) -> list[int]:
        """[the fine-tune recipe's seed] (or [0] without fine-tuning)."""
        return [self.finetune.seed if self.finetune is not None else 0]


def random_scores_factory(model: nn.Module, layers: Sequence[str] | None = None) -> Callable[[int], Scores]:
    """``seed -> random scores`` for every conv of ``model``: draw ``seed`` is reproducible.

    The scores of one draw come from one generator seeded with ``seed`` and visit the layers in the
    model's order, so draw s is the same whatever ran before. Pass the factory as a criterion to the
    sweeps: each seed then gets its own draw (and fine-tune seed).
    """
    def draw(seed: int) -> Scores:
        generator = torch.Generator().manual_seed(seed)
        return criteria.score_model(model, lambda w: criteria.random_scores(w, generator), layers=layers)
    return draw


@torch.no_grad()
def evaluate_images(model: nn.Module, loader: Iterable[tuple[Tensor, Tensor]]) -> dict:
    """``train.evaluate`` plus each test image's correctness, in one pass (model in eval mode).

    Returns:
        {"loss", "accuracy", "correct", "n", "hits"}: "hits" is a bool tensor (n,) on the CPU, True
        where the prediction is right, in loader order (what ``stats.paired_bootstrap`` pairs). The
        model runs on its parameters' device; batches are moved there.

    Raises:
        ValueError: an empty loader.
    """
    losses, hits = [], []
    device = repro.model_device(model)
    with scoped.eval_mode(model), torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            logits = model(x)                                                      # (B, K)
            losses.append(nn.functional.cross_entropy(logits, y, reduction="none"))  # (B,)
            hits.append(logits.argmax(1) == y)
    if not hits:
        raise ValueError("evaluate_images() got an empty loader")
    hit = torch.cat(hits).cpu()
    n, correct = len(hit), int(hit.sum())
    return {"loss": float(torch.cat(losses).sum()) / n, "accuracy": correct / n, "correct": correct,
            "n": n, "hits": hit}


def _seeds(setup: SweepSetup, seeds: Sequence[int] | None) -> list[int]:
    """``seeds`` as a list (None: ``setup.default_seeds()``); raises ValueError if empty or repeated."""
    out = setup.default_seeds() if seeds is None else [int(s) for s in seeds]
    if not out or len(set(out)) != len(out):
        raise ValueError(f"seeds must be distinct and at least one, got {seeds}")
    return out


def _per_seed(scores: ScoresOrFactory, seeds: list[int]) -> list[tuple[list[int], Scores]]:
    """[(seeds, scores)]: fixed scores serve every seed at once, a factory is drawn once per seed."""
    if callable(scores):
        return [([seed], scores(seed)) for seed in seeds]
    return [(seeds, scores)]


def prune_and_evaluate(model: nn.Module, scores: ScoresOrFactory, ratio: float,
                       setup: SweepSetup, *, seeds: Sequence[int] | None = None) -> list[dict]:
    """Prune a copy of ``model`` at ``ratio``, then measure it as ``evaluate_pruned`` does.

    Args:
        model: The unpruned model (untouched).
        scores: {conv name: (n,)}, or a factory ``seed -> scores`` (one draw per seed).
        ratio: Fraction of filters removed, in [0, 1).
        setup: Loaders, coupling, recalibration, fine-tuning recipe.
        seeds: Fine-tune seeds (None: the recipe's seed).

    Returns:
        Records of ``evaluate_pruned`` with "ratio" added.
    """
    rows = []
    for group, fixed in _per_seed(scores, _seeds(setup, seeds)):
        plan = setup.plan_fn(fixed, ratio, groups=setup.groups)
        rows += [{"ratio": ratio, **r} for r in evaluate_plan(model, plan, setup, seeds=group)]
    return rows


def evaluate_plan(model: nn.Module, plan: dict, setup: SweepSetup, *,
                  seeds: Sequence[int] | None = None) -> list[dict]:
    """Apply ``plan`` to a copy of ``model``, then measure it as ``evaluate_pruned`` does."""
    start = time.perf_counter()
    return evaluate_pruned(surgery.apply_plan(model, plan, setup.example_input), setup, start=start,
                           seeds=seeds)


def evaluate_pruned(pruned: nn.Module, setup: SweepSetup, *, seeds: Sequence[int] | None = None,
                    start: float | None = None) -> list[dict]:
    """Measure an already pruned model at three stages; ``pruned`` is untouched.

    1. "pruned": as surgery left it;
    2. "recalibrated": a copy with BatchNorm statistics re-estimated on
       ``setup.recalibrate_images`` training images (``train.recalibrate_bn``), if a
       calibration loader is set up;
    3. "fine-tuned": a fine-tune of the *recalibrated* copy (of the pruned model without
       recalibration) with ``setup.finetune`` and each seed, if fine-tuning is set up.

    Stages 1 and 2 do not depend on the fine-tune seed: they are measured once and repeated in
    every seed's records, so each seed has the same stages.

    Returns:
        Per seed, one record per stage: {"seed", "stage", "loss", "accuracy", "correct", "n",
        "hits", "macs", "params", "seconds"} ("hits": (n,) bool, see ``evaluate_images``;
        "seconds" counts from ``start``, default: now, to the end of that stage).
    """
    start = time.perf_counter() if start is None else start
    seeds = _seeds(setup, seeds)
    common = {"macs": metrics.count_macs(pruned, setup.example_input, exclude=setup.macs_exclude),
              "params": metrics.count_params(pruned)}
    shared = [{**common, "stage": "pruned", **evaluate_images(pruned, setup.test_loader),
               "seconds": round(time.perf_counter() - start, 2)}]
    base = pruned
    if setup.calibration_loader is not None:
        base = train.recalibrate_bn(pruned, setup.calibration_loader, setup.recalibrate_images)
        shared.append({**common, "stage": "recalibrated", **evaluate_images(base, setup.test_loader),
                       "seconds": round(time.perf_counter() - start, 2)})
    records = []
    for seed in seeds:
        records += [{"seed": seed, **r} for r in shared]
        if setup.finetune is not None and setup.train_loader is not None:
            config = dataclasses.replace(setup.finetune, seed=seed)
            tuned, _ = train.fine_tune(base, setup.train_loader, None, config)
            records.append({"seed": seed, **common, "stage": "fine-tuned",
                            **evaluate_images(tuned, setup.test_loader),
                            "seconds": round(time.perf_counter() - start, 2)})
    return records


def ratio_sweep(model: nn.Module, scores_by_criterion: dict[str, ScoresOrFactory],
                ratios: Sequence[float], setup: SweepSetup, *, label: str = "",
                seeds: Sequence[int] | None = None) -> list[dict]:
    """Run ``prune_and_evaluate`` for every criterion × ratio (a tqdm bar shows progress).

    Args:
        model: The unpruned model (untouched).
        scores_by_criterion: {criterion: {conv name: (n,)} or a factory ``seed -> scores``
            (e.g. ``random_scores_factory``: one random draw per seed)}.
        ratios: Fractions of filters removed, each in [0, 1).
        setup: Loaders, coupling, recalibration, fine-tuning recipe.
        label: Stored as "model" in every record (e.g. "vgg16_slim").
        seeds: Fine-tune seeds (and draws of factories); None: the recipe's seed.

    Returns:
        Records with "model" and "criterion" added (see ``evaluate_pruned``), one per criterion ×
        ratio × seed × stage.
    """
    rows = []
    combos = list(itertools.product(scores_by_criterion, ratios))
    for criterion, ratio in tqdm(combos, desc=f"sweep {label}".strip(), leave=False):
        for record in prune_and_evaluate(model, scores_by_criterion[criterion], ratio, setup, seeds=seeds):
            rows.append({"model": label, "criterion": criterion, **record})
    return rows


def plan_table(model: nn.Module, plans: dict[str, dict[str, dict]], setup: SweepSetup, *,
               label: str = "", seeds: Sequence[int] | None = None) -> list[dict]:
    """Evaluate named plans per criterion: the layer-by-layer table of Interspeech'22.

    Every plan is applied to a fresh copy of ``model`` and evaluated (and fine-tuned, if the setup
    says so) with ``evaluate_plan``; MACs are also counted the "own layer only" way
    (``metrics.mac_reductions``). A tqdm bar shows progress.

    Args:
        model: The unpruned model (untouched).
        plans: {criterion: {configuration name, e.g. "C1+C2": plan}}.
        setup: Loaders, recalibration, fine-tuning recipe, ``macs_exclude``.
        label: Stored as "model" in every record.
        seeds: Fine-tune seeds (None: the recipe's seed).

    Returns:
        Records {"model", "criterion", "config", "seed", "stage", "loss", "accuracy", "correct",
        "n", "hits", "params", "macs", "own_reduction", "with_next_reduction", "seconds"}; the
        reductions are fractions of the unpruned model's MACs.
    """
    base = metrics.count_macs(model, setup.example_input, exclude=setup.macs_exclude)
    rows = []
    combos = [(c, name) for c in plans for name in plans[c]]
    for criterion, config in tqdm(combos, desc=f"table {label}".strip(), leave=False):
        plan = plans[criterion][config]
        saved_own = metrics.own_layer_saving(model, plan, setup.example_input)
        for record in evaluate_plan(model, plan, setup, seeds=seeds):
            rows.append({"model": label, "criterion": criterion, "config": config, **record,
                         "own_reduction": saved_own / base,
                         "with_next_reduction": (base - record["macs"]) / base})
    return rows


def match_macs(model: nn.Module, scores: dict[str, Tensor], target_macs: float, example_input: Tensor, *,  # noqa: PLR0913 — search options are keyword-only, with defaults
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
        max_ratio: The largest ratio tried.
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


def budget_sweep(model: nn.Module, scores_by_criterion: dict[str, ScoresOrFactory],
                 budgets: Sequence[float], setup: SweepSetup, *, label: str = "",
                 step: float = 0.01, seeds: Sequence[int] | None = None) -> list[dict]:
    """Compare criteria at equal cost (equal MACs).

    For each MAC budget, prune by each criterion at the ratio whose
    MACs come closest to it (``match_macs`` with ``setup.plan_fn``: uniform or global), then measure
    the three stages of ``evaluate_pruned`` (pruned, recalibrated, fine-tuned from the recalibrated
    model) for every seed.

    Args:
        model: The unpruned model (untouched).
        scores_by_criterion: {criterion: {conv name: (n,)} or a factory ``seed -> scores``
            (e.g. ``random_scores_factory``: one random draw per seed)}.
        budgets: MACs to keep, as fractions of the unpruned model's, e.g. [0.5, 0.25].
        setup: Loaders, coupling (``groups``), recalibration, fine-tuning, ``macs_exclude`` (left out
            of every count).
        label: Stored as "model" in every record.
        step: Ratio grid of ``match_macs``.
        seeds: Fine-tune seeds (and draws of factories); None: the recipe's seed.

    Returns:
        Records {"model", "criterion", "budget", "ratio", "macs_fraction", "seed", "stage", "loss",
        "accuracy", "correct", "n", "hits", "macs", "params", "seconds"}, one per criterion × budget
        × seed × stage.
    """
    if any(not 0 < b <= 1 for b in budgets):
        raise ValueError(f"budgets are fractions of the unpruned MACs in (0, 1], got {list(budgets)}")
    seeds = _seeds(setup, seeds)
    base = metrics.count_macs(model, setup.example_input, exclude=setup.macs_exclude)
    rows = []
    combos = list(itertools.product(scores_by_criterion, budgets))
    for criterion, budget in tqdm(combos, desc=f"budgets {label}".strip(), leave=False):
        for group, scores in _per_seed(scores_by_criterion[criterion], seeds):
            start = time.perf_counter()
            ratio, pruned = match_macs(model, scores, budget * base, setup.example_input,
                                       groups=setup.groups, step=step, exclude=setup.macs_exclude,
                                       plan_fn=setup.plan_fn)
            for record in evaluate_pruned(pruned, setup, start=start, seeds=group):
                rows.append({"model": label, "criterion": criterion, "budget": budget, "ratio": ratio,
                             "macs_fraction": record["macs"] / base, **record})
    return rows


def allocation_sweep(model: nn.Module, scores_by_criterion: dict[str, ScoresOrFactory],  # noqa: PLR0913 — budget_sweep's options, keyword-only
                     budgets: Sequence[float], setup: SweepSetup, *, label: str = "",
                     allocations: Sequence[str] | dict[str, Callable[..., dict]] = ("uniform", "global"),
                     step: float = 0.01, seeds: Sequence[int] | None = None) -> list[dict]:
    """``budget_sweep`` once per allocation rule (how the budget is spread over the layers).

    Args:
        model: The unpruned model (untouched).
        scores_by_criterion: As in ``budget_sweep``.
        budgets: MACs to keep, fractions of the unpruned model's.
        setup: As in ``budget_sweep``; its ``plan_fn`` is replaced by each allocation's.
        label: Stored as "model" in every record.
        allocations: Names in ``selection.ALLOCATION_RULES`` ("uniform": ``plan_uniform``,
            "global": ``plan_global``), or {name: plan function}.
        step: Ratio grid of ``match_macs``.
        seeds: Fine-tune seeds (and draws of factories); None: the recipe's seed.

    Returns:
        ``budget_sweep``'s records, each with "allocation": its rule's name.
    """
    if not isinstance(allocations, dict):
        unknown = [a for a in allocations if a not in selection.ALLOCATION_RULES]
        if unknown or not allocations:
            raise ValueError(f"allocations are names in {sorted(selection.ALLOCATION_RULES)} "
                             f"(or a dict of plan functions), got {list(allocations)}")
        allocations = {name: selection.ALLOCATION_RULES[name] for name in allocations}
    return [{**record, "allocation": name}
            for name, plan_fn in allocations.items()
            for record in budget_sweep(model, scores_by_criterion, budgets,
                                       dataclasses.replace(setup, plan_fn=plan_fn), label=label, step=step,
                                       seeds=seeds)]


def reinitialise(model: nn.Module, seed: int) -> nn.Module:
    """A copy of ``model`` (same architecture, e.g. a pruned one) with freshly initialised weights.

    Every submodule with ``reset_parameters`` (convs, linears, BatchNorms) is re-initialised with
    PyTorch's default initialisation from a torch RNG seeded with ``seed`` (the global RNG state is
    restored); BatchNorm running statistics are reset. ``model`` is untouched.
    """
    fresh = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in fresh.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
                module.reset_running_stats()
    return fresh


def scratch_baseline(pruned: nn.Module, setup: SweepSetup, *, seeds: Sequence[int] | None = None,
                     epochs: int | None = None) -> list[dict]:
    """The pruned architecture trained from scratch: the baseline that needs no criterion.

    Liu et al. ("Rethinking the value of network pruning", ICLR 2019) found that for structured
    pruning, training the small architecture from random weights often matches prune + fine-tune. Here
    the weights of ``pruned`` are re-initialised (``reinitialise``, one initialisation per seed) and
    trained with ``setup.finetune`` on ``setup.train_loader``: by default the same epochs, hence the
    same number of optimiser steps, as the fine-tune of ``evaluate_pruned`` (pruning itself takes no
    step). Then, if ``setup`` has a calibration loader, BatchNorm is recalibrated as in
    ``evaluate_pruned`` (no optimiser step): after a short training the running statistics, which
    move 10% per step from their reset values, would otherwise still describe the first steps. This
    is the *equal fine-tuning budget* version; Liu et al. gave the scratch model the full training
    budget of the large model (pass ``epochs`` for more).

    Args:
        pruned: A pruned model (only its architecture is used; untouched).
        setup: Needs ``train_loader`` and ``finetune``; ``test_loader`` measures.
        seeds: Initialisation and training seeds (None: the recipe's seed).
        epochs: Training epochs (None: ``setup.finetune.epochs``).

    Returns:
        One record per seed: {"seed", "stage": "from scratch", "steps", "loss", "accuracy",
        "correct", "n", "hits", "macs", "params", "seconds"}.

    Raises:
        ValueError: no ``train_loader`` or ``finetune`` in ``setup``.
    """
    if setup.finetune is None or setup.train_loader is None:
        raise ValueError("scratch_baseline needs setup.train_loader and setup.finetune")
    config = setup.finetune if epochs is None else dataclasses.replace(setup.finetune, epochs=epochs)
    common = {"macs": metrics.count_macs(pruned, setup.example_input, exclude=setup.macs_exclude),
              "params": metrics.count_params(pruned), "steps": config.epochs * len(setup.train_loader)}
    rows = []
    for seed in _seeds(setup, seeds):
        start = time.perf_counter()
        trained, _ = train.fine_tune(reinitialise(pruned, seed), setup.train_loader, None,
                                     dataclasses.replace(config, seed=seed))
        if setup.calibration_loader is not None:
            trained = train.recalibrate_bn(trained, setup.calibration_loader, setup.recalibrate_images)
        rows.append({"seed": seed, "stage": "from scratch", **common,
                     **evaluate_images(trained, setup.test_loader),
                     "seconds": round(time.perf_counter() - start, 2)})
    return rows


# Measurements behind the lessons' "Try it" widgets (pruning_lib.lab.widgets displays them).
#
# Each returns the network's accuracy at two stages on the explorer's evaluation images: as pruned
# (keys "accuracy", "correct", "loss") and after BatchNorm recalibration on a few hundred *training*
# images (``train.recalibrate_bn``; keys "recalibrated_accuracy", "recalibrated_correct",
# "recalibrated_loss", None when no recalibration loader is given), and "seconds": the wall time of
# the whole measurement (surgery, recalibration, both evaluations, counting), what a slider move costs.


def recalibration_loader(dataset: object, per_class: int = 20, *, seed: int = 0) -> DataLoader:
    """The explorers' recalibration images: ``per_class`` *training* examples of every class.

    They come in one
    fixed, unshuffled batch, so every slider move re-estimates BatchNorm on the same images.

    Args:
        dataset: A ``data.ImageData`` (images normalised as every loader of ``data``) or an
            ``audio.data.AudioData`` (waveforms, as its loaders yield them): anything with
            ``x_train`` and ``y_train``.
        per_class: Examples per class (20 → 200 for ten classes: on vgg16_slim pruned by ℓ1 at 30% and 50%,
            200, 300 and 1,000 images gave recalibrated accuracies within 0.5 points of each other).
        seed: Seeds the choice.
    """
    if isinstance(dataset, data.ImageData):
        return data.subset_loader(dataset, "train", per_class, seed=seed, batch_size=10 * per_class)
    idx = data.balanced_indices(dataset.y_train, per_class, seed=seed)
    return DataLoader(TensorDataset(dataset.x_train[idx], dataset.y_train[idx]), batch_size=len(idx),
                      generator=torch.Generator())      # iterating it spares the global torch RNG


def _loader_images(loader: DataLoader, cap: int) -> int:
    """How many images ``activations.iter_batches(loader, cap)`` yields, without iterating."""
    dataset = getattr(loader, "dataset", None)
    return min(cap, len(dataset)) if hasattr(dataset, "__len__") else cap


def measure_stages(net: nn.Module, loader: DataLoader, *, recalibrate_loader: DataLoader | None = None,
                   recalibrate_images: int = 1000,
                   prepare: Callable[[nn.Module], nn.Module] | None = None) -> dict:
    """Accuracy of ``net`` as it is and after BatchNorm recalibration, on the same ``loader`` images.

    Args:
        net: A pruned (or cut) network (untouched).
        loader: The evaluation images.
        recalibrate_loader: Training images for ``train.recalibrate_bn`` (never ``loader``'s images);
            None: no "recalibrated" stage.
        recalibrate_images: How many of its images to forward (fewer if it has fewer).
        prepare: Applied to each stage's network before it is evaluated (e.g. fitting a probe head on
            its features); None: evaluated as it is.

    Returns:
        {"accuracy", "correct", "n", "loss", "recalibrated_accuracy", "recalibrated_correct",
        "recalibrated_loss", "recalibrate_images"}; the four recalibrated values are None without a
        ``recalibrate_loader``.
    """
    prepare = prepare or (lambda module: module)
    as_is = train.evaluate(prepare(net), loader)
    record = {"accuracy": as_is["accuracy"], "correct": as_is["correct"], "n": as_is["n"],
              "loss": as_is["loss"], "recalibrated_accuracy": None, "recalibrated_correct": None,
              "recalibrated_loss": None, "recalibrate_images": None}
    if recalibrate_loader is not None:
        fixed = train.recalibrate_bn(net, recalibrate_loader, recalibrate_images, progress=False)
        after = train.evaluate(prepare(fixed), loader)
        record.update(recalibrated_accuracy=after["accuracy"], recalibrated_correct=after["correct"],
                      recalibrated_loss=after["loss"],
                      recalibrate_images=_loader_images(recalibrate_loader, recalibrate_images))
    return record


def prune_and_measure(model: nn.Module, scores: dict[str, Tensor], ratio: float, *,  # noqa: PLR0913 — a widget's knobs, keyword-only, passed through
                      example_input: Tensor, loader: DataLoader,
                      recalibrate_loader: DataLoader | None = None, recalibrate_images: int = 1000,
                      groups: Sequence[Sequence[str]] = (), layers: Sequence[str] | None = None,
                      macs_exclude: Sequence[str] = ()) -> dict:
    """Prune a copy of ``model`` uniformly at ``ratio`` by ``scores``; measure it as pruned and recalibrated.

    Args:
        model: Unpruned model (untouched).
        scores: {conv name: (n,)} precomputed scores.
        ratio: Fraction of filters removed in every layer/group, in [0, 1).
        example_input: (1, C, H, W) (or (1, T) for the audio models) for tracing and MAC counting.
        loader: Small evaluation split.
        recalibrate_loader: A few hundred training images for BatchNorm recalibration
            (``train.recalibrate_bn``); None: no "recalibrated" stage.
        recalibrate_images: How many of them to forward.
        groups: Coupled conv groups (``surgery.coupled_groups``).
        layers: Prune only these scored layers (None: all of them; empty: none).
        macs_exclude: Submodules left out of the MAC count (``metrics.count_macs``).

    Returns:
        {"ratio", "layers", "macs", "params", "widths", "plan", "seconds"} and the stages of
        ``measure_stages`` ("accuracy", "correct", "n", "loss", "recalibrated_accuracy", ...).

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
    stages = measure_stages(pruned, loader, recalibrate_loader=recalibrate_loader,
                            recalibrate_images=recalibrate_images)
    modules = dict(pruned.named_modules())
    return {"ratio": ratio, "layers": layers, **stages,
            "macs": metrics.count_macs(pruned, example_input, exclude=macs_exclude),
            "params": metrics.count_params(pruned),
            "widths": {name: modules[name].out_channels for name in scores},
            "plan": plan, "seconds": time.perf_counter() - start}


def budget_and_measure(model: nn.Module, scores: dict[str, Tensor], budget: float, *, example_input: Tensor,  # noqa: PLR0913 — a widget's knobs, keyword-only, passed through
                       loader: DataLoader, recalibrate_loader: DataLoader | None = None,
                       recalibrate_images: int = 1000, groups: Sequence[Sequence[str]] = (),
                       plan_fn: Callable[..., dict] = selection.plan_uniform, step: float = 0.01) -> dict:
    """Prune ``model`` by ``scores`` to about ``budget`` of its MACs and measure it.

    The ratio comes from ``experiments.match_macs``; measure
    it as pruned and recalibrated (``measure_stages``; recalibration arguments as ``prune_and_measure``).

    Returns:
        {"budget", "ratio", "macs", "macs_fraction", "params", "seconds"} and the stages of
        ``measure_stages``.
    """
    start = time.perf_counter()
    base = metrics.count_macs(model, example_input)
    ratio, pruned = match_macs(model, scores, budget * base, example_input, groups=groups,
                               step=step, plan_fn=plan_fn)
    stages = measure_stages(pruned, loader, recalibrate_loader=recalibrate_loader,
                            recalibrate_images=recalibrate_images)
    macs = metrics.count_macs(pruned, example_input)
    return {"budget": budget, "ratio": ratio, **stages, "macs": macs, "macs_fraction": macs / base,
            "params": metrics.count_params(pruned), "seconds": time.perf_counter() - start}


def truncate_and_measure(model: nn.Module, block: str, *, fit_loader: DataLoader, loader: DataLoader,
                         example_input: Tensor, recalibrate_loader: DataLoader | None = None,
                         recalibrate_images: int = 1000) -> dict:
    """Cut ``model`` after ``block``, fit the new head and measure it.

    The cut is ``depth.truncate``; the new head is fitted by ridge regression
    on ``fit_loader`` (``depth.fit_head``), and measure it on ``loader``.

    With a ``recalibrate_loader`` the cut network is also recalibrated (``train.recalibrate_bn``)
    *before* its head is fitted, so that the head reads the recalibrated features. The blocks kept are
    untouched by the cut, so their statistics still match and the two stages should differ only by
    the noise of re-estimating them from a few hundred images.

    Returns:
        {"block", "macs", "params", "blocks_kept", "seconds"} and the stages of ``measure_stages``.
    """
    start = time.perf_counter()
    net = depth.truncate(model, block)
    stages = measure_stages(net, loader, recalibrate_loader=recalibrate_loader,
                            recalibrate_images=recalibrate_images,
                            prepare=lambda cut: depth.fit_head(cut, fit_loader))
    return {"block": block, **stages, "macs": metrics.count_macs(net, example_input),
            "params": metrics.count_params(net), "blocks_kept": len(net.trunk),
            "seconds": time.perf_counter() - start}


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


def sensitivity_scan(model: nn.Module, scores: Scores, ratios: Sequence[float], setup: SweepSetup, *,
                     layers: Sequence[str] | None = None, label: str = "") -> list[dict]:
    """Prune ONE layer (or one coupled group, all its members together) at a time over a ratio grid.

    The per-layer sensitivity analysis of Li et al. (ICLR 2017, "Pruning Filters for Efficient
    ConvNets"): each unit (``selection.merge_groups``: a conv, or a coupled group with all its members)
    loses ``floor(ratio · n)`` of its lowest-scoring filters while every other layer stays whole, and
    the network is measured as pruned and after BatchNorm recalibration (``measure_stages`` with
    ``setup.calibration_loader``), on ``setup.test_loader``. No fine-tuning (``setup.finetune`` is
    ignored): the scan asks how much each layer can lose *before* any recovery. A tqdm bar shows
    progress. ``selection.plan_from_sensitivity`` turns the records into per-layer ratios.

    Args:
        model: The unpruned model (untouched).
        scores: {conv name: (n,)}, higher = keep.
        ratios: Fractions of the unit's filters removed, each in [0, 1).
        setup: ``example_input``, ``test_loader`` (the images the drops are measured on: choose them
            apart from the images a later comparison is judged on), ``groups``, the recalibration
            loader and image count, ``macs_exclude``.
        layers: Scan only the units that contain these scored layers (None: every unit).
        label: Stored as "model" in every record.

    Returns:
        One record per unit × ratio: {"model", "layer" (the unit's first member), "members",
        "filters" (n), "removed", "ratio", "accuracy", "correct", "n", "loss",
        "recalibrated_accuracy", "recalibrated_correct", "recalibrated_loss", "recalibrate_images",
        "baseline_accuracy" (the unpruned model, as it is, on the same images), "macs",
        "macs_fraction", "params", "widths" ({member: filters left}), "seconds"}.

    Raises:
        KeyError: a layer in ``layers`` without scores. ValueError: a ratio outside [0, 1).
    """
    ratios = [float(r) for r in ratios]
    if any(not 0 <= r < 1 for r in ratios):
        raise ValueError(f"ratios are fractions of filters removed, in [0, 1), got {ratios}")
    units = selection.merge_groups(scores, setup.groups)
    if layers is not None:
        unknown = [name for name in layers if name not in scores]
        if unknown:
            raise KeyError(f"no scores for {unknown}; scored layers: {list(scores)}")
        units = [unit for unit in units if any(name in unit for name in layers)]
    base_macs = metrics.count_macs(model, setup.example_input, exclude=setup.macs_exclude)
    baseline = train.evaluate(model, setup.test_loader)["accuracy"]
    rows = []
    for unit, ratio in tqdm(list(itertools.product(units, ratios)), desc=f"sensitivity {label}".strip(),
                            leave=False):
        start = time.perf_counter()
        chosen = {name: scores[name] for name in unit if name in scores}
        plan = selection.plan_uniform(chosen, ratio, groups=[unit] if len(unit) > 1 else ())
        pruned = surgery.apply_plan(model, plan, setup.example_input)
        stages = measure_stages(pruned, setup.test_loader, recalibrate_loader=setup.calibration_loader,
                                recalibrate_images=setup.recalibrate_images)
        macs = metrics.count_macs(pruned, setup.example_input, exclude=setup.macs_exclude)
        modules = dict(pruned.named_modules())
        n = len(next(iter(chosen.values())))
        rows.append({"model": label, "layer": unit[0], "members": list(unit), "filters": n,
                     "removed": len(plan["removed"][unit[0]]), "ratio": ratio, **stages,
                     "baseline_accuracy": baseline, "macs": macs, "macs_fraction": macs / base_macs,
                     "params": metrics.count_params(pruned),
                     "widths": {name: modules[name].out_channels for name in unit},
                     "seconds": round(time.perf_counter() - start, 2)})
    return rows
