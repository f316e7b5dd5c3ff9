"""Surgery: the physically pruned model computes what the masked model computes, on every zoo
architecture; shapes, counts and the untouched input model; coupled groups; bad plans; files."""

from __future__ import annotations

import copy
import functools
import pickle
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from pruning_lib import metrics, models, selection, surgery
from pruning_lib.criteria import l1_norm, score_model

from support import bn_off_identity

pytestmark = pytest.mark.usefixtures("single_thread")

ARCHS = {"vgg16_slim": {}, "resnet": {"depth": 20}, "mobilenet_v1_slim": {}}
EXAMPLE = torch.zeros(1, 1, 28, 28)
X = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(123))


# --- helpers -------------------------------------------------------------------------------------

@torch.no_grad()
def randomised(name: str, seed: int = 0) -> nn.Module:
    """A zoo model in eval mode whose BatchNorms are far from identity (random stats and affine).

    Convs get Kaiming-normal weights so that signals keep their scale through deep stacks, and a
    removed channel visibly changes the output.
    """
    torch.manual_seed(seed)
    model = models.build(name, **ARCHS[name])
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.weight[0].numel()
            m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
        elif isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.copy_(0.5 + torch.rand(n, generator=g))
            m.bias.copy_(0.2 * torch.randn(n, generator=g))
            m.running_mean.copy_(0.2 * torch.randn(n, generator=g))
            m.running_var.copy_(0.5 + 1.5 * torch.rand(n, generator=g))
    return model.eval()


def snapshot(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_state(model: nn.Module, before: dict[str, Tensor]) -> None:
    after = model.state_dict()
    assert list(after) == list(before)
    for key, value in after.items():
        assert value.shape == before[key].shape, key
        torch.testing.assert_close(value, before[key], atol=0, rtol=0, msg=key)


def bn_after(model: nn.Module, conv_name: str) -> nn.BatchNorm2d:
    """The BatchNorm of the ConvBNReLU unit that holds ``conv_name`` ("....conv" → "....bn")."""
    return dict(model.named_modules())[conv_name.removesuffix("conv") + "bn"]


@functools.cache
def zoo(name: str) -> tuple[nn.Module, list[list[str]], dict[str, Tensor]]:
    """(randomised model, coupled groups, l1 scores), built once per architecture."""
    model = randomised(name)
    return model, surgery.coupled_groups(model, EXAMPLE), score_model(model, l1_norm)


def make_plan(name: str, planner: str) -> dict:
    model, groups, scores = zoo(name)
    if planner == "uniform":
        return selection.plan_uniform(scores, 0.5, groups=groups)
    return selection.plan_global(scores, 0.3, groups=groups)


@functools.cache
def pruned_and_masked(name: str, planner: str) -> dict:
    """Apply and mask one plan; record the input model before and after (computed once)."""
    model, _, _ = zoo(name)
    plan = make_plan(name, planner)
    plan_copy = copy.deepcopy(plan)
    before, params = snapshot(model), metrics.count_params(model)
    pruned = surgery.apply_plan(model, plan, EXAMPLE)
    masked = surgery.mask_plan(model, plan, EXAMPLE)
    return {"model": model, "plan": plan, "plan_copy": plan_copy, "before": before, "params": params,
            "pruned": pruned, "masked": masked}


CASES = [(name, planner) for name in ARCHS for planner in ("uniform", "global")]


# --- pruned ≡ masked ------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "planner"), CASES)
def test_pruned_output_equals_masked_output(name, planner):
    r = pruned_and_masked(name, planner)
    out_pruned, out_masked, out_full = r["pruned"](X), r["masked"](X), r["model"](X)
    assert out_pruned.shape == (4, 10)
    torch.testing.assert_close(out_pruned, out_masked, atol=1e-5, rtol=0)
    # the test could fail: pruning really changed the function
    assert float((out_pruned - out_full).detach().abs().max()) > 1e-3


@pytest.mark.parametrize(("name", "planner"), CASES)
def test_input_model_and_plan_are_untouched(name, planner):
    r = pruned_and_masked(name, planner)
    assert_same_state(r["model"], r["before"])
    assert metrics.count_params(r["model"]) == r["params"]
    assert r["plan"] == r["plan_copy"]
    assert r["pruned"] is not r["model"] and r["masked"] is not r["model"]
    assert not r["model"].training


@pytest.mark.parametrize(("name", "planner"), CASES)
def test_pruned_shapes_follow_the_plan(name, planner):
    r = pruned_and_masked(name, planner)
    model, pruned, plan = r["model"], r["pruned"], r["plan"]
    original = dict(model.named_modules())
    modules = dict(pruned.named_modules())
    for conv_name in models.prunable_convs(model):
        kept = original[conv_name].out_channels - len(plan["removed"][conv_name])
        conv, bn = modules[conv_name], bn_after(pruned, conv_name)
        assert conv.out_channels == conv.weight.shape[0] == kept, conv_name
        assert bn.num_features == kept == bn.weight.shape[0] == bn.running_mean.shape[0], conv_name
    # every conv's input channels agree with its weight (the consumers followed the producers)
    for m in pruned.modules():
        if isinstance(m, nn.Conv2d):
            assert m.weight.shape[1] * m.groups == m.in_channels
            if m.groups > 1:                          # depthwise: one filter per input channel
                assert m.groups == m.in_channels == m.out_channels
    assert pruned.pruning_plan == plan


def test_mobilenet_depthwise_conv_follows_the_pointwise_conv_before_it():
    r = pruned_and_masked("mobilenet_v1_slim", "uniform")
    modules = dict(r["pruned"].named_modules())
    for i in range(1, 8):
        width = modules[f"blocks.{i - 1}.pw.conv"].out_channels
        assert modules[f"blocks.{i}.dw.conv"].out_channels == width
        assert modules[f"blocks.{i}.dw.bn"].num_features == width
    assert modules["blocks.0.dw.conv"].out_channels == modules["stem.conv"].out_channels


@pytest.mark.parametrize(("name", "planner"), CASES)
def test_params_and_macs_strictly_decrease_and_mask_keeps_shapes(name, planner):
    r = pruned_and_masked(name, planner)
    model, pruned, masked = r["model"], r["pruned"], r["masked"]
    assert metrics.count_params(pruned) < metrics.count_params(model)
    assert metrics.count_macs(pruned, EXAMPLE) < metrics.count_macs(model, EXAMPLE)
    masked_state = masked.state_dict()
    assert {k: v.shape for k, v in masked_state.items()} == {k: v.shape for k, v in r["before"].items()}
    assert metrics.count_params(masked) == metrics.count_params(model)


def test_mask_zeroes_exactly_the_planned_filters():
    r = pruned_and_masked("vgg16_slim", "uniform")
    masked = dict(r["masked"].named_modules())
    for conv_name, removed in r["plan"]["removed"].items():
        w = masked[conv_name].weight
        zero_rows = [i for i in range(len(w)) if bool((w[i] == 0).all())]
        assert zero_rows == removed, conv_name


# --- random plans on the ResNet (coupled groups respected) -----------------------------------------

@st.composite
def resnet_plans(draw: st.DrawFn) -> dict:
    _, groups, scores = zoo("resnet")
    removed, coupled = {}, []
    for group in groups:
        n = len(scores[group[0]])
        idx = draw(st.lists(st.integers(0, n - 1), unique=True, max_size=n - 1))
        for member in group:
            removed[member] = sorted(idx)
        if len(group) > 1:
            coupled.append(list(group))
    return {"removed": removed, "coupled": coupled}


@settings(max_examples=5, deadline=None)
@given(plan=resnet_plans())
def test_random_resnet_plans_pruned_equals_masked(plan):
    model = zoo("resnet")[0]
    pruned = surgery.apply_plan(model, plan, EXAMPLE)
    masked = surgery.mask_plan(model, plan, EXAMPLE)
    torch.testing.assert_close(pruned(X), masked(X), atol=1e-5, rtol=0)
    for conv_name, idx in plan["removed"].items():
        n = dict(model.named_modules())[conv_name].out_channels
        assert dict(pruned.named_modules())[conv_name].out_channels == n - len(idx)


# --- coupled groups ----------------------------------------------------------------------------------

def test_resnet20_coupled_groups():
    groups = zoo("resnet")[1]
    multi = [g for g in groups if len(g) > 1]
    assert len(multi) == 3
    assert multi[0] == ["stem.conv"] + [f"layer1.{i}.conv2.conv" for i in range(3)]
    assert multi[1] == ["layer2.0.conv2.conv", "layer2.0.shortcut.conv",
                        "layer2.1.conv2.conv", "layer2.2.conv2.conv"]
    assert multi[2] == ["layer3.0.conv2.conv", "layer3.0.shortcut.conv",
                        "layer3.1.conv2.conv", "layer3.2.conv2.conv"]
    singles = [g[0] for g in groups if len(g) == 1]
    assert singles == [f"layer{s}.{i}.conv1.conv" for s in (1, 2, 3) for i in range(3)]
    # a partition of the prunable convs
    assert sorted(n for g in groups for n in g) == sorted(models.prunable_convs(zoo("resnet")[0]))


@pytest.mark.parametrize("name", ["vgg16_slim", "mobilenet_v1_slim"])
def test_chain_models_have_only_singleton_groups(name):
    model, groups, _ = zoo(name)
    assert groups == [[n] for n in models.prunable_convs(model)]


def test_coupled_groups_does_not_modify_the_model():
    model = randomised("resnet", seed=1).train()
    before = snapshot(model)
    surgery.coupled_groups(model, EXAMPLE)
    assert_same_state(model, before)
    assert model.training


def test_describe_group_lists_producers_and_consumers():
    model = zoo("resnet")[0]
    before = snapshot(model)
    members = {(m["name"], m["side"]) for m in surgery.describe_group(model, "layer1.0.conv2.conv", EXAMPLE)}
    assert {("stem.conv", "out"), ("stem.bn", "out"), ("layer1.2.conv2.conv", "out"),
            ("layer1.1.conv1.conv", "in"), ("layer2.0.shortcut.conv", "in")} <= members
    assert not any(name.startswith("layer3") for name, _ in members)
    with pytest.raises(KeyError, match="not a prunable conv"):
        surgery.describe_group(model, "layer1.0.conv2.bn", EXAMPLE)
    assert_same_state(model, before)


# --- bad plans: clear errors, nothing modified ----------------------------------------------------

@pytest.fixture(scope="module")
def vgg() -> nn.Module:
    return randomised("vgg16_slim", seed=2)


BAD_VGG_PLANS = [
    ({"removed": {"features.conv99.conv": [0]}}, KeyError, "conv99"),
    ({"removed": {"classifier.2": [0]}}, KeyError, "not prunable convs"),
    ({"removed": {"features.conv1.conv": list(range(16))}}, ValueError, "at least one must stay"),
    ({"removed": {"features.conv1.conv": [3, 16]}}, ValueError, r"unique and in \[0, 16\)"),
    ({"removed": {"features.conv1.conv": [-1, 2]}}, ValueError, r"unique and in \[0, 16\)"),
    ({"removed": {"features.conv1.conv": [2, 2]}}, ValueError, "unique"),
    ([("features.conv1.conv", [0])], ValueError, "a plan is"),
    ({"features.conv1.conv": [0]}, ValueError, "a plan is"),
    (None, ValueError, "a plan is"),
    # structure first: JSON strings or floats are not indices (and never reach the coupling check)
    ({"removed": {"features.conv1.conv": ["0", "3"]}}, ValueError, r"integers, got '0' \(str\)"),
    ({"removed": {"features.conv1.conv": [0.0, 3.0]}}, ValueError, r"integers, got 0.0 \(float\)"),
    ({"removed": {"features.conv1.conv": [True]}}, ValueError, "integers, got True"),
    ({"removed": {"features.conv1.conv": 3}}, ValueError, "a plan is"),
    ({"removed": [["features.conv1.conv", [0]]]}, ValueError, "a plan is"),
    ({"removed": {"features.conv1.conv": [0]}, "coupled": "features"}, ValueError, "coupled ="),
    ({"removed": {"features.conv1.conv": [0]}, "ratio": 0.5}, ValueError, r"extra keys \['ratio'\]"),
]


@pytest.mark.parametrize("apply", [surgery.apply_plan, surgery.mask_plan])
@pytest.mark.parametrize(("plan", "error", "match"), BAD_VGG_PLANS)
def test_bad_plans_raise_and_modify_nothing(vgg, apply, plan, error, match):
    before, plan_before = snapshot(vgg), copy.deepcopy(plan)
    with pytest.raises(error, match=match):
        apply(vgg, plan, EXAMPLE)
    assert_same_state(vgg, before)
    assert plan == plan_before


@pytest.mark.parametrize("apply", [surgery.apply_plan, surgery.mask_plan])
def test_coupled_layers_with_different_removals_raise(apply):
    model = zoo("resnet")[0]
    before = snapshot(model)
    plan = {"removed": {"stem.conv": [0, 1], "layer1.0.conv2.conv": [0, 2]}}     # no "coupled" key
    with pytest.raises(ValueError, match="coupled"):
        apply(model, plan, EXAMPLE)
    plan["coupled"] = [["stem.conv", "layer1.0.conv2.conv"]]                       # declared, unequal
    with pytest.raises(ValueError, match="coupled"):
        apply(model, plan, EXAMPLE)
    assert_same_state(model, before)


def test_plan_removing_nothing_gives_an_equal_model(vgg):
    pruned = surgery.apply_plan(vgg, {"removed": {"features.conv1.conv": []}, "coupled": []}, EXAMPLE)
    assert metrics.count_params(pruned) == metrics.count_params(vgg)
    with torch.no_grad():
        torch.testing.assert_close(pruned(X), vgg(X), atol=0, rtol=0)


def test_numpy_and_0d_tensor_indices_are_integers(vgg):
    ints = {"removed": {"features.conv1.conv": [0, 3]}, "coupled": []}
    odd = {"removed": {"features.conv1.conv": [np.int64(3), torch.tensor(0)]}, "coupled": []}
    with torch.no_grad():
        torch.testing.assert_close(surgery.apply_plan(vgg, odd, EXAMPLE)(X),
                                   surgery.apply_plan(vgg, ints, EXAMPLE)(X), atol=0, rtol=0)
    assert surgery.normalise_plan(odd) == ({"features.conv1.conv": [0, 3]}, [])
    assert surgery.apply_plan(vgg, odd, EXAMPLE).pruning_plan == ints        # plain ints, sorted


def test_save_load_round_trip_of_a_plan_with_numpy_indices(tmp_path):
    model = models.build("vgg16_slim").eval()
    odd = {"removed": {"features.conv2.conv": [np.int64(5), np.int64(1)]}, "coupled": []}
    pruned = surgery.apply_plan(model, odd, EXAMPLE)
    loaded = surgery.load_pruned(surgery.save_pruned(pruned, odd, tmp_path / "p.pt"))
    assert loaded.features.conv2.conv.out_channels == 14
    with torch.no_grad():
        torch.testing.assert_close(loaded(X), pruned.eval()(X), atol=1e-6, rtol=0)


def test_scores_computed_for_a_narrower_layer_are_caught_when_sizes_are_given(vgg):
    scores = score_model(vgg, l1_norm)
    scores["features.conv1.conv"] = scores["features.conv1.conv"][:8]         # 8 scores, 16 filters
    with pytest.raises(ValueError, match="features.conv1.conv: 8 vs 16"):
        selection.plan_uniform(scores, 0.5, sizes=models.conv_widths(vgg))


# --- removing a channel that is identically zero changes nothing ------------------------------------

@pytest.mark.parametrize("zeroed", ["gamma_and_beta", "mean_and_beta"])
def test_removing_an_all_zero_channel_leaves_outputs_unchanged(zeroed):
    model = randomised("vgg16_slim", seed=3)
    conv, bn = model.features.conv5.conv, model.features.conv5.bn
    with torch.no_grad():
        conv.weight[7] = 0.0
        bn.bias[7] = 0.0
        if zeroed == "gamma_and_beta":
            bn.weight[7] = 0.0                      # running mean stays random: γ·(0 − μ)/σ = 0
        else:
            bn.running_mean[7] = 0.0                # γ stays random: γ·(0 − 0)/σ = 0
    pruned = surgery.apply_plan(model, {"removed": {"features.conv5.conv": [7]}, "coupled": []}, EXAMPLE)
    assert pruned.features.conv5.conv.out_channels == 63
    torch.testing.assert_close(pruned(X), model(X), atol=1e-5, rtol=0)


def test_removing_an_all_zero_residual_channel_leaves_outputs_unchanged():
    model = copy.deepcopy(zoo("resnet")[0])
    group = zoo("resnet")[1][0]                     # stem + layer1.*.conv2: the stage-1 residual stream
    modules = dict(model.named_modules())
    with torch.no_grad():
        for conv_name in group:
            modules[conv_name].weight[4] = 0.0
            bn = bn_after(model, conv_name)
            bn.weight[4] = 0.0
            bn.bias[4] = 0.0
    plan = {"removed": {name: [4] for name in group}, "coupled": [group]}
    pruned = surgery.apply_plan(model, plan, EXAMPLE)
    assert pruned.stem.conv.out_channels == 15
    torch.testing.assert_close(pruned(X), model(X), atol=1e-5, rtol=0)


# --- modes and repeated application ---------------------------------------------------------------

@pytest.mark.parametrize("apply", [surgery.apply_plan, surgery.mask_plan])
def test_train_mode_is_kept(apply):
    model = randomised("vgg16_slim", seed=4).train()
    before = snapshot(model)
    out = apply(model, {"removed": {"features.conv2.conv": [0, 3]}, "coupled": []}, EXAMPLE)
    assert out.training and all(m.training for m in out.modules())
    assert model.training
    assert_same_state(model, before)                # tracing did not update the BN running stats


def test_applying_twice_to_the_baseline_gives_identical_models():
    r = pruned_and_masked("resnet", "uniform")
    again = surgery.apply_plan(r["model"], r["plan"], EXAMPLE)
    assert_same_state(again, snapshot(r["pruned"]))
    torch.testing.assert_close(again(X), r["pruned"](X), atol=0, rtol=0)


def test_a_plan_that_hides_coupled_partners_is_refused():
    model = zoo("resnet")[0]
    before = snapshot(model)
    plan = {"removed": {"stem.conv": [0, 1], "layer1.0.conv2.conv": [0, 1]}}
    with pytest.raises(ValueError, match="does not name"):
        surgery.apply_plan(model, plan, EXAMPLE)
    assert_same_state(model, before)


def test_coupled_layers_listed_without_coupled_key_are_pruned_once():
    model = zoo("resnet")[0]
    group = ["stem.conv", "layer1.0.conv2.conv", "layer1.1.conv2.conv", "layer1.2.conv2.conv"]
    plan = {"removed": {name: [0, 1] for name in group}}
    pruned = surgery.apply_plan(model, plan, EXAMPLE)
    assert pruned.stem.conv.out_channels == 14
    torch.testing.assert_close(pruned(X), surgery.mask_plan(model, plan, EXAMPLE)(X), atol=1e-5, rtol=0)


def test_every_layer_in_the_plan_loses_its_filters_even_if_wrongly_declared_coupled(vgg):
    plan = {"removed": {"features.conv1.conv": [0, 1], "features.conv2.conv": [0, 1]},
            "coupled": [["features.conv1.conv", "features.conv2.conv"]]}     # not coupled in VGG
    pruned = surgery.apply_plan(vgg, plan, EXAMPLE)
    assert pruned.features.conv1.conv.out_channels == 14
    assert pruned.features.conv2.conv.out_channels == 14


# --- models that cannot be pruned so that pruned ≡ masked: refused before surgery -----------------

def _seeded(*layers: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(*layers).eval()


def grouped_net() -> nn.Module:
    """0 feeds a grouped conv (groups=2), 4 is prunable, 6 produces the output."""
    return _seeded(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 8, 3, padding=1, groups=2),
                   nn.ReLU(), nn.Conv2d(8, 6, 1), nn.ReLU(), nn.Conv2d(6, 3, 1),
                   nn.AdaptiveAvgPool2d(1), nn.Flatten())


SMALL = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(5))


def test_refused_convs_and_coupled_groups_of_a_net_with_a_grouped_conv_and_a_conv_head():
    model = grouped_net()
    refused = surgery.refused_convs(model, SMALL)
    assert sorted(refused) == ["0", "6"]
    assert "'2' is a grouped conv (groups=2, 2 input channels per group)" in refused["0"]
    assert "network's output" in refused["6"]
    assert surgery.coupled_groups(model, SMALL) == [["4"]]
    pruned = surgery.apply_plan(model, {"removed": {"4": [1, 4]}, "coupled": []}, SMALL)
    masked = surgery.mask_plan(model, {"removed": {"4": [1, 4]}, "coupled": []}, SMALL)
    assert pruned[4].out_channels == 4 and pruned[6].in_channels == 4
    with torch.no_grad():
        torch.testing.assert_close(pruned(SMALL), masked(SMALL), atol=1e-5, rtol=0)


@pytest.mark.parametrize("apply", [surgery.apply_plan, surgery.mask_plan])
@pytest.mark.parametrize(("removed", "match"), [
    ({"0": [0, 3]}, r"'2' is a grouped conv .*input channels \[0, 3\] \(groups \[0, 1\]\)"),
    ({"0": [0]}, r"'2' is a grouped conv .*input channels \[0\] \(groups \[0\]\)"),
    ({"6": [1]}, "filters \\[1\\] of 6: its channels are the network's output"),
])
def test_plans_through_a_grouped_conv_or_on_the_output_conv_are_refused(apply, removed, match):
    model = grouped_net()
    before = snapshot(model)
    with pytest.raises(ValueError, match=match):
        apply(model, {"removed": removed, "coupled": []}, SMALL)
    assert_same_state(model, before)


@settings(max_examples=8, deadline=None)
@given(removed=st.lists(st.integers(0, 3), min_size=1, max_size=3, unique=True))
def test_any_plan_through_the_grouped_conv_is_refused_naming_its_groups(removed):
    # conv 2 has groups=2 over 4 input channels: channels 0, 1 are group 0 and 2, 3 are group 1
    groups = sorted({i // 2 for i in removed})
    with pytest.raises(ValueError, match=re.escape(f"input channels {sorted(removed)} (groups {groups})")):
        surgery.apply_plan(grouped_net(), {"removed": {"0": removed}}, SMALL)


@settings(max_examples=8, deadline=None)
@given(removed=st.lists(st.integers(0, 5), min_size=1, max_size=5, unique=True))
def test_any_plan_on_the_conv_after_the_grouped_conv_prunes_exactly(removed):
    model = grouped_net()
    plan = {"removed": {"4": removed}, "coupled": []}
    pruned, masked = surgery.apply_plan(model, plan, SMALL), surgery.mask_plan(model, plan, SMALL)
    assert pruned[4].out_channels == 6 - len(removed) == pruned[6].in_channels
    with torch.no_grad():
        torch.testing.assert_close(pruned(SMALL), masked(SMALL), atol=1e-5, rtol=0)


@given(idxs=st.lists(st.integers(0, 15) | st.integers(0, 15).map(np.int64)
                     | st.integers(0, 15).map(torch.tensor), max_size=6))
def test_normalise_plan_turns_any_integer_kind_into_sorted_ints(idxs):
    removed, coupled = surgery.normalise_plan({"removed": {"c": idxs}})
    assert removed == {"c": sorted(int(i) for i in idxs)} and coupled == []
    assert all(type(i) is int for i in removed["c"])


@pytest.mark.parametrize("norm", [nn.GroupNorm(1, 4), nn.GroupNorm(2, 4), nn.LayerNorm([4, 6, 6])])
@pytest.mark.parametrize("apply", [surgery.apply_plan, surgery.mask_plan])
def test_a_channel_mixing_normalisation_after_the_conv_is_refused(norm, apply):
    model = _seeded(nn.Conv2d(1, 4, 3), norm, nn.Conv2d(4, 2, 3))
    before = snapshot(model)
    assert surgery.coupled_groups(model, SMALL) == []
    with pytest.raises(ValueError, match=f"'1' \\({type(norm).__name__}\\) normalises across channels"):
        apply(model, {"removed": {"0": [0]}, "coupled": []}, SMALL)
    assert_same_state(model, before)


class _Shuffled(nn.Module):
    """A conv whose channels are shuffled by view/transpose (ShuffleNet's trick), then a conv; and
    a conv that forward never uses."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.head, self.unused = nn.Conv2d(1, 4, 3), nn.Conv2d(4, 2, 1), nn.Conv2d(1, 4, 3)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        b, c, h, w = y.shape
        return self.head(y.view(b, 2, c // 2, h, w).transpose(1, 2).reshape(b, c, h, w))


def test_a_conv_outside_the_trace_is_refused():
    model = _Shuffled().eval()
    assert "'unused' is not in Torch-Pruning's trace" in surgery.refused_convs(model, SMALL)["unused"]
    with pytest.raises(ValueError, match="filters \\[0\\] of unused: 'unused' is not in Torch-Pruning's"):
        surgery.apply_plan(model, {"removed": {"unused": [0]}}, SMALL)


def test_a_channel_shuffle_that_torch_pruning_misreads_is_caught_by_the_last_guard():
    # Torch-Pruning traces this view/transpose and prunes, but the result cannot run: the final
    # check refuses it (torchvision's ShuffleNet fails earlier, when the graph is built)
    model = _Shuffled().eval()
    before = snapshot(model)
    with pytest.raises(ValueError, match="returned a model that fails on forward"):
        surgery.apply_plan(model, {"removed": {"conv": [0]}}, SMALL)
    assert_same_state(model, before)


def test_last_guard_refuses_a_pruned_model_that_differs_from_the_masked_one():
    # sigmoid(0) = 0.5: a masked channel still sends 0.5 · w to the next conv, a removed one does
    # not. Nothing in the group is of a refused type, so only the final comparison can see it.
    model = _seeded(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Sigmoid(), nn.Conv2d(4, 2, 3))
    plan = {"removed": {"0": [1]}, "coupled": []}
    assert list(surgery.refused_convs(model, SMALL)) == ["3"]         # conv 0 passes the checks
    with torch.no_grad():
        gap = (surgery.mask_plan(model, plan, SMALL)(SMALL)
               - _removed_by_hand(model, 1)(SMALL)).abs().max()
    assert gap > 1e-2                                            # the mismatch is real
    before = snapshot(model)
    with pytest.raises(ValueError, match="differs from the masked one"):
        surgery.apply_plan(model, plan, SMALL)
    assert_same_state(model, before)


def _removed_by_hand(model: nn.Sequential, channel: int) -> nn.Module:
    """Reference removal of one channel of conv 0 (and BN 1, and conv 3's input), no library."""
    keep = [i for i in range(model[0].out_channels) if i != channel]
    out = copy.deepcopy(model)
    out[0] = nn.Conv2d(1, len(keep), 3)
    out[0].weight.data, out[0].bias.data = model[0].weight[keep].clone(), model[0].bias[keep].clone()
    out[1] = nn.BatchNorm2d(len(keep)).eval()
    for key in ("weight", "bias", "running_mean", "running_var"):
        getattr(out[1], key).data = getattr(model[1], key)[keep].clone()
    out[3] = nn.Conv2d(len(keep), 2, 3)
    out[3].weight.data, out[3].bias.data = model[3].weight[:, keep].clone(), model[3].bias.clone()
    return out.eval()


class _TwoOutputs(nn.Module):
    """conv → ReLU → two conv heads; returns {"a": logits, "b": logits}, or also the features."""

    def __init__(self, with_features: bool) -> None:
        super().__init__()
        self.with_features = with_features
        self.conv, self.a, self.b = nn.Conv2d(1, 6, 3), nn.Conv2d(6, 3, 3), nn.Conv2d(6, 2, 1)

    def forward(self, x: Tensor) -> dict[str, Tensor] | tuple:
        y = torch.relu(self.conv(x))
        heads = {"a": self.a(y).mean((2, 3)), "b": self.b(y).amax((2, 3))}
        return (y, heads) if self.with_features else heads


def test_dict_outputs_are_checked_and_a_conv_returned_as_features_is_an_output():
    torch.manual_seed(0)
    model = _TwoOutputs(with_features=False).eval()
    plan = {"removed": {"conv": [1, 4]}, "coupled": []}
    pruned, masked = surgery.apply_plan(model, plan, SMALL), surgery.mask_plan(model, plan, SMALL)
    with torch.no_grad():
        got, want = pruned(SMALL), masked(SMALL)
    assert pruned.conv.out_channels == 4 and set(got) == {"a", "b"}
    for key in ("a", "b"):
        torch.testing.assert_close(got[key], want[key], atol=1e-5, rtol=0)
    featured = _TwoOutputs(with_features=True).eval()
    assert "network's output" in surgery.refused_convs(featured, SMALL)["conv"]
    with pytest.raises(ValueError, match="of conv: its channels are the network's output"):
        surgery.apply_plan(featured, plan, SMALL)


def test_apply_plan_leaves_the_global_rng_alone(vgg):
    state = torch.get_rng_state()
    surgery.apply_plan(vgg, {"removed": {"features.conv2.conv": [1]}, "coupled": []}, EXAMPLE)
    assert torch.equal(torch.get_rng_state(), state)


# --- save / load ---------------------------------------------------------------------------------------

def test_save_load_round_trip(tmp_path):
    r = pruned_and_masked("resnet", "global")
    path = surgery.save_pruned(r["pruned"], r["plan"], tmp_path / "sub" / "pruned.pt", EXAMPLE)
    assert path == tmp_path / "sub" / "pruned.pt" and path.is_file()
    blob = torch.load(path, weights_only=True)
    assert blob["format"] == surgery.FORMAT
    assert blob["arch"] == {"name": "resnet", "kwargs": {"depth": 20}}
    assert blob["plan"] == r["plan"]
    loaded = surgery.load_pruned(path)
    assert not loaded.training
    torch.testing.assert_close(loaded(X), r["pruned"](X), atol=1e-6, rtol=0)
    assert_same_state(loaded, snapshot(r["pruned"]))


def test_save_without_arch_spec_is_a_value_error(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 4, 3))
    with pytest.raises(ValueError, match="arch_spec"):
        surgery.save_pruned(model, {"removed": {}, "coupled": []}, tmp_path / "m.pt", EXAMPLE)
    assert not (tmp_path / "m.pt").exists()


def test_load_of_a_foreign_file_is_a_value_error(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"x": 1}, path)
    with pytest.raises(ValueError, match="not a pruned-model file"):
        surgery.load_pruned(path)


@pytest.mark.parametrize("content", ["module", "bytes", "empty"])
def test_load_of_a_pickled_module_or_garbage_is_a_value_error(tmp_path, content):
    path = tmp_path / "bad.pt"
    if content == "module":
        torch.save(nn.Conv2d(1, 2, 3), path)                   # a pickled module, not a state
    else:
        path.write_bytes(b"" if content == "empty" else bytes(range(256)) * 4)
    with pytest.raises(ValueError, match="not a pruned-model file") as info:
        surgery.load_pruned(path)
    assert isinstance(info.value.__cause__, pickle.UnpicklingError | RuntimeError | EOFError)


def test_load_of_a_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        surgery.load_pruned(tmp_path / "missing.pt")


def test_apply_plan_works_inside_no_grad(vgg):
    plan = {"removed": {"features.conv1.conv": [0]}, "coupled": []}
    with torch.no_grad():
        pruned = surgery.apply_plan(vgg, plan, EXAMPLE)
    assert pruned.features.conv1.conv.out_channels == 15


def test_save_pruned_defaults_to_the_shape_apply_plan_recorded(tmp_path):
    r = pruned_and_masked("vgg16_slim", "uniform")
    assert r["pruned"].pruning_example_shape == list(EXAMPLE.shape)
    path = surgery.save_pruned(r["pruned"], r["plan"], tmp_path / "p.pt")
    torch.testing.assert_close(surgery.load_pruned(path)(X), r["pruned"](X), atol=1e-6, rtol=0)


def test_save_pruned_without_any_shape_is_a_value_error(tmp_path, vgg):
    with pytest.raises(ValueError, match="example_input"):
        surgery.save_pruned(vgg, {"removed": {}, "coupled": []}, tmp_path / "p.pt")


# --- remove_filters_by_hand: the explicit reference of lesson 00 ----------------------------------

@torch.no_grad()
def tiny_chain(seed: int = 0) -> nn.Sequential:
    """conv(1→4) → BN(4) far from the identity → ReLU → conv(4→3), seeded random weights, eval mode."""
    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.Conv2d(4, 3, 3, padding=1))
    for conv in (net[0], net[3]):
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g))
        conv.bias.copy_(torch.randn(conv.bias.shape, generator=g))
    return bn_off_identity(net, seed)


def by_hand(net: nn.Sequential, keep: list[int]) -> nn.Sequential:
    conv, bn, nxt = surgery.remove_filters_by_hand(net[0], net[1], net[3], keep)
    return nn.Sequential(conv, bn, nn.ReLU(), nxt)


@pytest.mark.parametrize("keep", [[0, 2], [1], [0, 1, 2, 3], [3, 1]])
def test_remove_filters_by_hand_equals_apply_plan(keep):
    net = tiny_chain()
    removed = [i for i in range(4) if i not in keep]
    planned = surgery.apply_plan(net, {"removed": {"0": removed}, "coupled": []}, SMALL)
    hand = by_hand(net, keep)
    assert not any(hand[i].training for i in (0, 1, 3)) and hand[0].weight.shape == (len(keep), 1, 3, 3)
    assert hand[1].running_var.shape == (len(keep),) and hand[3].weight.shape == (3, len(keep), 3, 3)
    with torch.no_grad():
        torch.testing.assert_close(hand(SMALL), planned(SMALL), atol=1e-5, rtol=0)
        assert (hand(SMALL) - net(SMALL)).abs().max() > 1e-2 or len(keep) == 4   # removal is visible


def test_remove_filters_by_hand_slices_every_per_filter_tensor_by_hand():
    # a hand-checkable case: entry i of every per-filter tensor is i (next conv: input channel a holds a)
    conv, bn, nxt = nn.Conv2d(1, 4, 1), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1)
    with torch.no_grad():
        for t in (conv.weight, conv.bias, bn.weight, bn.bias, bn.running_mean, bn.running_var):
            t.copy_(torch.arange(4.0).view(t.shape))
        nxt.weight.copy_(torch.arange(4.0).repeat(2, 1).view(2, 4, 1, 1))
    c, b, n = surgery.remove_filters_by_hand(conv, bn, nxt, [0, 2])
    for t in (c.weight, c.bias, b.weight, b.bias, b.running_mean, b.running_var):
        assert t.flatten().tolist() == [0.0, 2.0]
    assert n.weight.flatten().tolist() == [0.0, 2.0, 0.0, 2.0] and torch.equal(n.bias, nxt.bias)
    assert (c.in_channels, c.out_channels, b.num_features, n.in_channels, n.out_channels) == (1, 2, 2, 2, 2)


def test_remove_filters_by_hand_does_not_touch_its_inputs():
    net = tiny_chain(seed=1)
    net[0].train()                                   # modes are copied, not reset
    before = snapshot(net)
    conv, bn, nxt = surgery.remove_filters_by_hand(net[0], net[1], net[3], np.array([2, 0]))
    assert_same_state(net, before)
    assert conv.training and not bn.training and not nxt.training
    assert conv.weight.data_ptr() != net[0].weight.data_ptr()
    with torch.no_grad():
        conv.weight.zero_()
    assert net[0].weight.abs().sum() > 0              # new tensors, not views of the old ones


@pytest.mark.parametrize(("keep", "bn_width", "match"), [
    ([0, 4], 4, r"unique indices in \[0, 4\)"),
    ([-1], 4, r"unique indices in \[0, 4\)"),
    ([1, 1], 4, "unique"),
    ([], 4, "keep is empty"),
    (["0"], 4, "integer filter indices"),
    ([0, 1], 3, "the BatchNorm has 3 channels but the conv has 4 filters"),
])
def test_remove_filters_by_hand_rejects_bad_input_clearly(keep, bn_width, match):
    net = tiny_chain()
    bn = net[1] if bn_width == 4 else nn.BatchNorm2d(bn_width).eval()
    before = snapshot(net)
    with pytest.raises(ValueError, match=match):
        surgery.remove_filters_by_hand(net[0], bn, net[3], keep)
    assert_same_state(net, before)


def test_remove_filters_by_hand_rejects_a_next_conv_of_another_width_and_grouped_convs():
    net = tiny_chain()
    with pytest.raises(ValueError, match="next_conv reads 5 channels"):
        surgery.remove_filters_by_hand(net[0], net[1], nn.Conv2d(5, 3, 3), [0])
    with pytest.raises(ValueError, match="grouped"):
        surgery.remove_filters_by_hand(net[0], net[1], nn.Conv2d(4, 4, 3, groups=2), [0])
