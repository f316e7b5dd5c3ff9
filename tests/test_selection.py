"""From scores to plans: ``plan_uniform``, ``plan_global``, ``kept_counts``.

Hand cases, a greedy Python-loop reference for ``plan_global``, invariants (one filter always
stays, per-layer normalisation, deterministic ties) and bad inputs."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor

from pruning_lib import selection
from pruning_lib.selection import kept_counts, plan_global, plan_uniform

T = torch.tensor


# --- strategies ------------------------------------------------------------------------------------

@st.composite
def score_dicts(draw: st.DrawFn, max_layers: int = 5, max_filters: int = 12) -> dict[str, Tensor]:
    """{layer: scores} with random sizes; scores are 0 or floats in [2^-10, 10] (ties allowed)."""
    n_layers = draw(st.integers(1, max_layers))
    out = {}
    for i in range(n_layers):
        n = draw(st.integers(1, max_filters))
        values = draw(st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0, 3.0])
                               | st.floats(2.0**-10, 10.0, width=32), min_size=n, max_size=n))
        out[f"layer{i}"] = T(values, dtype=torch.float32)
    return out


ratios = st.floats(0.0, 0.999, allow_nan=False)


def assert_valid_plan(plan: dict, scores: dict[str, Tensor]) -> None:
    assert set(plan) == {"removed", "coupled"}
    assert sorted(plan["removed"]) == sorted(scores)
    for name, idx in plan["removed"].items():
        assert idx == sorted(set(idx)), f"{name}: indices not sorted/unique: {idx}"
        assert all(isinstance(i, int) and 0 <= i < len(scores[name]) for i in idx)
        assert len(idx) <= len(scores[name]) - 1, f"{name} was emptied"


# --- reference implementation of plan_global: a plain greedy loop -----------------------------------

def ref_plan_global(scores: dict[str, Tensor], ratio: float) -> dict[str, list[int]]:
    flat = []                                     # (normalised score, global position, layer, index)
    pos = 0
    for name, s in scores.items():
        values = [float(v) for v in s]
        mean_abs = max(sum(abs(v) for v in values) / len(values), 1e-12)
        for i, v in enumerate(values):
            flat.append((float(T(v) / T(mean_abs)), pos, name, i))
            pos += 1
    flat.sort(key=lambda item: (item[0], item[1]))       # stable: lower position first among ties
    k = math.floor(ratio * len(flat))
    left = {name: len(s) for name, s in scores.items()}
    removed: dict[str, list[int]] = {name: [] for name in scores}
    for _, _, name, i in flat:
        if sum(len(r) for r in removed.values()) == k:
            break
        if left[name] == 1:                       # would empty its layer: skip
            continue
        removed[name].append(i)
        left[name] -= 1
    return {name: sorted(r) for name, r in removed.items()}


# --- plan_uniform ------------------------------------------------------------------------------------

def test_plan_uniform_docstring_case():
    assert plan_uniform({"c": T([3.0, 1.0, 2.0, 0.5])}, 0.5) == {"removed": {"c": [1, 3]}, "coupled": []}


def test_plan_uniform_hand_case_two_layers():
    scores = {"a": T([5.0, 4.0, 3.0, 2.0, 1.0]), "b": T([0.1, 0.9, 0.2])}
    # a: floor(0.4·5) = 2 lowest → [3, 4]; b: floor(0.4·3) = 1 lowest → [0]
    assert plan_uniform(scores, 0.4)["removed"] == {"a": [3, 4], "b": [0]}


@settings(max_examples=40)
@given(scores=score_dicts(), ratio=ratios)
def test_plan_uniform_removes_floor_ratio_n_lowest_per_layer(scores, ratio):
    plan = plan_uniform(scores, ratio)
    assert_valid_plan(plan, scores)
    for name, s in scores.items():
        k = min(math.floor(ratio * len(s)), len(s) - 1)
        expected = sorted(sorted(range(len(s)), key=lambda i, s=s: (float(s[i]), i))[:k])
        assert plan["removed"][name] == expected


def test_plan_uniform_keeps_at_least_one_filter():
    # floor(0.99 · 3) = 2: two of three go, the best stays
    assert plan_uniform({"c": T([1.0, 3.0, 2.0])}, 0.99)["removed"] == {"c": [0, 2]}
    assert plan_uniform({"c": T([1.0])}, 0.99)["removed"] == {"c": []}


def test_plan_uniform_ratio_zero_removes_nothing():
    plan = plan_uniform({"a": T([1.0, 2.0]), "b": T([3.0, 0.0, 1.0])}, 0.0)
    assert plan == {"removed": {"a": [], "b": []}, "coupled": []}


def test_ties_remove_lowest_indices_first_deterministically():
    scores = {"c": torch.ones(6)}
    plans = [plan_uniform(scores, 0.5) for _ in range(3)]
    assert all(p["removed"]["c"] == [0, 1, 2] for p in plans)
    assert plan_global(scores, 0.5)["removed"]["c"] == [0, 1, 2]
    # ties mixed with distinct values: the two 1.0s at indices 1 and 4 → index 1 first
    assert plan_uniform({"c": T([2.0, 1.0, 3.0, 0.0, 1.0, 5.0])}, 0.34)["removed"]["c"] == [1, 3]


def test_plan_uniform_with_groups_hand_case():
    # a / mean|a| = [.5, 1, 1.5, 1]; c / mean|c| = [2, .5, 1, .5]; unit mean = [1.25, .75, 1.25, .75]
    scores = {"a": T([1.0, 2.0, 3.0, 2.0]), "b": T([4.0, 3.0, 2.0, 1.0]), "c": T([4.0, 1.0, 2.0, 1.0])}
    plan = plan_uniform(scores, 0.5, groups=[["a", "c"]])
    assert plan["removed"] == {"a": [1, 3], "c": [1, 3], "b": [2, 3]}
    assert plan["coupled"] == [["a", "c"]]


@settings(max_examples=30)
@given(n=st.integers(1, 10), seed=st.integers(0, 2**31 - 1), ratio=ratios)
def test_group_members_get_identical_removed_lists(n, seed, ratio):
    g = torch.Generator().manual_seed(seed)
    scores = {"x": torch.rand(n, generator=g), "y": torch.rand(n + 1, generator=g),
              "z": torch.rand(n, generator=g), "w": torch.rand(n, generator=g)}
    for plan_fn in (plan_uniform, plan_global):
        plan = plan_fn(scores, ratio, groups=[["x", "z", "w"]])
        assert_valid_plan(plan, scores)
        assert plan["removed"]["x"] == plan["removed"]["z"] == plan["removed"]["w"]
        assert plan["coupled"] == [["x", "z", "w"]]


def test_unscored_group_members_follow_their_group_and_singletons_are_not_listed():
    # a coupled partner without scores loses the same channels, and the plan names it
    scores = {"a": T([1.0, 2.0]), "b": T([2.0, 1.0])}
    plan = plan_uniform(scores, 0.5, groups=[["a", "not_scored"], ["b"]])
    assert plan == {"removed": {"a": [0], "not_scored": [0], "b": [1]},
                    "coupled": [["a", "not_scored"]]}


@pytest.mark.parametrize("plan_fn", [plan_uniform, plan_global])
def test_group_members_with_different_sizes_is_a_value_error(plan_fn):
    scores = {"a": T([1.0, 2.0]), "b": T([1.0, 2.0, 3.0])}
    before = copy.deepcopy(scores)
    with pytest.raises(ValueError, match="different filter counts"):
        plan_fn(scores, 0.5, groups=[["a", "b"]])
    assert scores.keys() == before.keys()
    for k in scores:
        torch.testing.assert_close(scores[k], before[k], atol=0, rtol=0)


@pytest.mark.parametrize("plan_fn", [plan_uniform, plan_global])
@pytest.mark.parametrize("ratio", [1.0, 1.5, -0.1, "0.5", None, float("nan")])
def test_bad_ratio_is_a_value_error(plan_fn, ratio):
    with pytest.raises(ValueError, match="prune ratio"):
        plan_fn({"a": T([1.0, 2.0])}, ratio)


@pytest.mark.parametrize("plan_fn", [plan_uniform, plan_global])
@pytest.mark.parametrize("ratio", [True, torch.tensor([0.5]), torch.tensor(0.5j), [0.5]])
def test_ratio_that_is_not_a_real_number_is_a_value_error_naming_its_type(plan_fn, ratio):
    with pytest.raises(ValueError, match=f"real number.*{type(ratio).__name__}"):
        plan_fn({"a": T([1.0, 2.0])}, ratio)


@pytest.mark.parametrize("plan_fn", [plan_uniform, plan_global])
@pytest.mark.parametrize("kind", [np.float32, np.float64, torch.tensor, lambda r: torch.tensor(r).double()])
@given(scores=score_dicts(), ratio=ratios)
@settings(max_examples=25)
def test_numpy_and_0d_tensor_ratios_give_the_float_plan(plan_fn, kind, scores, ratio):
    ratio = float(np.float32(ratio))          # representable exactly by every kind
    assert plan_fn(scores, kind(ratio)) == plan_fn(scores, ratio)


@pytest.mark.parametrize("plan_fn", [plan_uniform, plan_global])
def test_scores_of_the_wrong_length_for_the_model_are_refused(plan_fn):
    scores = {"a": T([1.0, 2.0, 3.0, 4.0]), "b": T([3.0, 1.0])}
    with pytest.raises(ValueError, match="b: 2 vs 16"):
        plan_fn(scores, 0.5, sizes={"a": 4, "b": 16})
    with pytest.raises(KeyError, match="'b'"):
        plan_fn(scores, 0.5, sizes={"a": 4})
    assert plan_fn(scores, 0.5, sizes={"a": 4, "b": 2, "c": 7}) == plan_fn(scores, 0.5)


def test_plan_keep_counts_checks_lengths_against_sizes():
    scores = {"a": T([1.0, 2.0, 3.0, 4.0])}
    with pytest.raises(ValueError, match="a: 4 vs 8"):
        selection.plan_keep_counts(scores, {"a": 2}, sizes={"a": 8})
    assert selection.plan_keep_counts(scores, {"a": 2}, sizes={"a": 4})["removed"] == {"a": [0, 1]}


@pytest.mark.parametrize("plan_fn", [plan_uniform, plan_global])
@pytest.mark.parametrize(("scores", "match"), [
    ({}, "scores is empty"),
    ({"a": torch.ones(2, 3)}, "non-empty 1-D"),
    ({"a": torch.ones(())}, "non-empty 1-D"),
    ({"a": torch.ones(0)}, "non-empty 1-D"),
    ({"a": [1.0, 2.0]}, "non-empty 1-D"),
    ({"a": T([1.0, float("nan")])}, "NaN or inf"),
    ({"a": T([1.0, 2.0]), "b": T([float("inf"), 1.0])}, "NaN or inf"),
])
def test_bad_scores_are_a_value_error(plan_fn, scores, match):
    with pytest.raises(ValueError, match=match):
        plan_fn(scores, 0.5)


@pytest.mark.parametrize("plan_fn", [plan_uniform, plan_global])
def test_plan_is_json_serialisable(plan_fn):
    scores = {"a": torch.rand(8, generator=torch.Generator().manual_seed(0)), "b": torch.rand(8),
              "c": torch.rand(5)}
    plan = plan_fn(scores, 0.4, groups=[["a", "b"]])
    assert json.loads(json.dumps(plan)) == plan


def test_scores_are_not_modified():
    scores = {"a": T([3.0, 1.0, 2.0]), "b": T([1.0, 4.0, 2.0])}
    before = copy.deepcopy(scores)
    plan_uniform(scores, 0.5, groups=[["a", "b"]])
    plan_global(scores, 0.5)
    for k in scores:
        torch.testing.assert_close(scores[k], before[k], atol=0, rtol=0)


# --- plan_global -------------------------------------------------------------------------------------

def test_plan_global_hand_case_normalisation_decides():
    # a / mean 20 = [.5, 1, 1.5]; b / mean 3 = [.333, .667, 1, 2]; 3 of 7 go: b0 (.33), a0 (.5), b1 (.67)
    # (ranking the raw scores instead would take b0, b1, b2)
    scores = {"a": T([10.0, 20.0, 30.0]), "b": T([1.0, 2.0, 3.0, 6.0])}
    assert plan_global(scores, 0.5)["removed"] == {"a": [0], "b": [0, 1]}


def test_plan_global_hand_case_last_filter_protected():
    # normalised: a = [1, 1], b = [.5, 1.5], c = [1, 1, 1, 1]; 4 of 8 go. In global order
    # b0, a0, a1, c0, c1, ...: a1 is a's last filter, so c1 goes instead.
    scores = {"a": T([1.0, 1.0]), "b": T([0.5, 1.5]), "c": T([7.0, 7.0, 7.0, 7.0])}
    assert plan_global(scores, 0.5)["removed"] == {"a": [0], "b": [0], "c": [0, 1]}


def test_plan_global_infeasible_ratio_removes_all_but_one_per_layer():
    # floor(0.75 · 4) = 3 but only 2 filters can go (one stays in each layer)
    plan = plan_global({"a": T([1.0, 2.0]), "b": T([2.0, 1.0])}, 0.75)
    assert plan["removed"] == {"a": [0], "b": [1]}


def test_plan_global_total_equals_floor_ratio_total_when_feasible():
    g = torch.Generator().manual_seed(0)
    scores = {f"l{i}": torch.rand(n, generator=g) for i, n in enumerate([16, 32, 8, 64])}
    for ratio in (0.0, 0.1, 0.3, 0.5, 0.7):
        plan = plan_global(scores, ratio)
        assert sum(len(r) for r in plan["removed"].values()) == math.floor(ratio * 120)


@settings(max_examples=60)
@given(scores=score_dicts(), ratio=ratios)
def test_plan_global_keeps_one_per_layer_and_removes_the_feasible_count(scores, ratio):
    plan = plan_global(scores, ratio)
    assert_valid_plan(plan, scores)
    total = sum(len(s) for s in scores.values())
    removed = sum(len(r) for r in plan["removed"].values())
    assert removed == min(math.floor(ratio * total), total - len(scores))
    assert all(n >= 1 for n in kept_counts(plan, {k: len(s) for k, s in scores.items()}).values())


@settings(max_examples=60)
@given(scores=score_dicts(), ratio=ratios)
def test_plan_global_matches_greedy_loop_reference(scores, ratio):
    assert plan_global(scores, ratio)["removed"] == ref_plan_global(scores, ratio)


@settings(max_examples=40)
@given(scores=score_dicts(), ratio=ratios, data=st.data())
def test_plan_global_invariant_to_scaling_one_layer(scores, ratio, data):
    layer = data.draw(st.sampled_from(list(scores)))
    c = 2.0 ** data.draw(st.integers(-8, 8))           # powers of two scale exactly in floating point
    scaled = dict(scores, **{layer: scores[layer] * c})
    assert plan_global(scaled, ratio) == plan_global(scores, ratio)


def test_plan_global_invariant_to_scaling_one_layer_by_any_constant():
    scores = {"a": T([10.0, 20.0, 30.0]), "b": T([1.0, 2.0, 3.0, 6.0]), "c": T([0.3, 0.1, 0.2])}
    base = plan_global(scores, 0.5)
    for c in (0.37, 3.7, 1234.5):
        assert plan_global(dict(scores, b=scores["b"] * c), 0.5) == base


def test_plan_global_groups_count_filters_once():
    # unit {a, b} has 4 filters, c has 4: 8 filters, ratio 0.5 → 4 removed across the 2 units
    scores = {"a": T([1.0, 2.0, 3.0, 4.0]), "b": T([1.0, 2.0, 3.0, 4.0]), "c": T([4.0, 3.0, 2.0, 1.0])}
    plan = plan_global(scores, 0.5, groups=[["a", "b"]])
    assert plan["removed"]["a"] == plan["removed"]["b"]
    assert len(plan["removed"]["a"]) + len(plan["removed"]["c"]) == 4
    assert plan["removed"] == {"a": [0, 1], "b": [0, 1], "c": [2, 3]}


# --- kept_counts -------------------------------------------------------------------------------------

def test_kept_counts_hand_case():
    plan = {"removed": {"a": [0, 2], "b": []}, "coupled": []}
    assert kept_counts(plan, {"a": 5, "b": 3, "c": 4}) == {"a": 3, "b": 3, "c": 4}


@settings(max_examples=30)
@given(scores=score_dicts(), ratio=ratios)
def test_kept_counts_plus_removed_is_size(scores, ratio):
    plan = plan_uniform(scores, ratio)
    sizes = {k: len(s) for k, s in scores.items()}
    kept = kept_counts(plan, sizes)
    assert all(kept[k] + len(plan["removed"][k]) == sizes[k] for k in sizes)


# --- helpers -----------------------------------------------------------------------------------------

def test_merge_groups_partitions_in_forward_order():
    scores = {"a": torch.ones(2), "b": torch.ones(3), "c": torch.ones(2), "d": torch.ones(3)}
    units = selection.merge_groups(scores, [["c", "a"], ["b", "d"]])
    assert units == [["c", "a"], ["b", "d"]]
    assert sorted(n for u in units for n in u) == sorted(scores)


def test_unit_scores_hand_case():
    scores = {"a": T([1.0, 3.0]), "b": T([-2.0, 6.0])}       # a / 2 = [.5, 1.5]; b / 4 = [-.5, 1.5]
    torch.testing.assert_close(selection.unit_scores(scores, ["a", "b"]), T([0.0, 1.5]))


def test_plan_keep_counts_keeps_the_highest_scores_and_checks_counts():
    from pruning_lib.selection import plan_keep_counts
    scores = {"a": T([0.5, 3.0, 1.0, 2.0]), "b": T([1.0, 2.0])}
    assert plan_keep_counts(scores, {"a": 2}) == {"removed": {"a": [0, 2]}, "coupled": []}
    with pytest.raises(ValueError, match="can keep 1 to 2"):
        plan_keep_counts(scores, {"b": 0})
    with pytest.raises(KeyError, match="no scores"):
        plan_keep_counts(scores, {"c": 1})


# --- restrict_plan ------------------------------------------------------------------------------------------

def test_restrict_plan_hand_case_keeps_the_plan_order_given():
    plan = {"removed": {"a": [0, 3], "b": [1, 2], "c": [4]}, "coupled": []}
    assert selection.restrict_plan(plan, ["c", "a"]) == {"removed": {"c": [4], "a": [0, 3]}, "coupled": []}
    assert selection.restrict_plan(plan, ["b"]) == {"removed": {"b": [1, 2]}, "coupled": []}
    assert selection.restrict_plan(plan, []) == {"removed": {}, "coupled": []}
    assert selection.restrict_plan(plan, ["a", "b", "c"]) == plan


def test_restrict_plan_neither_mutates_nor_aliases_its_input():
    plan = {"removed": {"a": [0, 3], "b": [1, 2]}, "coupled": []}
    before = copy.deepcopy(plan)
    out = selection.restrict_plan(plan, ["a", "b"])
    assert plan == before
    assert out["removed"] is not plan["removed"] and out["coupled"] is not plan["coupled"]
    assert all(out["removed"][k] is not plan["removed"][k] for k in out["removed"])
    out["removed"]["a"].append(7)
    out["removed"]["c"] = [0]
    out["coupled"].append(["x"])
    assert plan == before


@settings(max_examples=30)
@given(scores=score_dicts(), ratio=ratios, data=st.data())
def test_restrict_plan_of_plan_uniform_is_plan_uniform_of_the_subset(scores, ratio, data):
    layers = data.draw(st.lists(st.sampled_from(sorted(scores)), unique=True))
    full = plan_uniform(scores, ratio)
    restricted = selection.restrict_plan(full, layers)
    assert list(restricted["removed"]) == layers
    if layers:
        assert restricted == plan_uniform({k: scores[k] for k in layers}, ratio)
    assert json.loads(json.dumps(restricted)) == restricted


@pytest.mark.parametrize("layers", [["z"], ["a", "z"], ["A"]])
def test_restrict_plan_unknown_layer_is_a_key_error(layers):
    plan = {"removed": {"a": [0], "b": [1]}, "coupled": []}
    before = copy.deepcopy(plan)
    with pytest.raises(KeyError, match="does not prune"):
        selection.restrict_plan(plan, layers)
    assert plan == before


def test_restrict_plan_of_a_coupled_plan_is_a_value_error():
    scores = {"a": T([1.0, 2.0, 3.0, 4.0]), "b": T([4.0, 3.0, 2.0, 1.0]), "c": T([1.0, 2.0])}
    plan = plan_uniform(scores, 0.5, groups=[["a", "b"]])
    assert plan["coupled"]                                         # the group is listed
    before = copy.deepcopy(plan)
    with pytest.raises(ValueError, match="uncoupled"):
        selection.restrict_plan(plan, ["c"])
    assert plan == before
