"""Parameters, MACs (closed form and a hook-based reference), latency scope, and the summary table."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pruning_lib import metrics, models, selection, surgery
from pruning_lib.criteria import l1_norm, score_model

pytestmark = pytest.mark.usefixtures("single_thread")

EXAMPLE = torch.zeros(1, 1, 28, 28)


def tiny_net() -> nn.Sequential:
    """3×16×16 → conv 3→8 (same) → conv 8→16 stride 2 → depthwise 16 → pointwise 16→4 → Linear 256→10."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(16),
        nn.Conv2d(16, 16, 3, padding=1, groups=16),
        nn.Conv2d(16, 4, 1),
        nn.Flatten(),
        nn.Linear(4 * 8 * 8, 10),
    )


def hook_reference_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Σ over convs of B·H_out·W_out·C_out·(C_in/groups)·kh·kw, plus B·in·out per Linear, from hooks."""
    total = []

    def hook(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        if isinstance(module, nn.Conv2d):
            b, c_out, h, w = output.shape
            kh, kw = module.kernel_size
            total.append(b * h * w * c_out * (module.in_channels // module.groups) * kh * kw)
        else:
            total.append(output.shape[0] * module.in_features * module.out_features)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for h in handles:
            h.remove()
    return sum(total)


# --- count_params -----------------------------------------------------------------------------------

def test_count_params_hand_case():
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(4, 5))
    # conv 3·2·3·3 + 3 = 57; BN γ, β = 6 (running stats are buffers); Linear 4·5 + 5 = 25
    assert metrics.count_params(net) == 57 + 6 + 25


def test_count_params_of_vgg16_slim_first_conv_unit():
    vgg = models.build("vgg16_slim")
    assert metrics.count_params(vgg.features.conv1) == 16 * 1 * 9 + 2 * 16


# --- count_macs ----------------------------------------------------------------------------------------

def test_count_macs_closed_form_on_a_small_net():
    net = tiny_net()
    x = torch.zeros(2, 3, 16, 16)
    per_image = (16 * 16 * 3 * 8 * 9            # conv 3→8, 16×16 out
                 + 8 * 8 * 8 * 16 * 9           # stride 2: 8×8 out
                 + 8 * 8 * 16 * 16 * 9 // 16    # depthwise: groups = 16
                 + 8 * 8 * 16 * 4               # pointwise 1×1
                 + 256 * 10)                    # Linear
    assert metrics.count_macs(net, x) == 2 * per_image
    assert hook_reference_macs(net, x) == 2 * per_image


@pytest.mark.parametrize("name", ["vgg16_slim", "resnet20", "mobilenet_v1_slim"])
def test_count_macs_matches_hook_reference_on_the_zoo(name):
    model = models.build(name)
    assert metrics.count_macs(model, EXAMPLE) == hook_reference_macs(model, EXAMPLE)


@pytest.mark.parametrize("training", [True, False])
def test_count_macs_restores_the_mode(training):
    net = tiny_net().train(training)
    metrics.count_macs(net, torch.zeros(1, 3, 16, 16))
    assert net.training is training
    assert all(m.training is training for m in net.modules())


def test_count_macs_of_uniformly_pruned_vgg_matches_the_closed_form():
    vgg = models.build("vgg16_slim").eval()
    plan = selection.plan_uniform(score_model(vgg, l1_norm), 0.5)
    pruned = surgery.apply_plan(vgg, plan, EXAMPLE)
    full = [16, 16, 32, 32, 64, 64, 64, 128, 128, 128, 128, 128, 128]
    widths = [n - n // 2 for n in full]                                # floor(0.5·n) removed
    sides = [28, 28, 14, 14, 7, 7, 7, 4, 4, 4, 2, 2, 2]                # pools use ceil_mode
    c_in = [1] + widths[:-1]
    closed = sum(s * s * ci * co * 9 for s, ci, co in zip(sides, c_in, widths, strict=True)) + widths[-1] * 10
    assert metrics.count_macs(pruned, EXAMPLE) == closed
    full_closed = sum(s * s * ci * co * 9 for s, ci, co in
                      zip(sides, [1] + full[:-1], full, strict=True)) + full[-1] * 10
    assert metrics.count_macs(vgg, EXAMPLE) == full_closed


# --- latency ----------------------------------------------------------------------------------------------

def test_measure_latency_fields_and_quartile_order():
    net = tiny_net().train()
    lat = metrics.measure_latency(net, torch.zeros(3, 3, 16, 16), repeats=5, warmup=1)
    assert (lat.repeats, lat.batch, lat.threads) == (5, 3, torch.get_num_threads())
    assert 0 < lat.q1_ms <= lat.median_ms <= lat.q3_ms
    assert net.training                                   # mode restored
    assert "1 thread(s)" in lat.scope and "batch 3" in lat.scope and "median of 5" in lat.scope
    assert lat.scope in str(lat)


def test_measure_latency_single_repeat():
    lat = metrics.measure_latency(tiny_net(), torch.zeros(1, 3, 16, 16), repeats=1, warmup=0)
    assert lat.repeats == 1
    assert lat.q1_ms == lat.median_ms == lat.q3_ms


def test_threads_argument_is_used_then_restored():
    before = torch.get_num_threads()
    lat = metrics.measure_latency(tiny_net(), torch.zeros(1, 3, 16, 16), repeats=2, warmup=0, threads=2)
    assert lat.threads == 2
    assert "2 thread(s)" in lat.scope
    assert torch.get_num_threads() == before


def test_compare_latency_times_every_model_and_restores_modes():
    a, b = tiny_net().train(), tiny_net().eval()
    result = metrics.compare_latency({"a": a, "b": b}, torch.zeros(2, 3, 16, 16), repeats=3, warmup=1)
    assert list(result) == ["a", "b"]
    for lat in result.values():
        assert (lat.repeats, lat.batch) == (3, 2)
        assert lat.q1_ms <= lat.median_ms <= lat.q3_ms
    assert a.training and not b.training


@pytest.mark.parametrize(("repeats", "warmup"), [(0, 1), (-3, 1), (5, -1)])
def test_bad_repeats_or_warmup_is_a_value_error(repeats, warmup):
    before = torch.get_num_threads()
    with pytest.raises(ValueError, match="repeats >= 1 and warmup >= 0"):
        metrics.measure_latency(tiny_net(), torch.zeros(1, 3, 16, 16), repeats=repeats, warmup=warmup,
                                threads=2)
    assert torch.get_num_threads() == before


# --- summary ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def baseline_and_pruned() -> tuple[nn.Module, nn.Module]:
    vgg = models.build("vgg16_slim").eval()
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        pruned = surgery.apply_plan(vgg, selection.plan_uniform(score_model(vgg, l1_norm), 0.5), EXAMPLE)
    finally:
        torch.set_num_threads(old)
    return vgg, pruned


def test_summary_rows_and_ratios(baseline_and_pruned):
    vgg, pruned = baseline_and_pruned
    s = metrics.summary({"baseline": vgg, "pruned 50%": pruned}, EXAMPLE)
    assert [r["model"] for r in s.rows] == ["baseline", "pruned 50%"]
    assert s.rows[0]["macs"] == metrics.count_macs(vgg, EXAMPLE)
    assert s.rows[1]["params"] == metrics.count_params(pruned)
    assert s.rows[0]["macs_vs_first"] == 1.0
    assert 0 < s.ratio("macs") < 1 and 0 < s.ratio("params") < 1
    assert s.rows[1]["macs_vs_first"] == pytest.approx(s.ratio("macs"))
    assert s.rows[0]["accuracy"] is None and s.rows[0]["latency_ms"] is None
    md = s._repr_markdown_()
    assert md.splitlines()[0] == "| model | params | macs | macs_vs_first |"
    assert md.splitlines()[1] == "|---|---|---|---|"
    assert f"{s.rows[0]['macs']:,}" in md
    assert "(1, 1, 28, 28)" in md                       # the MAC note gives its input shape
    assert str(s) == md
    assert list(s.to_frame().index) == ["baseline", "pruned 50%"]


def test_summary_with_accuracy_and_latency(baseline_and_pruned):
    vgg, pruned = baseline_and_pruned
    acc = {"baseline": {"accuracy": 0.9, "n": 200}, "pruned": {"accuracy": 0.85, "n": 200}}
    s = metrics.summary({"baseline": vgg, "pruned": pruned}, EXAMPLE, accuracy=acc,
                        latency_input=torch.zeros(2, 1, 28, 28), repeats=2)
    assert [(r["accuracy"], r["n"]) for r in s.rows] == [(0.9, 200), (0.85, 200)]
    assert all(r["latency_ms"] > 0 for r in s.rows)
    assert any(n.startswith("latency: CPU") and "batch 2" in n for n in s.notes)
    header = s._repr_markdown_().splitlines()[0]
    assert "accuracy" in header and "latency_ms" in header
