"""Parameters, MACs (closed form and a hook-based reference), latency scope, and the summary table."""

from __future__ import annotations

import copy

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


# --- conv_macs and count_macs(exclude=...) ---------------------------------------------------------------

def conv_only_net() -> nn.Sequential:
    """1×6×7 → conv 1→4 3×3 (same) → conv 4→3 3×3 stride 2 → conv 3→5 1×1 (all bias-free)."""
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.ReLU(),
                         nn.Conv2d(4, 3, 3, stride=2, padding=1, bias=False),
                         nn.Conv2d(3, 5, 1, bias=False))


def test_conv_macs_hand_formula_and_sum_equals_count_macs():
    net = conv_only_net()
    x = torch.zeros(2, 1, 6, 7)
    # per image: 6·7 out · 4·1·9; stride 2 → 3·4 out · 3·4·9; 3·4 out · 5·3·1; batch of 2
    expected = {"0": 2 * 6 * 7 * 4 * 1 * 9, "2": 2 * 3 * 4 * 3 * 4 * 9, "3": 2 * 3 * 4 * 5 * 3}
    macs = metrics.conv_macs(net, x)
    assert macs == expected and list(macs) == ["0", "2", "3"]          # forward order
    assert sum(macs.values()) == metrics.count_macs(net, x) == hook_reference_macs(net, x)


def test_conv_macs_leaves_no_hooks_and_restores_the_mode():
    net = conv_only_net().train()
    metrics.conv_macs(net, torch.zeros(1, 1, 6, 7))
    assert net.training
    assert all(not m._forward_hooks for m in net.modules())


@pytest.mark.parametrize("name", ["vgg16_slim", "mobilenet_v1_slim"])
def test_conv_macs_matches_the_hook_reference_per_layer(name):
    model = models.build(name)
    macs = metrics.conv_macs(model, EXAMPLE)
    linear = sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, nn.Linear))
    assert sum(macs.values()) + linear == hook_reference_macs(model, EXAMPLE)
    assert list(macs) == [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def test_count_macs_exclude_one_layer_of_a_sequential():
    net = conv_only_net()
    x = torch.zeros(1, 1, 6, 7)
    macs = metrics.conv_macs(net, x)
    assert metrics.count_macs(net, x, exclude=("2",)) == macs["0"] + macs["3"]
    assert metrics.count_macs(net, x, exclude=()) == sum(macs.values())


@pytest.fixture(scope="module")
def audio_models():
    return pytest.importorskip("pruning_lib.audio.models")


@pytest.fixture(scope="module")
def dcase(audio_models) -> nn.Module:
    torch.manual_seed(0)
    return models.build("dcase21_net").eval()


def test_count_macs_excluding_the_frontend_is_the_cnn_on_the_log_mels(dcase):
    x = torch.zeros(1, 8000)
    cnn = nn.Sequential(dcase.features, dcase.classifier)
    logmel = dcase.frontend(x)
    assert logmel.shape == (1, 1, 40, 126)
    cnn_macs = metrics.count_macs(cnn, logmel)
    assert metrics.count_macs(dcase, x, exclude=("frontend",)) == cnn_macs
    # the front end's only counted product is the mel filterbank: 40 bands × 129 bins × 126 frames
    assert metrics.count_macs(dcase, x) - cnn_macs == 40 * 129 * 126
    # a nested name: conv2's MACs leave the total, the rest stays
    conv2 = metrics.conv_macs(dcase, x)["features.conv2.conv"]
    assert metrics.count_macs(dcase, x, exclude=("frontend", "features.conv2")) == cnn_macs - conv2


@pytest.mark.parametrize("bad", [("nope",), ("frontend", "features.conv9"), ("",)])
def test_count_macs_unknown_exclude_name_is_a_key_error(dcase, bad):
    dcase.train()
    try:
        with pytest.raises(KeyError, match="exclude names no submodule"):
            metrics.count_macs(dcase, torch.zeros(1, 8000), exclude=bad)
        assert dcase.training                                  # mode restored despite the error
    finally:
        dcase.eval()


@pytest.mark.parametrize("exclude", [("features", "features.conv2"), ("frontend", "frontend")])
def test_count_macs_overlapping_exclude_names_leave_the_union_out(dcase, exclude):
    x = torch.zeros(1, 8000)
    outer = exclude[0]
    assert metrics.count_macs(dcase, x, exclude=exclude) == metrics.count_macs(dcase, x, exclude=(outer,))


# --- own_layer_saving and mac_reductions: the Interspeech'22 accounting ------------------------------------

PAPER_INPUT = torch.zeros(1, 499 * 64)                   # 1 + 31936 // 64 = 500 frames of 40 mels
PAPER_LAYERS = {"C1": "features.conv1.conv", "C2": "features.conv2.conv", "C3": "features.conv3.conv"}


@pytest.fixture(scope="module")
def paper_reductions(dcase, audio_models) -> dict[str, dict]:
    """{configuration: mac_reductions} for DCASE21_Net pruned to the published kept counts."""
    from pruning_lib.lab import published

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        keep = {PAPER_LAYERS[c]: k for c, k in published.INTERSPEECH22_KEPT.items()}
        full = selection.plan_keep_counts(score_model(dcase, l1_norm), keep)
        out = {}
        for config, convs in published.LAYER_CONFIGS.items():
            plan = selection.restrict_plan(full, [PAPER_LAYERS[c] for c in convs])
            pruned = surgery.apply_plan(dcase, plan, audio_models.example_input())
            out[config] = metrics.mac_reductions(dcase, pruned, plan, PAPER_INPUT, exclude=("frontend",))
    finally:
        torch.set_num_threads(old)
    return out


def test_dcase21_net_on_the_paper_input_has_the_published_baseline_macs(dcase):
    assert dcase.frontend(PAPER_INPUT).shape == (1, 1, 40, 500)
    convs = metrics.conv_macs(dcase, PAPER_INPUT)
    # same padding, 40×500 → conv1, conv2; MaxPool 5 → 8×100 → conv3
    assert convs == {"features.conv1.conv": 40 * 500 * 16 * 1 * 49,
                     "features.conv2.conv": 40 * 500 * 16 * 16 * 49,
                     "features.conv3.conv": 8 * 100 * 32 * 16 * 49}
    assert sum(convs.values()) == 286_630_400
    assert metrics.count_macs(dcase, PAPER_INPUT, exclude=("frontend",)) == 286_630_400 + 64 * 100 + 100 * 10
    assert 64 * 100 + 100 * 10 == 7_400


def test_own_layer_reductions_match_the_published_figure_labels(paper_reductions):
    from pruning_lib.lab import published

    rows = {r["config"]: r for r in published.INTERSPEECH22_DCASE21 if r["config"] != "none"}
    assert set(rows) == set(paper_reductions)
    for config, r in paper_reductions.items():
        assert r["macs"] == 286_637_800, config
        assert r["own_reduction"] * 100 == pytest.approx(rows[config]["mac_label"], abs=0.1), config


@pytest.mark.parametrize(("config", "percent"), [("C2", 29.5), ("C1", 29.1), ("C1+C2+C3", 51.6)])
def test_with_next_layer_reductions_match_the_reference_notes(paper_reductions, config, percent):
    assert paper_reductions[config]["with_next_reduction"] * 100 == pytest.approx(percent, abs=0.1)


def test_mac_reductions_fields_are_consistent(paper_reductions):
    for config, r in paper_reductions.items():
        assert r["own_reduction"] <= r["with_next_reduction"], config
        assert r["macs_own"] == round(r["macs"] * (1 - r["own_reduction"])), config
        assert r["with_next_reduction"] == pytest.approx((r["macs"] - r["macs_pruned"]) / r["macs"])
    # C1 alone: 5 of conv1's 16 filters, conv1 = 15,680,000 MACs; with the next layer, conv2 also
    # loses 5 of its 16 input channels (250,880,000 MACs)
    c1 = paper_reductions["C1"]
    assert c1["macs"] - c1["macs_own"] == 15_680_000 * 5 // 16
    assert c1["macs"] - c1["macs_pruned"] == (15_680_000 + 250_880_000) * 5 // 16


def reference_own_saving(model: nn.Module, plan: dict, x: torch.Tensor) -> float:
    """Σ over pruned convs of H_out·W_out·C_in·kh·kw per filter × removed filters (from shapes)."""
    modules = dict(model.named_modules())
    out, handles = {}, []
    for name in plan["removed"]:
        handles.append(modules[name].register_forward_hook(
            lambda m, i, o, name=name: out.__setitem__(name, o.shape)))
    with torch.no_grad():
        model.eval()(x)
    for h in handles:
        h.remove()
    total = 0
    for name, idx in plan["removed"].items():
        conv = modules[name]
        b, _, h, w = out[name]
        kh, kw = conv.kernel_size
        total += b * h * w * conv.in_channels // conv.groups * kh * kw * len(idx)
    return total


@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.75])
def test_own_layer_saving_matches_a_per_filter_reference_and_never_exceeds_the_real_saving(ratio):
    vgg = models.build("vgg16_slim").eval()
    plan = selection.plan_uniform(score_model(vgg, l1_norm), ratio)
    saved = metrics.own_layer_saving(vgg, plan, EXAMPLE)
    assert saved == pytest.approx(reference_own_saving(vgg, plan, EXAMPLE))
    r = metrics.mac_reductions(vgg, surgery.apply_plan(vgg, plan, EXAMPLE), plan, EXAMPLE)
    assert r["own_reduction"] <= r["with_next_reduction"]
    assert r["macs"] == metrics.count_macs(vgg, EXAMPLE)


def test_own_layer_saving_of_an_empty_plan_is_zero():
    vgg = models.build("vgg16_slim")
    assert metrics.own_layer_saving(vgg, {"removed": {}, "coupled": []}, EXAMPLE) == 0


@pytest.mark.parametrize("layer", ["features.conv1", "features.nope.conv", "classifier.1"])
def test_own_layer_saving_unknown_layer_is_a_key_error(layer):
    vgg = models.build("vgg16_slim").train()
    plan = {"removed": {"features.conv2.conv": [0], layer: [0]}, "coupled": []}
    before = copy.deepcopy(plan)
    with pytest.raises(KeyError, match="not convs of the model"):
        metrics.own_layer_saving(vgg, plan, EXAMPLE)
    with pytest.raises(KeyError, match="not convs of the model"):
        metrics.mac_reductions(vgg, vgg, plan, EXAMPLE)
    assert plan == before and vgg.training
