"""Per-layer sensitivity (Li et al. 2017) and the BatchNorm scale invariance of norm criteria.

``selection.sensitivity_ratios`` / ``plan_from_sensitivity`` are checked on hand-made scans whose
answers can be read off by hand; ``experiments.sensitivity_scan`` on a tiny ResNet (a coupled group
is pruned together, the input model is untouched); ``surgery.rescale_filter`` on a conv–BN net.
"""

from __future__ import annotations

from collections import OrderedDict

import matplotlib
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from pruning_lib import criteria, experiments, models, selection, surgery

matplotlib.use("Agg")
from pruning_lib.lab import plots  # noqa: E402  (after the backend is chosen)

pytestmark = pytest.mark.usefixtures("single_thread")


def scan_record(layer: str, ratio: float, recalibrated: float, *, pruned: float = 0.1,
                baseline: float = 0.90) -> dict:
    return {"layer": layer, "ratio": ratio, "accuracy": pruned, "recalibrated_accuracy": recalibrated,
            "baseline_accuracy": baseline}


# a: robust up to 0.5; b: sensitive at once; c: a dip at 0.5, then a lucky point at 0.75
HAND_SCAN = [scan_record("a", 0.25, 0.90), scan_record("a", 0.5, 0.885), scan_record("a", 0.75, 0.80),
             scan_record("b", 0.25, 0.85), scan_record("b", 0.5, 0.70), scan_record("b", 0.75, 0.50),
             scan_record("c", 0.25, 0.89), scan_record("c", 0.5, 0.86), scan_record("c", 0.75, 0.89)]


def test_sensitivity_ratios_hand_scan():
    # drops: a 0, 0.015, 0.10; b 0.05, 0.20, 0.40; c 0.01, 0.04, 0.01
    assert selection.sensitivity_ratios(HAND_SCAN, 0.02) == {"a": 0.5, "b": 0.0, "c": 0.25}
    assert selection.sensitivity_ratios(HAND_SCAN, 0.02, monotone=False) == {"a": 0.5, "b": 0.0, "c": 0.75}
    assert selection.sensitivity_ratios(HAND_SCAN, 0.0) == {"a": 0.25, "b": 0.0, "c": 0.0}
    assert selection.sensitivity_ratios(HAND_SCAN, 0.5) == {"a": 0.75, "b": 0.75, "c": 0.75}
    # against another baseline (0.95): every drop grows by 0.05 (a: 0.05, 0.065, 0.15)
    assert selection.sensitivity_ratios(HAND_SCAN, 0.07, baseline=0.95) == {"a": 0.5, "b": 0.0, "c": 0.25}
    # as pruned (0.1 everywhere, a drop of 0.8) nothing is tolerated
    assert set(selection.sensitivity_ratios(HAND_SCAN, 0.1, metric="accuracy").values()) == {0.0}


def test_a_larger_tolerance_never_lowers_a_ratio():
    tolerances = [0.0, 0.01, 0.02, 0.05, 0.1, 0.3, 1.0]
    chosen = [selection.sensitivity_ratios(HAND_SCAN, t) for t in tolerances]
    for low, high in zip(chosen, chosen[1:], strict=False):
        assert all(high[layer] >= low[layer] for layer in low)


def test_sensitivity_ratios_refuses_bad_input():
    with pytest.raises(ValueError, match="tolerance"):
        selection.sensitivity_ratios(HAND_SCAN, -0.01)
    with pytest.raises(ValueError, match="no records"):
        selection.sensitivity_ratios([], 0.02)


def test_plan_from_sensitivity_hand_scan():
    scores = {"a": torch.tensor([4.0, 1.0, 3.0, 2.0]), "b": torch.tensor([1.0, 2.0, 3.0, 4.0]),
              "c": torch.tensor([2.0, 1.0, 4.0, 3.0, 6.0, 5.0, 8.0, 7.0]), "d": torch.tensor([1.0, 2.0])}
    plan = selection.plan_from_sensitivity(HAND_SCAN, 0.02, scores)
    # a at 0.5: the two lowest (1 and 3); b at 0: none; c at 0.25: the two lowest of 8; d not scanned
    assert plan == {"removed": {"a": [1, 3], "b": [], "c": [0, 1], "d": []}, "coupled": []}


def test_plan_from_sensitivity_prunes_a_coupled_group_together():
    scores = {"x": torch.tensor([1.0, 2.0, 3.0, 4.0]), "y": torch.tensor([4.0, 3.0, 2.0, 1.0]),
              "z": torch.tensor([1.0, 2.0, 3.0, 4.0])}
    scan = [scan_record("x", 0.5, 0.90)]      # the group {x, y} is scanned under its first member
    plan = selection.plan_from_sensitivity(scan, 0.02, scores, groups=[["x", "y"]])
    assert plan["coupled"] == [["x", "y"]]
    assert plan["removed"]["x"] == plan["removed"]["y"] and len(plan["removed"]["x"]) == 2
    assert plan["removed"]["z"] == []


def test_plan_from_ratios_refuses_different_ratios_in_one_group():
    scores = {"x": torch.ones(4), "y": torch.ones(4)}
    with pytest.raises(ValueError, match="different ratios"):
        selection.plan_from_ratios(scores, {"x": 0.5, "y": 0.25}, groups=[["x", "y"]])
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        selection.plan_from_ratios(scores, {"x": 1.0})


@pytest.fixture(scope="module")
def tiny_resnet_scan():
    torch.manual_seed(0)
    model = models.build("resnet", depth=8).eval()
    example = torch.zeros(1, 1, 28, 28)
    groups = surgery.coupled_groups(model, example)
    g = torch.Generator().manual_seed(0)
    ds = TensorDataset(torch.randn(24, 1, 28, 28, generator=g), torch.randint(0, 10, (24,), generator=g))
    setup = experiments.SweepSetup(example, DataLoader(ds, batch_size=12), groups,
                                   recalibrate_loader=DataLoader(ds, batch_size=12), recalibrate_images=12)
    scores = criteria.score_model(model, criteria.l1_norm)
    group = next(g for g in groups if len(g) > 1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = experiments.sensitivity_scan(model, scores, [0.25, 0.5], setup,
                                        layers=[group[-1], "layer1.0.conv1.conv"])
    return model, before, rows, group, setup, scores


def test_scan_prunes_a_coupled_group_together_and_one_unit_at_a_time(tiny_resnet_scan):
    model, _before, rows, group, setup, _scores = tiny_resnet_scan
    assert len(rows) == 2 * 2                                        # two units × two ratios
    assert {r["layer"] for r in rows} == {group[0], "layer1.0.conv1.conv"}
    widths = dict(((n, m.out_channels) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)))
    for r in rows:
        n = widths[r["layer"]]
        assert r["filters"] == n and r["removed"] == int(r["ratio"] * n)
        assert r["widths"] == {m: n - r["removed"] for m in r["members"]}
        assert 0 < r["macs_fraction"] < 1 and r["n"] == 24
        assert r["baseline_accuracy"] == rows[0]["baseline_accuracy"]
    coupled = [r for r in rows if r["layer"] == group[0]]
    assert all(r["members"] == list(group) for r in coupled)
    # a larger ratio of the same unit removes more and costs fewer MACs
    by_ratio = sorted(coupled, key=lambda r: r["ratio"])
    assert by_ratio[0]["macs"] > by_ratio[1]["macs"]


def test_scan_leaves_the_model_alone_and_feeds_plan_from_sensitivity(tiny_resnet_scan):
    model, before, rows, group, _setup, scores = tiny_resnet_scan
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    plan = selection.plan_from_sensitivity(rows, 1.0, scores, groups=[group])   # every drop tolerated
    assert len(plan["removed"][group[0]]) == len(plan["removed"][group[-1]]) == widths_half(model, group[0])
    assert plan["removed"]["layer1.0.conv1.conv"] and not plan["removed"]["layer3.0.conv1.conv"]


def widths_half(model: nn.Module, name: str) -> int:
    return dict(model.named_modules())[name].out_channels // 2


def test_scan_refuses_unknown_layers_and_bad_ratios(tiny_resnet_scan):
    model, _before, _rows, _group, setup, scores = tiny_resnet_scan
    with pytest.raises(KeyError, match="no scores"):
        experiments.sensitivity_scan(model, scores, [0.5], setup, layers=["nope"])
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        experiments.sensitivity_scan(model, scores, [1.0], setup)


def test_plot_sensitivity_draws_one_line_per_layer():
    fig = plots.plot_sensitivity(HAND_SCAN, tolerance=0.02)
    assert len(fig.axes) == 2
    for ax in fig.axes:
        assert len(ax.lines) == 3 + 2                        # three layers, unpruned, tolerance


def conv_bn_net() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(OrderedDict(c1=models.ConvBNReLU(1, 4), c2=models.ConvBNReLU(4, 3),
                                    pool=nn.AdaptiveAvgPool2d(1), flat=nn.Flatten(), fc=nn.Linear(3, 2)))
    with torch.no_grad():                                   # statistics that are not the defaults
        for bn in (net.c1.bn, net.c2.bn):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
    return net.eval()


@pytest.mark.parametrize("alpha", [0.1, 3.0, 25.0])
def test_rescale_filter_keeps_the_function_and_scales_the_norm(alpha):
    net = conv_bn_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    new = surgery.rescale_filter(net, "c1.conv", 2, alpha)
    x = torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(new(x), net(x), atol=1e-5, rtol=1e-5)
    l1_old, l1_new = criteria.l1_norm(net.c1.conv.weight), criteria.l1_norm(new.c1.conv.weight)
    torch.testing.assert_close(l1_new[2], alpha * l1_old[2])
    torch.testing.assert_close(l1_new[[0, 1, 3]], l1_old[[0, 1, 3]], atol=0, rtol=0)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_rescale_filter_refuses_bad_arguments():
    net = conv_bn_net()
    with pytest.raises(ValueError, match="alpha"):
        surgery.rescale_filter(net, "c1.conv", 0, -1.0)
    with pytest.raises(ValueError, match="index"):
        surgery.rescale_filter(net, "c1.conv", 4, 2.0)
    with pytest.raises(KeyError, match="BatchNorm2d"):
        surgery.rescale_filter(net, "c1.conv", 0, 2.0, bn="c2.conv")
