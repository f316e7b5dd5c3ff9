"""Tests for pruning_lib/stats.py: t-intervals over seeds, the paired bootstrap, verdicts, sentences."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pruning_lib import stats

T_975_2 = 4.302652729911275            # Student t, 97.5% quantile, 2 degrees of freedom


def test_interval_hand_computed_and_one_seed():
    r = stats.interval([1.0, 2.0, 3.0])
    assert (r["n"], r["mean"], r["sd"], r["note"]) == (3, 2.0, 1.0, "")
    assert r["low"] == pytest.approx(2 - T_975_2 / math.sqrt(3), abs=1e-9)
    assert r["high"] == pytest.approx(2 + T_975_2 / math.sqrt(3), abs=1e-9)
    one = stats.interval([0.7])
    assert one["mean"] == 0.7 and math.isnan(one["low"]) and math.isnan(one["sd"])
    assert "no interval" in one["note"]
    same = stats.interval([0.5, 0.5])
    assert same["low"] == same["high"] == 0.5


@pytest.mark.parametrize(("values", "level", "match"),
                         [([], 0.95, "at least one"), ([1.0, 2.0], 1.0, "level")])
def test_interval_bad_inputs(values, level, match):
    with pytest.raises(ValueError, match=match):
        stats.interval(values, level)


@pytest.mark.parametrize(("low", "high", "expected"), [
    (0.01, 0.02, "better"), (-0.02, -0.01, "worse"), (-0.01, 0.01, "tie"), (0.0, 0.0, "tie"),
    (0.0, 0.1, "tie")])
def test_verdict_hand_cases(low, high, expected):
    assert stats.verdict(low, high) == expected


def test_identical_criteria_tie_with_a_zero_interval():
    a = torch.rand(3, 200, generator=torch.Generator().manual_seed(0)) > 0.4
    r = stats.paired_bootstrap(a, a.clone())
    assert (r["difference"], r["low"], r["high"], r["verdict"]) == (0.0, 0.0, 0.0, "tie")
    assert (r["seeds"], r["images"], r["test"]) == (3, 200, stats.TEST_NAME)


def test_clearly_better_is_better_and_a_constant_difference_has_no_spread():
    g = torch.Generator().manual_seed(1)
    b = torch.rand(3, 400, generator=g) > 0.5                   # about half right
    r = stats.paired_bootstrap(torch.ones(3, 400, dtype=torch.bool), b)
    assert r["verdict"] == "better" and r["difference"] == pytest.approx(1 - b.double().mean().item())
    assert 0 < r["low"] <= r["difference"] <= r["high"]
    const = stats.paired_bootstrap(torch.ones(1, 50, dtype=torch.bool), torch.zeros(1, 50, dtype=torch.bool))
    assert (const["low"], const["high"], const["verdict"]) == (1.0, 1.0, "better")
    assert "test images only" in const["note"]


def test_one_flipped_image_out_of_many_is_a_tie():
    a = torch.zeros(2, 500, dtype=torch.bool)
    b = a.clone()
    b[0, 0] = True                                                # one image, one seed
    assert stats.paired_bootstrap(a, b)["verdict"] == "tie"


@given(seed=st.integers(0, 1000), n_seeds=st.integers(1, 4), n_images=st.integers(1, 60))
def test_swapping_the_criteria_mirrors_the_result(seed, n_seeds, n_images):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(n_seeds, n_images, generator=g) > 0.5
    b = torch.rand(n_seeds, n_images, generator=g) > 0.3
    ab, ba = stats.paired_bootstrap(a, b, resamples=300), stats.paired_bootstrap(b, a, resamples=300)
    assert ab["difference"] == pytest.approx(-ba["difference"], abs=1e-12)
    assert ab["low"] == pytest.approx(-ba["high"], abs=1e-9)
    assert ab["high"] == pytest.approx(-ba["low"], abs=1e-9)
    mirror = {"better": "worse", "worse": "better", "tie": "tie"}
    assert ab["verdict"] == mirror[ba["verdict"]]
    assert -1.0 <= ab["low"] <= ab["high"] <= 1.0


def test_more_seeds_that_disagree_widen_the_interval():
    a = torch.zeros(4, 100, dtype=torch.bool)
    b = torch.zeros(4, 100, dtype=torch.bool)
    a[:2] = True                                                  # seeds 0, 1: A all right; seeds 2, 3: none
    r = stats.paired_bootstrap(a, b)
    assert r["difference"] == pytest.approx(0.5)
    assert r["low"] < 0.25 and r["high"] > 0.75                    # seed resampling spreads it


def test_paired_bootstrap_bad_inputs():
    with pytest.raises(ValueError, match="one shape"):
        stats.paired_bootstrap(torch.ones(2, 3), torch.ones(2, 4))
    with pytest.raises(ValueError, match="one shape"):
        stats.paired_bootstrap(torch.ones(3), torch.ones(3))
    with pytest.raises(ValueError, match="resamples"):
        stats.paired_bootstrap(torch.ones(1, 3), torch.ones(1, 3), resamples=0)


def record(criterion: str, seed: int, hits: list[bool], stage: str = "fine-tuned") -> dict:
    return {"criterion": criterion, "seed": seed, "stage": stage, "hits": torch.tensor(hits)}


def test_compare_to_pairs_seeds_when_they_match_and_uses_all_draws_otherwise():
    rows = [record("random", s, [s % 2 == 0] * 40) for s in range(5)]
    rows += [record("l1", s, [True] * 40) for s in range(3)]
    rows += [record("l1", 0, [False] * 40, stage="pruned"), record("random", 0, [False] * 40, stage="pruned")]
    out = stats.compare_to(rows, "random", by=("stage",))
    keys = ("stage", "criterion", "seeds", "reference_seeds", "paired_seeds")
    assert [tuple(r[k] for k in keys) for r in out] == [
        ("fine-tuned", "l1", 3, 5, False), ("pruned", "l1", 1, 1, True)]
    # random is right on draws 0, 2 and 4 of 5: l1 − random = 1 − 3/5
    assert out[0]["difference"] == pytest.approx(0.4) and out[0]["reference"] == "random"
    assert out[0]["low"] < 0.4 < out[0]["high"]                    # the draws disagree: a wide interval
    assert out[1]["verdict"] == "tie" and out[1]["difference"] == 0.0


def test_unpaired_seeds_one_criterion_against_several_draws():
    a = torch.ones(1, 300, dtype=torch.bool)
    b = torch.zeros(5, 300, dtype=torch.bool)
    b[:, :150] = True                                              # every draw half right
    r = stats.paired_bootstrap(a, b, pair_seeds=False)
    assert r["difference"] == pytest.approx(0.5) and r["verdict"] == "better" and r["note"] == ""
    with pytest.raises(ValueError, match="one shape"):
        stats.paired_bootstrap(a, b)                               # pairing needs equal seeds


def test_compare_to_bad_inputs():
    with pytest.raises(ValueError, match="no 'random' records"):
        stats.compare_to([record("l1", 0, [True])], "random")
    with pytest.raises(ValueError, match="same images"):
        stats.compare_to([record("l1", 0, [True]), record("random", 1, [True, False])], "random")
    with pytest.raises(ValueError, match="one record per seed"):
        stats.compare_to([record("l1", 0, [True]), record("l1", 0, [True]), record("random", 0, [True])],
                         "random")
    with pytest.raises(ValueError, match="different lengths"):
        stats.compare_to([record("l1", 0, [True]), record("l1", 1, [True, False]),
                          record("random", 0, [True])], "random")


def test_conclusion_follows_the_verdicts():
    def c(name: str, v: str) -> dict:
        return {"criterion": name, "reference": "random", "verdict": v}

    assert stats.conclusion([c("l1", "tie"), c("fpgm", "worse")], context="25% of MACs") == (
        "25% of MACs: No criterion beats random: tie: l1; worse: fpgm "
        "(paired bootstrap over seeds and test images, 95% interval).")
    assert stats.conclusion([c("l1", "better"), c("hrank", "better"), c("fpgm", "tie")]).startswith(
        "l1, hrank beat random: better: l1, hrank; tie: fpgm")
    with pytest.raises(ValueError, match="one reference"):
        stats.conclusion([])
