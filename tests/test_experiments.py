from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats
from torch.utils.data import DataLoader, TensorDataset

from pruning_lib import criteria, experiments, models, selection, surgery, train

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
        for stage in ("pruned", "fine-tuned")]
    assert all(r["model"] == "vgg" and r["n"] == 48 for r in rows)
    plan = selection.plan_uniform(scores["l1"], 0.5)
    direct = train.evaluate(surgery.apply_plan(model, plan, EXAMPLE), setup.test_loader)
    assert rows[2]["accuracy"] == direct["accuracy"]   # same plan, same number
    assert rows[0]["macs"] > rows[2]["macs"]
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
