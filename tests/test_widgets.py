"""The "Try it" explorer: its callbacks return (and store) what ``prune_and_measure`` computes.

Headless, widget output stays empty, so the tests read ``explorer.results`` and the read-out."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from pruning_lib import experiments, metrics, models, selection, surgery  # noqa: E402
from pruning_lib.criteria import l1_norm, random_scores, score_model, similarity  # noqa: E402
from pruning_lib.lab import widgets  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_thread")

EXAMPLE = torch.zeros(1, 1, 28, 28)
VGG_WIDTHS = [16, 16, 32, 32, 64, 64, 64, 128, 128, 128, 128, 128, 128]


def snapshot(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def setup() -> dict:
    torch.manual_seed(0)
    model = models.build("vgg16_slim").eval()
    g = torch.Generator().manual_seed(1)
    images, labels = torch.randn(64, 1, 28, 28, generator=g), torch.randint(0, 10, (64,), generator=g)
    loader = DataLoader(TensorDataset(images, labels), batch_size=32)
    scores = {
        "l1": score_model(model, l1_norm),
        "random": score_model(model, lambda w: random_scores(w, generator=torch.Generator().manual_seed(5))),
    }
    return {"model": model, "loader": loader, "scores": scores}


def test_prune_and_measure_widths_and_counts(setup):
    model, scores, loader = setup["model"], setup["scores"]["l1"], setup["loader"]
    before = snapshot(model)
    r = experiments.prune_and_measure(model, scores, 0.25, example_input=EXAMPLE, loader=loader)
    assert list(r["widths"].values()) == [n - math.floor(0.25 * n) for n in VGG_WIDTHS]
    assert r["n"] == 64 and 0 <= r["correct"] <= 64 and r["accuracy"] == r["correct"] / 64
    assert r["macs"] < metrics.count_macs(model, EXAMPLE)
    assert r["params"] < metrics.count_params(model)
    assert r["plan"]["removed"]["features.conv1.conv"] == sorted(
        torch.sort(scores["features.conv1.conv"], stable=True).indices[:4].tolist())
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key], atol=0, rtol=0)


def test_explorer_callbacks_return_what_prune_and_measure_returns(setup):
    model, scores, loader = setup["model"], setup["scores"], setup["loader"]
    before = snapshot(model)
    explorer = widgets.pruning_explorer(model, scores, loader, EXAMPLE, ratio=0.5)

    # built and rendered once: one result (ratio 0.5, first criterion)
    assert len(explorer.results) == 1
    assert (explorer.results[0]["ratio"], explorer.results[0]["criterion"]) == (0.5, "l1")
    assert explorer.criterion.options == ("l1", "random")

    # the baseline is the unpruned model
    assert explorer.baseline["ratio"] == 0.0
    assert explorer.baseline["macs"] == metrics.count_macs(model, EXAMPLE)
    assert explorer.baseline["params"] == metrics.count_params(model)
    assert list(explorer.baseline["widths"].values()) == VGG_WIDTHS

    # moving the slider prunes again and updates the read-out
    explorer.ratio.value = 0.25
    assert len(explorer.results) == 2
    latest = explorer.results[-1]
    direct = experiments.prune_and_measure(model, scores["l1"], 0.25, example_input=EXAMPLE, loader=loader)
    assert (latest["ratio"], latest["criterion"]) == (0.25, "l1")
    for key in ("accuracy", "correct", "n", "macs", "params", "widths", "plan"):
        assert latest[key] == direct[key], key
    assert f"{direct['accuracy']:.1%}" in explorer.readout.value
    assert explorer.readout.value == widgets.readout_text(latest, explorer.baseline)

    # changing the criterion prunes with the other scores
    explorer.criterion.value = "random"
    assert len(explorer.results) == 3
    latest = explorer.results[-1]
    direct = experiments.prune_and_measure(model, scores["random"], 0.25, example_input=EXAMPLE,
                                           loader=loader)
    assert latest["criterion"] == "random"
    assert latest["plan"] == direct["plan"] and latest["accuracy"] == direct["accuracy"]
    assert latest["plan"] != explorer.results[-2]["plan"]

    # the model passed in was only copied
    assert not model.training
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key], atol=0, rtol=0)


def test_readout_text_hand_case():
    result = {"ratio": 0.25, "accuracy": 0.8125, "correct": 52, "n": 64, "macs": 2_500_000,
              "params": 123456, "seconds": 0.5}
    text = widgets.readout_text(result, {"macs": 10_000_000})
    assert "<b>25% of filters removed</b>" in text
    assert "<b>81.2%</b> (52/64 images)" in text
    assert "MACs <b>2.50 M</b> (25% of baseline)" in text
    assert "params 123,456" in text


def test_nystrom_compare_is_exact_from_kh_kw_landmarks():
    w = torch.randn(40, 8, 3, 3, generator=torch.Generator().manual_seed(0))
    low, exact = similarity.nystrom_compare(w, 4), similarity.nystrom_compare(w, 9)
    assert exact["error"] < 1e-8 and exact["identical"] and exact["differ"] == 0
    assert low["error"] > 1e-3
    assert exact["kept_exact"] == exact["kept_nystrom"] == low["kept_exact"]


def test_nystrom_explorer_updates_on_slider_and_layer_changes():
    g = torch.Generator().manual_seed(1)
    weights = {"a": torch.randn(20, 4, 3, 3, generator=g), "b": torch.randn(6, 4, 3, 3, generator=g)}
    box, results = widgets.nystrom_explorer(weights, m=3)
    assert len(results) == 1 and results[0]["layer"] == "a"
    slider = box.children[0].children[1]
    slider.value = 9
    assert results[-1] == {"layer": "a", **similarity.nystrom_compare(weights["a"], 9)}
    box.children[0].children[0].value = "b"
    assert results[-1]["layer"] == "b" and slider.max == 6


# --- pruning only some layers (layers=..., layer_picker=True) and macs_exclude ----------------------------

def test_prune_and_measure_one_layer_leaves_the_others_whole(setup):
    model, scores, loader = setup["model"], setup["scores"]["l1"], setup["loader"]
    before = snapshot(model)
    layer = "features.conv3.conv"
    r = experiments.prune_and_measure(model, scores, 0.5, example_input=EXAMPLE, loader=loader,
                                      layers=[layer])
    expected = dict(zip(scores, VGG_WIDTHS, strict=True))
    expected[layer] = 32 - 16
    assert r["widths"] == expected
    assert r["layers"] == [layer] and list(r["plan"]["removed"]) == [layer]
    assert r["plan"]["removed"][layer] == sorted(torch.sort(scores[layer], stable=True).indices[:16].tolist())
    # conv3 (32 → 16 filters, 14×14) and conv4's inputs (32 → 16) lose half their MACs
    conv3, conv4 = 14 * 14 * 16 * 32 * 9, 14 * 14 * 32 * 32 * 9
    assert r["macs"] == metrics.count_macs(model, EXAMPLE) - conv3 // 2 - conv4 // 2
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key], atol=0, rtol=0)


def test_prune_and_measure_no_layers_is_the_baseline(setup):
    model, scores, loader = setup["model"], setup["scores"]["l1"], setup["loader"]
    r = experiments.prune_and_measure(model, scores, 0.5, example_input=EXAMPLE, loader=loader, layers=[])
    assert r["plan"] == {"removed": {}, "coupled": []} and r["layers"] == []
    assert r["params"] == metrics.count_params(model)
    assert r["macs"] == metrics.count_macs(model, EXAMPLE)
    assert list(r["widths"].values()) == VGG_WIDTHS
    base = experiments.prune_and_measure(model, scores, 0.0, example_input=EXAMPLE, loader=loader)
    assert (r["accuracy"], r["correct"]) == (base["accuracy"], base["correct"])
    assert "pruned layers: none" in widgets.readout_text(r, base)


@pytest.mark.parametrize("layers", [["features.conv99.conv"], ["features.conv1.conv", "features.conv1"]])
def test_prune_and_measure_unknown_layer_is_a_key_error(setup, layers):
    model, scores, loader = setup["model"], setup["scores"]["l1"], setup["loader"]
    before = snapshot(model)
    with pytest.raises(KeyError, match="no scores for"):
        experiments.prune_and_measure(model, scores, 0.5, example_input=EXAMPLE, loader=loader, layers=layers)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key], atol=0, rtol=0)


def test_readout_text_names_the_pruned_layers_only_when_some_are_left_whole():
    widths = {"features.conv1.conv": 8, "features.conv2.conv": 16, "layer1.0.conv2.conv": 4}
    result = {"ratio": 0.5, "accuracy": 0.5, "correct": 1, "n": 2, "macs": 10, "params": 3,
              "seconds": 0.25, "widths": widths}
    base = {"macs": 20}
    assert "pruned layers" not in widgets.readout_text(result, base)                      # no "layers"
    assert "pruned layers" not in widgets.readout_text({**result, "layers": list(widths)}, base)
    text = widgets.readout_text({**result, "layers": ["features.conv1.conv", "layer1.0.conv2.conv"]}, base)
    assert " · pruned layers: conv1, conv2" in text
    assert text.index("pruned layers") < text.index(widgets.TIMING_SEPARATOR)  # timing stays last
    assert text.endswith(f"{widgets.TIMING_SEPARATOR}0.25 s")
    assert "pruned layers: none" in widgets.readout_text({**result, "layers": []}, base)


@pytest.fixture(scope="module")
def audio_setup() -> dict:
    audio_models = pytest.importorskip("pruning_lib.audio.models")
    torch.manual_seed(0)
    model = models.build("dcase21_net").eval()
    g = torch.Generator().manual_seed(2)
    waves, labels = 0.1 * torch.randn(20, 8000, generator=g), torch.randint(0, 10, (20,), generator=g)
    return {"model": model, "example": audio_models.example_input(),
            "loader": DataLoader(TensorDataset(waves, labels), batch_size=10),
            "scores": {"l1": score_model(model, l1_norm)}}


def test_prune_and_measure_macs_exclude_leaves_the_frontend_out(audio_setup):
    model, x = audio_setup["model"], audio_setup["example"]
    kwargs = {"example_input": x, "loader": audio_setup["loader"]}
    full = experiments.prune_and_measure(model, audio_setup["scores"]["l1"], 0.5, **kwargs)
    cnn = experiments.prune_and_measure(model, audio_setup["scores"]["l1"], 0.5, macs_exclude=("frontend",),
                                    **kwargs)
    assert cnn["plan"] == full["plan"] and cnn["params"] == full["params"]
    assert cnn["macs"] == full["macs"] - 40 * 129 * 126          # the mel filterbank product
    pruned = surgery.apply_plan(model, full["plan"], x)
    assert cnn["macs"] == metrics.count_macs(pruned, x, exclude=("frontend",))


def test_explorer_layer_picker_prunes_only_the_ticked_layers(audio_setup):
    model, scores, loader, x = (audio_setup[k] for k in ("model", "scores", "loader", "example"))
    before = snapshot(model)
    explorer = widgets.pruning_explorer(model, scores, loader, x, ratio=0.5, layer_picker=True,
                                        macs_exclude=("frontend",))
    convs = ["features.conv1.conv", "features.conv2.conv", "features.conv3.conv"]
    assert list(explorer.layers) == convs
    assert [box.description for box in explorer.layers.values()] == ["conv1", "conv2", "conv3"]
    assert all(box.value for box in explorer.layers.values())
    assert any(box in getattr(child, "children", ()) for child in explorer.widget.children
               for box in explorer.layers.values())                       # the picker is shown
    assert explorer.baseline["macs"] == metrics.count_macs(model, x, exclude=("frontend",))
    assert explorer.baseline["widths"] == {"features.conv1.conv": 16, "features.conv2.conv": 16,
                                           "features.conv3.conv": 32}
    assert len(explorer.results) == 1 and explorer.results[0]["layers"] == convs
    assert "pruned layers:" not in explorer.readout.value

    explorer.layers["features.conv2.conv"].value = False               # untick conv2: re-prunes
    assert len(explorer.results) == 2
    latest = explorer.results[-1]
    assert latest["layers"] == ["features.conv1.conv", "features.conv3.conv"]
    assert latest["widths"] == {"features.conv1.conv": 8, "features.conv2.conv": 16,
                                "features.conv3.conv": 16}
    assert latest["widths"]["features.conv2.conv"] == explorer.baseline["widths"]["features.conv2.conv"]
    assert "features.conv2.conv" not in latest["plan"]["removed"]
    assert "pruned layers: conv1, conv3" in explorer.readout.value
    assert explorer.readout.value == widgets.readout_text(latest, explorer.baseline)
    direct = experiments.prune_and_measure(model, scores["l1"], 0.5, example_input=x, loader=loader,
                                       layers=["features.conv1.conv", "features.conv3.conv"],
                                       macs_exclude=("frontend",))
    for key in ("accuracy", "correct", "n", "macs", "params", "widths", "plan"):
        assert latest[key] == direct[key], key

    explorer.layers["features.conv2.conv"].value = True                # tick it again: all pruned
    assert explorer.results[-1]["layers"] == convs
    assert explorer.results[-1]["plan"] == explorer.results[0]["plan"]
    assert "pruned layers:" not in explorer.readout.value
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key], atol=0, rtol=0)


def test_explorer_without_layer_picker_has_no_checkboxes(audio_setup):
    model, scores, loader, x = (audio_setup[k] for k in ("model", "scores", "loader", "example"))
    explorer = widgets.pruning_explorer(model, scores, loader, x, ratio=0.5)
    assert explorer.layers == {}
    assert explorer.results[-1]["layers"] == list(scores["l1"])
    assert "pruned layers:" not in explorer.readout.value
    assert explorer.baseline["macs"] == metrics.count_macs(model, x)        # frontend counted


# --- depth explorer (lesson 05) ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def depth_setup() -> dict:
    torch.manual_seed(0)
    model = models.ResNetCifar(depth=8).eval()
    g = torch.Generator().manual_seed(3)
    images, labels = torch.randn(40, 1, 16, 16, generator=g), torch.arange(40) % 10
    return {"model": model, "loader": DataLoader(TensorDataset(images, labels), batch_size=16),
            "example": torch.zeros(1, 1, 16, 16)}


def test_truncate_and_measure_matches_the_library_pipeline(depth_setup):
    from pruning_lib import depth, train

    model, loader, x = depth_setup["model"], depth_setup["loader"], depth_setup["example"]
    before = snapshot(model)
    r = experiments.truncate_and_measure(model, "layer2.0", fit_loader=loader, loader=loader, example_input=x)
    net = depth.fit_head(depth.truncate(model, "layer2.0"), loader)
    assert (r["block"], r["blocks_kept"]) == ("layer2.0", 2)
    assert (r["macs"], r["params"]) == (metrics.count_macs(net, x), metrics.count_params(net))
    assert r["correct"] == train.evaluate(net, loader)["correct"] and r["n"] == 40
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key], atol=0, rtol=0)


def test_depth_explorer_callback_returns_what_truncate_and_measure_returns(depth_setup):
    model, loader, x = depth_setup["model"], depth_setup["loader"], depth_setup["example"]
    box, results = widgets.depth_explorer(model, loader, loader, x, block="layer3.0")
    slider, readout = box.children
    assert list(slider.options) == ["layer1.0", "layer2.0", "layer3.0"] and len(results) == 1
    assert "cut after layer3.0" in readout.value
    slider.value = "layer1.0"
    assert len(results) == 2 and results[-1]["block"] == "layer1.0"
    expected = experiments.truncate_and_measure(model, "layer1.0", fit_loader=loader, loader=loader,
                                            example_input=x)
    assert {k: v for k, v in results[-1].items() if k != "seconds"} == {
        k: v for k, v in expected.items() if k != "seconds"}
    assert f"({results[-1]['correct']}/40 images)" in readout.value
    assert "(1 residual block kept)" in readout.value


# --- budget explorer (lesson 07) --------------------------------------------------------------------------

def test_budget_and_measure_matches_match_macs(setup):
    from pruning_lib import experiments, train

    model, scores, loader = setup["model"], setup["scores"]["l1"], setup["loader"]
    r = experiments.budget_and_measure(model, scores, 0.4, example_input=EXAMPLE, loader=loader, step=0.05)
    ratio, pruned = experiments.match_macs(model, scores, 0.4 * metrics.count_macs(model, EXAMPLE), EXAMPLE,
                                           step=0.05)
    assert r["ratio"] == ratio and r["macs"] == metrics.count_macs(pruned, EXAMPLE)
    assert r["correct"] == train.evaluate(pruned, loader)["correct"] and r["n"] == 64
    assert r["macs_fraction"] == pytest.approx(r["macs"] / metrics.count_macs(model, EXAMPLE))


def test_budget_explorer_reacts_to_budget_criterion_and_allocation(setup):
    model, scores, loader = setup["model"], setup["scores"], setup["loader"]
    box, results = widgets.budget_explorer(model, scores, loader, EXAMPLE, budget=0.5, step=0.05)
    (dropdown, slider), allocation, readout = box.children[0].children, box.children[1], box.children[2]
    assert len(results) == 1 and results[0]["criterion"] == "l1" and results[0]["allocation"] == "uniform"
    slider.value = 0.3
    allocation.value = "global"
    dropdown.value = "random"
    assert [(r["budget"], r["allocation"], r["criterion"]) for r in results[1:]] == [
        (0.3, "uniform", "l1"), (0.3, "global", "l1"), (0.3, "global", "random")]
    last = results[-1]
    expected = experiments.budget_and_measure(model, scores["random"], 0.3, example_input=EXAMPLE,
                                              loader=loader,
                                          plan_fn=selection.plan_global, step=0.05)
    keys = ("ratio", "macs", "correct")
    assert [last[k] for k in keys] == [expected[k] for k in keys]
    assert "budget 30% of the MACs" in readout.value and f"({last['correct']}/64 images)" in readout.value
