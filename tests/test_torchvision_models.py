"""Models a user brings: every public entry point of the pruning path on torchvision CNNs.

Each model either prunes with pruned ≡ masked (eval mode, BatchNorm statistics far from identity,
output shape unchanged) or is refused with a clear error; nothing in between. Untrained
(``weights=None``), ``num_classes=10``, 64x64 inputs; each model is built and pruned once.

| model | what happens |
|---|---|
| resnet18, mobilenet_v3_small, efficientnet_b0, densenet121, googlenet | every conv prunable |
| squeezenet1_0 | prunes; its classifier conv (the output) is refused |
| regnet_x_400mf | prunes the residual groups; convs feeding grouped convs are refused |
| convnext_tiny | refused: every conv feeds a LayerNorm |
| shufflenet_v2_x0_5 | refused: Torch-Pruning cannot trace the channel shuffle |
"""

from __future__ import annotations

import copy
import functools
import math

import pytest
import torch
import torchvision.models as tvm
from torch import Tensor, nn

from pruning_lib import metrics, models, selection, surgery
from pruning_lib.criteria import l1_norm, score_model

from support import bn_off_identity

pytestmark = [pytest.mark.usefixtures("single_thread"),
              pytest.mark.filterwarnings("ignore:Unwrapped parameters detected")]

RATIO = 0.3
EXAMPLE = torch.zeros(1, 3, 64, 64)
X = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(7))
PRUNES = ["resnet18", "mobilenet_v3_small", "efficientnet_b0", "densenet121", "googlenet",
          "squeezenet1_0", "regnet_x_400mf"]
# model → (what the refusal must say, for a plan over every conv)
PARTLY_REFUSED = {
    "squeezenet1_0": r"filters \[.*\] of classifier\.1: its channels are the network's output",
    "regnet_x_400mf": r"is a grouped conv \(groups=\d+, 16 input channels per group\)",
    "convnext_tiny": r"of features\.0\.0: 'features\.0\.1' \(LayerNorm2d\) normalises across channels",
}


@torch.no_grad()
def build(name: str) -> nn.Module:
    """A torchvision model in eval mode, seeded, with BatchNorms far from identity."""
    kwargs = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = getattr(tvm, name)(num_classes=10, weights=None, **kwargs)
    return bn_off_identity(model, seed=1)


def snapshot(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def built() -> functools._lru_cache_wrapper:
    """name → the model of ``build`` (each built once per module; tests never modify it)."""
    return functools.cache(build)


@pytest.fixture(scope="module")
def pruned(built: functools._lru_cache_wrapper) -> functools._lru_cache_wrapper:
    """name → dict of the model, its state before, groups, plan, pruned and masked models (once)."""

    @functools.cache
    def run(name: str) -> dict:
        model = built(name)
        before = snapshot(model)
        groups = surgery.coupled_groups(model, EXAMPLE)
        scores = score_model(model, l1_norm, layers=[conv for g in groups for conv in g])
        plan = selection.plan_uniform(scores, RATIO, groups=groups, sizes=models.conv_widths(model))
        return {"model": model, "before": before, "groups": groups, "plan": plan,
                "pruned": surgery.apply_plan(model, plan, EXAMPLE),
                "masked": surgery.mask_plan(model, plan, EXAMPLE)}

    return run


@pytest.mark.parametrize("name", PRUNES)
def test_pruned_equals_masked_and_keeps_the_output_shape(pruned, name):
    r = pruned(name)
    with torch.no_grad():
        full, got, want = r["model"](X), r["pruned"](X), r["masked"](X)
    assert got.shape == want.shape == full.shape == (2, 10)
    scale = float(want.abs().max())
    torch.testing.assert_close(got, want, atol=1e-4 * scale, rtol=0)
    assert float((got - full).abs().max()) > 1e-2 * scale        # pruning did change the function


@pytest.mark.parametrize("name", PRUNES)
def test_params_and_macs_go_down_and_every_offered_group_loses_30_percent(pruned, name):
    r = pruned(name)
    model, small = r["model"], r["pruned"]
    assert metrics.count_params(small) < metrics.count_params(model)
    assert metrics.count_macs(small, EXAMPLE) < metrics.count_macs(model, EXAMPLE)
    assert metrics.count_params(r["masked"]) == metrics.count_params(model)
    widths, new = models.conv_widths(model), dict(small.named_modules())
    for group in r["groups"]:
        for conv in group:
            lost = widths[conv] - new[conv].out_channels
            assert lost == math.floor(RATIO * widths[conv]) == len(r["plan"]["removed"][conv]), conv


@pytest.mark.parametrize("name", PRUNES)
def test_the_input_model_is_untouched(pruned, name):
    r = pruned(name)
    after = r["model"].state_dict()
    assert list(after) == list(r["before"])
    for key, value in after.items():
        torch.testing.assert_close(value, r["before"][key], atol=0, rtol=0, msg=key)
    assert not r["model"].training


@pytest.mark.parametrize(("name", "expected"), [
    ("resnet18", set()), ("mobilenet_v3_small", set()), ("efficientnet_b0", set()),
    ("densenet121", set()), ("googlenet", set()), ("squeezenet1_0", {"classifier.1"}),
])
def test_only_the_output_conv_is_refused(pruned, name, expected):
    r = pruned(name)
    offered = {conv for g in r["groups"] for conv in g}
    assert set(models.prunable_convs(r["model"])) - offered == expected


def test_regnet_offers_the_residual_groups_and_refuses_convs_before_grouped_convs(pruned):
    r = pruned("regnet_x_400mf")
    refused = surgery.refused_convs(r["model"], EXAMPLE)
    offered = {conv for g in r["groups"] for conv in g}
    assert offered.isdisjoint(refused)
    assert offered | set(refused) == set(models.prunable_convs(r["model"]))
    assert {conv.rsplit(".", 2)[-2] for conv in refused} == {"a"}     # each block's 1x1 conv "f.a.0"
    assert all("is a grouped conv" in why for why in refused.values())
    assert any(len(g) > 1 for g in r["groups"])                          # residual adds are coupled


@pytest.mark.parametrize(("name", "match"), PARTLY_REFUSED.items())
def test_a_plan_over_every_conv_is_refused_and_nothing_changes(built, name, match):
    model = built(name)
    before = snapshot(model)
    groups = surgery.coupled_groups(model, EXAMPLE)
    plan = selection.plan_uniform(score_model(model, l1_norm), RATIO, groups=groups)
    for apply in (surgery.apply_plan, surgery.mask_plan):
        with pytest.raises(ValueError, match=match):
            apply(model, plan, EXAMPLE)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key], atol=0, rtol=0, msg=key)


def test_convnext_offers_no_conv(built):
    model = built("convnext_tiny")
    assert surgery.coupled_groups(model, EXAMPLE) == []
    refused = surgery.refused_convs(model, EXAMPLE)
    assert sorted(refused) == sorted(models.prunable_convs(model))
    assert all("normalises across channels" in why for why in refused.values())
    assert metrics.count_macs(model, EXAMPLE) > 0                        # still measurable


def test_shufflenet_is_refused_by_every_entry_point(built):
    model = built("shufflenet_v2_x0_5")
    before = snapshot(model)
    plan = selection.plan_uniform(score_model(model, l1_norm), RATIO)
    calls = [lambda: surgery.coupled_groups(model, EXAMPLE),
             lambda: surgery.refused_convs(model, EXAMPLE),
             lambda: surgery.apply_plan(model, plan, EXAMPLE),
             lambda: surgery.mask_plan(model, copy.deepcopy(plan), EXAMPLE)]
    for call in calls:
        with pytest.raises(ValueError, match="cannot trace ShuffleNetV2: .*channel shuffle"):
            call()
    assert metrics.count_macs(model, EXAMPLE) > 0
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key], atol=0, rtol=0, msg=key)
