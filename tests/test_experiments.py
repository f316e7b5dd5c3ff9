from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from pruning_lib import criteria, experiments, metrics, models, selection, surgery, train

pytestmark = pytest.mark.usefixtures("single_thread")
EXAMPLE = torch.zeros(1, 1, 28, 28)


@given(n=st.integers(2, 30), seed=st.integers(0, 10_000))
def test_spearman_matches_scipy_on_untied_scores(n, seed):
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randperm(n, generator=g).double(), torch.randperm(n, generator=g).double()
    assert experiments.spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)


def test_spearman_of_reversed_order_is_minus_one_and_bad_input_raises():
    a = torch.arange(5.0)
    assert experiments.spearman(a, -a) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="equal length"):
        experiments.spearman(a, a[:3])


@pytest.mark.parametrize(("a", "b", "expected"), [
    ([1, 2], [2, 3], 1 / 3), ([], [], 1.0), ([1], [2], 0.0), ([0, 1, 2], [2, 1, 0], 1.0)])
def test_jaccard_hand_cases(a, b, expected):
    assert experiments.jaccard(a, b) == pytest.approx(expected)


def test_criterion_agreement_is_symmetric_with_unit_diagonal():
    model = models.build("vgg16_slim")
    fns = [("l1", criteria.l1_norm), ("l2", criteria.l2_norm),
           ("neg_l1", lambda w: -criteria.l1_norm(w))]
    scores = {name: criteria.score_model(model, fn) for name, fn in fns}
    rho, overlap = experiments.criterion_agreement(scores, 0.5)
    torch.testing.assert_close(rho, rho.T)
    torch.testing.assert_close(torch.diag(overlap), torch.ones(3))
    assert rho[0, 2] == pytest.approx(-1.0)            # reversed ranking
    assert overlap[0, 2] == pytest.approx(0.0)         # ... removes the complementary filters
    assert rho[0, 1] > 0.5                             # l1 and l2 broadly agree on random weights


def test_ratio_sweep_records_every_criterion_ratio_and_stage():
    model = models.build("vgg16_slim").eval()
    g = torch.Generator().manual_seed(0)
    ds = TensorDataset(torch.randn(48, 1, 28, 28, generator=g), torch.randint(0, 10, (48,), generator=g))
    setup = experiments.SweepSetup(EXAMPLE, DataLoader(ds, batch_size=16),
                                   train_loader=DataLoader(ds, batch_size=16),
                                   finetune=train.TrainConfig(epochs=1, lr=0.01))
    scores = {"l1": criteria.score_model(model, criteria.l1_norm),
              "random": criteria.score_model(model, criteria.random_scores)}
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = experiments.ratio_sweep(model, scores, [0.25, 0.5], setup, label="vgg")
    assert [(r["criterion"], r["ratio"], r["stage"]) for r in rows] == [
        (c, ratio, stage) for c in ("l1", "random") for ratio in (0.25, 0.5)
        for stage in ("pruned", "recalibrated", "fine-tuned")]
    assert all(r["model"] == "vgg" and r["n"] == 48 and r["seed"] == 0 for r in rows)
    assert all(len(r["hits"]) == 48 and int(r["hits"].sum()) == r["correct"] for r in rows)
    plan = selection.plan_uniform(scores["l1"], 0.5)
    direct = train.evaluate(surgery.apply_plan(model, plan, EXAMPLE), setup.test_loader)
    assert rows[3]["accuracy"] == direct["accuracy"]   # same plan, same number
    assert rows[3]["loss"] == pytest.approx(direct["loss"], rel=1e-5)
    assert rows[0]["macs"] > rows[3]["macs"]
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k])


def test_time_call_counts_calls_and_rejects_bad_repeats():
    calls = []
    seconds = experiments.time_call(lambda: calls.append(1), repeats=3, warmup=2)
    assert len(calls) == 5 and seconds >= 0.0
    with pytest.raises(ValueError, match="repeats"):
        experiments.time_call(lambda: None, repeats=0)


def test_evaluate_plan_without_fine_tuning_gives_one_pruned_record():
    model = models.build("vgg16_slim").eval()
    g = torch.Generator().manual_seed(0)
    ds = TensorDataset(torch.randn(32, 1, 28, 28, generator=g), torch.randint(0, 10, (32,), generator=g))
    setup = experiments.SweepSetup(EXAMPLE, DataLoader(ds, batch_size=16))
    plan = selection.plan_uniform(criteria.score_model(model, criteria.l1_norm), 0.5)
    (record,) = experiments.evaluate_plan(model, plan, setup)
    assert record["stage"] == "pruned" and record["n"] == 32
    assert record["params"] == sum(p.numel() for p in surgery.apply_plan(model, plan, EXAMPLE).parameters())


# --- plan_table -------------------------------------------------------------------------------------------

TINY_X = torch.zeros(1, 1, 8, 8)
# conv1 1→4 3×3 on 8×8: 64·4·9 = 2,304 MACs; conv2 4→6: 64·6·4·9 = 13,824; fc 6→3: 18
TINY_BASE = 2_304 + 13_824 + 18


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict(
        conv1=models.ConvBNReLU(1, 4), conv2=models.ConvBNReLU(4, 6),
        pool=nn.AdaptiveAvgPool2d(1), flat=nn.Flatten(), fc=nn.Linear(6, 3))).eval()


def tiny_plans(model: nn.Module) -> dict[str, dict[str, dict]]:
    keep = {"conv1.conv": 2, "conv2.conv": 3}
    plans = {}
    for criterion, fn in (("l1", criteria.l1_norm), ("neg_l1", lambda w: -criteria.l1_norm(w))):
        full = selection.plan_keep_counts(criteria.score_model(model, fn), keep)
        plans[criterion] = {"A": selection.restrict_plan(full, ["conv1.conv"]),
                            "B": selection.restrict_plan(full, ["conv2.conv"]), "A+B": full}
    return plans


def tiny_loader(n: int = 24) -> DataLoader:
    g = torch.Generator().manual_seed(3)
    ds = TensorDataset(torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g))
    return DataLoader(ds, batch_size=8)


@pytest.mark.parametrize("finetune", [False, True])
def test_plan_table_rows_reductions_and_untouched_model(finetune):
    model = tiny_model()
    plans = tiny_plans(model)
    loader = tiny_loader()
    setup = experiments.SweepSetup(TINY_X, loader, train_loader=loader if finetune else None,
                                   finetune=train.TrainConfig(epochs=1, lr=0.01) if finetune else None)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = experiments.plan_table(model, plans, setup, label="tiny")

    stages = ("pruned", "recalibrated", "fine-tuned") if finetune else ("pruned",)
    assert len(rows) == 2 * 3 * len(stages)
    assert [(r["criterion"], r["config"], r["stage"]) for r in rows] == [
        (c, config, s) for c in ("l1", "neg_l1") for config in ("A", "B", "A+B") for s in stages]
    assert metrics.count_macs(model, TINY_X) == TINY_BASE
    # own layer only: conv1 loses 2 of 4 filters, conv2 3 of 6; with the next layer, conv2 also
    # loses conv1's channels and fc conv2's: A+B leaves conv2 at 64·3·2·9 = 3,456 and fc at 9
    own = {"A": 2_304 / 2, "B": 13_824 / 2, "A+B": 2_304 / 2 + 13_824 / 2}
    real = {"A": 2_304 / 2 + 13_824 / 2, "B": 13_824 / 2 + 9, "A+B": 2_304 / 2 + (13_824 - 3_456) + 9}
    for r in rows:
        plan = plans[r["criterion"]][r["config"]]
        pruned = surgery.apply_plan(model, plan, TINY_X)
        assert r["model"] == "tiny" and r["n"] == 24
        assert r["macs"] == metrics.count_macs(pruned, TINY_X) == TINY_BASE - real[r["config"]]
        assert r["params"] == metrics.count_params(pruned)
        assert r["own_reduction"] == pytest.approx(own[r["config"]] / TINY_BASE)
        assert r["with_next_reduction"] == pytest.approx((TINY_BASE - r["macs"]) / TINY_BASE)
        assert r["own_reduction"] <= r["with_next_reduction"]
    first = rows[0]
    direct = train.evaluate(surgery.apply_plan(model, plans["l1"]["A"], TINY_X), loader)
    assert (first["accuracy"], first["correct"]) == (direct["accuracy"], direct["correct"])
    assert not model.training
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k], atol=0, rtol=0)


def test_plan_table_counts_macs_without_the_excluded_submodules():
    model = tiny_model()
    setup = experiments.SweepSetup(TINY_X, tiny_loader(8), macs_exclude=("fc",))
    rows = experiments.plan_table(model, {"l1": tiny_plans(model)["l1"]}, setup)
    base = TINY_BASE - 18
    by_config = {r["config"]: r for r in rows}
    assert by_config["B"]["macs"] == base - 13_824 // 2                # fc's 9 MACs are not counted
    assert by_config["B"]["with_next_reduction"] == pytest.approx(13_824 / 2 / base)
    assert by_config["A"]["own_reduction"] == pytest.approx(2_304 / 2 / base)
    assert all(r["model"] == "" for r in rows)


def test_plan_table_plan_with_an_unknown_layer_is_a_key_error():
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    setup = experiments.SweepSetup(TINY_X, tiny_loader(8))
    plans = {"l1": {"bad": {"removed": {"conv1": [0]}, "coupled": []}}}
    with pytest.raises(KeyError, match="not convs of the model"):
        experiments.plan_table(model, plans, setup)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k], atol=0, rtol=0)


# --- match_macs: the uniform ratio whose MACs come closest to a target ------------------------------------

def test_match_macs_agrees_with_an_exhaustive_scan_and_leaves_the_model_alone():
    torch.manual_seed(0)
    net = models.build("vgg16_slim").eval()
    x = torch.zeros(1, 1, 28, 28)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    scores = criteria.score_model(net, criteria.l1_norm)
    full = metrics.count_macs(net, x)
    scan = {r / 10: metrics.count_macs(surgery.apply_plan(net, selection.plan_uniform(scores, r / 10), x), x)
            for r in range(10)}
    for target in (full, 0.61 * full, 0.3 * full, 0.05 * full, 0.0):
        ratio, pruned = experiments.match_macs(net, scores, target, x, step=0.1, max_ratio=0.9)
        best = min(scan, key=lambda r: (abs(scan[r] - target), r))
        assert ratio == pytest.approx(best) and metrics.count_macs(pruned, x) == scan[best]
    for key, value in net.state_dict().items():
        torch.testing.assert_close(value, before[key], atol=0, rtol=0)


def test_budget_sweep_prunes_each_criterion_to_the_budget_and_records_both_stages():
    torch.manual_seed(0)
    net = models.build("vgg16_slim").eval()
    x = torch.zeros(1, 1, 28, 28)
    g = torch.Generator().manual_seed(1)
    loader = DataLoader(TensorDataset(torch.randn(16, 1, 28, 28, generator=g), torch.arange(16) % 10),
                        batch_size=8)
    seeded = torch.Generator().manual_seed(0)
    scores = {"l1": criteria.score_model(net, criteria.l1_norm),
              "random": criteria.score_model(net, lambda w: criteria.random_scores(w, seeded))}
    setup = experiments.SweepSetup(x, loader, train_loader=loader,
                                   finetune=train.TrainConfig(epochs=1, lr=0.01))
    rows = experiments.budget_sweep(net, scores, [0.5, 0.25], setup, label="vgg", step=0.05)
    assert [(r["criterion"], r["budget"], r["stage"]) for r in rows] == [
        (c, b, s) for c in ("l1", "random") for b in (0.5, 0.25)
        for s in ("pruned", "recalibrated", "fine-tuned")]
    base = metrics.count_macs(net, x)
    for r in rows:
        ratio, pruned = experiments.match_macs(net, scores[r["criterion"]], r["budget"] * base, x, step=0.05)
        assert r["ratio"] == ratio and r["macs"] == metrics.count_macs(pruned, x)
        assert r["macs_fraction"] == pytest.approx(r["macs"] / base) and r["n"] == 16
    assert all(abs(r["macs_fraction"] - r["budget"]) < 0.1 for r in rows)
    with pytest.raises(ValueError, match="fractions of the unpruned MACs"):
        experiments.budget_sweep(net, scores, [1.5], setup)


def test_allocation_sweep_runs_one_budget_sweep_per_allocation_rule():
    torch.manual_seed(0)
    net = models.build("vgg16_slim").eval()
    x = torch.zeros(1, 1, 28, 28)
    g = torch.Generator().manual_seed(1)
    loader = DataLoader(TensorDataset(torch.randn(8, 1, 28, 28, generator=g), torch.arange(8) % 10),
                        batch_size=8)
    scores = {"l1": criteria.score_model(net, criteria.l1_norm)}
    setup = experiments.SweepSetup(x, loader, recalibrate_images=0)
    rows = experiments.allocation_sweep(net, scores, [0.5], setup, label="vgg")
    assert [(r["allocation"], r["stage"]) for r in rows] == [("uniform", "pruned"), ("global", "pruned")]
    for r in rows:
        plan_fn = selection.plan_uniform if r["allocation"] == "uniform" else selection.plan_global
        ratio, pruned = experiments.match_macs(net, scores["l1"], 0.5 * metrics.count_macs(net, x), x,
                                               plan_fn=plan_fn)
        assert r["ratio"] == ratio and r["macs"] == metrics.count_macs(pruned, x)
    only = experiments.allocation_sweep(net, scores, [0.5], setup,
                                        allocations={"mine": selection.plan_uniform})
    assert [r["allocation"] for r in only] == ["mine"]
    named = experiments.allocation_sweep(net, scores, [0.5], setup, allocations=["global"])
    assert [(r["allocation"], r["ratio"]) for r in named] == [("global", rows[1]["ratio"])]
    with pytest.raises(ValueError, match="allocations are names in"):
        experiments.allocation_sweep(net, scores, [0.5], setup, allocations=["greedy"])
    keys = ("criterion", "budget", "ratio", "macs", "params", "accuracy", "loss")
    assert [only[0][k] for k in keys] == [rows[0][k] for k in keys]


def test_match_macs_with_global_plans_scans_the_criterion_dependent_widths():
    torch.manual_seed(0)
    net = models.build("vgg16_slim").eval()
    x = torch.zeros(1, 1, 28, 28)
    scores = criteria.score_model(net, criteria.l1_norm)
    scan = {r / 10: metrics.count_macs(surgery.apply_plan(net, selection.plan_global(scores, r / 10), x), x)
            for r in range(10)}
    assert list(scan.values()) == sorted(scan.values(), reverse=True)       # monotone in the ratio
    target = 0.4 * metrics.count_macs(net, x)
    ratio, pruned = experiments.match_macs(net, scores, target, x, step=0.1, max_ratio=0.9,
                                           plan_fn=selection.plan_global)
    best = min(scan, key=lambda r: (abs(scan[r] - target), r))
    assert ratio == pytest.approx(best) and metrics.count_macs(pruned, x) == scan[best]
    uniform_ratio, _ = experiments.match_macs(net, scores, target, x, step=0.1, max_ratio=0.9)
    assert uniform_ratio != ratio               # the two allocations need different ratios here


# --- three stages, seeds, per-image correctness, the from-scratch baseline ---------------------------------

def tiny_setup(**kwargs) -> experiments.SweepSetup:
    loader = tiny_loader(24)
    options = {"train_loader": loader, "finetune": train.TrainConfig(epochs=1, lr=0.01, seed=7)} | kwargs
    return experiments.SweepSetup(TINY_X, loader, **options)


def test_evaluate_images_matches_evaluate_and_restores_the_mode():
    model = tiny_model().train()
    r = experiments.evaluate_images(model, tiny_loader(24))
    direct = train.evaluate(model, tiny_loader(24))
    assert r["hits"].dtype == torch.bool and r["hits"].shape == (24,)
    assert (r["correct"], r["n"]) == (direct["correct"], direct["n"]) == (int(r["hits"].sum()), 24)
    assert r["loss"] == pytest.approx(direct["loss"], rel=1e-5) and model.training
    with pytest.raises(ValueError, match="empty loader"):
        experiments.evaluate_images(model, [])


def test_evaluate_pruned_recalibrates_then_fine_tunes_the_recalibrated_copy(monkeypatch):
    model = tiny_model()
    plan = tiny_plans(model)["l1"]["A+B"]
    pruned = surgery.apply_plan(model, plan, TINY_X)
    before = {k: v.clone() for k, v in pruned.state_dict().items()}
    setup = tiny_setup(recalibrate_images=16)
    started_from = []
    real_fine_tune = train.fine_tune
    monkeypatch.setattr(train, "fine_tune",
                        lambda m, *a, **k: (started_from.append(m), real_fine_tune(m, *a, **k))[1])
    rows = experiments.evaluate_pruned(pruned, setup, seeds=[3, 5])
    assert [(r["seed"], r["stage"]) for r in rows] == [
        (s, stage) for s in (3, 5) for stage in ("pruned", "recalibrated", "fine-tuned")]
    recalibrated = train.recalibrate_bn(pruned, setup.train_loader, 16)
    for model_used in started_from:                      # the fine-tune began at the recalibrated model
        for k, v in recalibrated.state_dict().items():
            torch.testing.assert_close(model_used.state_dict()[k], v, atol=1e-5, rtol=1e-5)
    assert rows[1]["correct"] == train.evaluate(recalibrated, setup.test_loader)["correct"]
    assert torch.equal(rows[0]["hits"], rows[3]["hits"]) and rows[1]["accuracy"] == rows[4]["accuracy"]
    for k, v in pruned.state_dict().items():
        torch.testing.assert_close(v, before[k], atol=0, rtol=0)


def test_no_calibration_images_means_two_stages_and_seeds_must_be_distinct():
    pruned = surgery.apply_plan(tiny_model(), tiny_plans(tiny_model())["l1"]["A"], TINY_X)
    rows = experiments.evaluate_pruned(pruned, tiny_setup(recalibrate_images=0))
    assert [(r["seed"], r["stage"]) for r in rows] == [(7, "pruned"), (7, "fine-tuned")]   # the recipe's seed
    no_ft = experiments.evaluate_pruned(pruned, experiments.SweepSetup(TINY_X, tiny_loader(8)), seeds=[1, 2])
    assert [(r["seed"], r["stage"]) for r in no_ft] == [(1, "pruned"), (2, "pruned")]     # no training data
    with pytest.raises(ValueError, match="distinct"):
        experiments.evaluate_pruned(pruned, tiny_setup(), seeds=[1, 1])
    with pytest.raises(ValueError, match="distinct"):
        experiments.evaluate_pruned(pruned, tiny_setup(), seeds=[])


def test_a_scores_factory_draws_once_per_seed_and_fixed_scores_prune_once():
    model = tiny_model()
    factory = experiments.random_scores_factory(model)
    for name, scores in factory(4).items():
        torch.testing.assert_close(scores, factory(4)[name], atol=0, rtol=0)     # draw 4 is reproducible
    assert any(not torch.equal(factory(4)[n], factory(5)[n]) for n in factory(4))
    setup = tiny_setup(finetune=None, train_loader=None)
    scores = {"random": factory, "l1": criteria.score_model(model, criteria.l1_norm)}
    rows = experiments.ratio_sweep(model, scores, [0.5], setup, seeds=[4, 5])
    assert [(r["criterion"], r["seed"], r["stage"]) for r in rows] == [
        ("random", 4, "pruned"), ("random", 5, "pruned"), ("l1", 4, "pruned"), ("l1", 5, "pruned")]
    draw5 = surgery.apply_plan(model, selection.plan_uniform(factory(5), 0.5), TINY_X)
    direct = train.evaluate(draw5, tiny_loader(24))
    assert rows[1]["correct"] == direct["correct"]


def test_reinitialise_is_seeded_and_leaves_the_model_alone():
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    a, b, c = (experiments.reinitialise(model, s) for s in (3, 3, 4))   # tiny_model used seed 0
    assert torch.equal(torch.get_rng_state(), rng)
    torch.testing.assert_close(a.conv1.conv.weight, b.conv1.conv.weight, atol=0, rtol=0)
    assert not torch.allclose(a.conv1.conv.weight, c.conv1.conv.weight)
    assert not torch.allclose(a.conv1.conv.weight, model.conv1.conv.weight)
    assert a.fc.weight.shape == model.fc.weight.shape
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k], atol=0, rtol=0)


def test_scratch_baseline_trains_the_pruned_architecture_with_the_fine_tune_steps():
    model = tiny_model()
    pruned = surgery.apply_plan(model, tiny_plans(model)["l1"]["A+B"], TINY_X)
    setup = tiny_setup()
    rows = experiments.scratch_baseline(pruned, setup, seeds=[0, 1])
    assert [(r["seed"], r["stage"]) for r in rows] == [(0, "from scratch"), (1, "from scratch")]
    assert all(r["steps"] == len(setup.train_loader) == 3 and r["n"] == 24 for r in rows)   # 1 epoch
    assert rows[0]["params"] == metrics.count_params(pruned)
    assert rows[0]["macs"] == metrics.count_macs(pruned, TINY_X)
    assert experiments.scratch_baseline(pruned, setup, seeds=[0], epochs=2)[0]["steps"] == 6
    with pytest.raises(ValueError, match="train_loader and setup.finetune"):
        experiments.scratch_baseline(pruned, tiny_setup(finetune=None))
