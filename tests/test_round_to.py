"""Hardware-aware widths: ``round_to=k`` in ``selection.plan_uniform`` and ``plan_global``.

Properties (Hypothesis, distinct scores so that no test depends on a tie): every unit keeps a
multiple of k filters, at least k (a unit with fewer than k filters stays whole), coupled members
lose the same filters, and the kept filters are the unit's top-scored ones.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pruning_lib import selection

PLANNERS = {"uniform": selection.plan_uniform, "global": selection.plan_global}


@st.composite
def scored_layers(draw: st.DrawFn) -> tuple[dict[str, torch.Tensor], list[list[str]]]:
    """2–4 layers of 1–40 filters with distinct scores; layers "l0" and "l1" are coupled when equal."""
    sizes = draw(st.lists(st.integers(1, 40), min_size=2, max_size=4))
    sizes[1] = sizes[0] if draw(st.booleans()) else sizes[1]
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    scores = {f"l{i}": torch.randperm(10 * n, generator=g)[:n].float() + 1.0 for i, n in enumerate(sizes)}
    groups = [["l0", "l1"]] if sizes[0] == sizes[1] else []
    return scores, groups


def kept(plan: dict, scores: dict[str, torch.Tensor]) -> dict[str, set[int]]:
    return {name: set(range(len(s))) - set(plan["removed"].get(name, [])) for name, s in scores.items()}


@pytest.mark.parametrize("planner", PLANNERS)
@given(layers=scored_layers(), ratio=st.floats(0.0, 0.95), k=st.sampled_from([2, 4, 8, 16]))
def test_kept_counts_are_multiples_of_k_and_the_top_scored(planner, layers, ratio, k):
    scores, groups = layers
    plan = PLANNERS[planner](scores, ratio, groups=groups, round_to=k)
    unit_of = selection.merge_groups(scores, groups)
    for unit in unit_of:
        s = selection.unit_scores(scores, unit)
        n = len(s)
        keep = kept(plan, scores)[unit[0]]
        if n < k:
            assert len(keep) == n                                  # too narrow: stays whole
        else:
            assert len(keep) % k == 0 and len(keep) >= k
        top = set(torch.argsort(s, descending=True)[:len(keep)].tolist())
        assert keep == top
        for other in unit[1:]:
            assert plan["removed"][other] == plan["removed"][unit[0]]


@given(layers=scored_layers(), ratio=st.floats(0.0, 0.95), k=st.sampled_from([2, 4, 8]))
def test_rounding_removes_more_unless_fewer_than_k_would_stay(layers, ratio, k):
    scores, groups = layers
    plain = selection.plan_uniform(scores, ratio, groups=groups)
    rounded = selection.plan_uniform(scores, ratio, groups=groups, round_to=k)
    for name, s in scores.items():
        plain_kept = len(s) - len(plain["removed"][name])
        if len(s) >= k and plain_kept >= k:
            assert set(plain["removed"][name]) <= set(rounded["removed"][name])
        elif len(s) >= k:
            assert len(s) - len(rounded["removed"][name]) == k


def test_round_to_one_or_none_changes_nothing():
    scores = {"a": torch.tensor([5.0, 1.0, 4.0, 2.0, 3.0])}
    for planner in PLANNERS.values():
        assert planner(scores, 0.4, round_to=1) == planner(scores, 0.4) == planner(scores, 0.4, round_to=None)


def test_hand_example():
    scores = {"a": torch.arange(1.0, 65.0), "b": torch.arange(1.0, 7.0)}    # 64 and 6 filters
    plan = selection.plan_uniform(scores, 0.3, round_to=8)
    assert plan["removed"]["a"] == list(range(24))                  # 64 − 19 = 45 → 40 kept
    assert plan["removed"]["b"] == []                               # fewer than 8: whole


@pytest.mark.parametrize("bad", [0, -8, 2.5, True, "8"])
def test_bad_round_to_is_a_value_error(bad):
    with pytest.raises(ValueError, match="round_to must be a positive integer"):
        selection.plan_uniform({"a": torch.ones(8)}, 0.5, round_to=bad)
