"""The "Try it" explorers: their callbacks return (and store) what ``experiments.prune_and_measure``
(``budget_and_measure``, ``truncate_and_measure``) computes, as pruned and after BatchNorm
recalibration, and their plots gain one point per stage for each new position.

Headless, widget output stays empty, so the tests read ``explorer.results``, the read-out and the
figure the explorer drew."""

from __future__ import annotations

import math
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from pruning_lib import experiments, metrics, models, selection, surgery, train  # noqa: E402
from pruning_lib.criteria import l1_norm, random_scores, score_model, similarity  # noqa: E402
from pruning_lib.lab import plots, widgets  # noqa: E402

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
    # "training" images for recalibration: other images than the evaluated ones, on another scale
    calib = 2.0 * torch.randn(48, 1, 28, 28, generator=g) + 0.5
    calib_loader = DataLoader(TensorDataset(calib, torch.zeros(48, dtype=torch.long)), batch_size=16)
    scores = {
        "l1": score_model(model, l1_norm),
        "random": score_model(model, lambda w: random_scores(w, generator=torch.Generator().manual_seed(5))),
    }
    return {"model": model, "loader": loader, "scores": scores, "calib": calib_loader}


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


def recalibrated_by_hand(pruned: nn.Module, calib: DataLoader, loader: DataLoader, n_images: int) -> dict:
    """What the explorer's recalibrated stage must equal: train.recalibrate_bn, then train.evaluate."""
    return train.evaluate(train.recalibrate_bn(pruned, calib, n_images, progress=False), loader)


def test_prune_and_measure_recalibrated_stage_is_recalibrate_bn_then_evaluate(setup):
    model, scores, loader, calib = setup["model"], setup["scores"]["l1"], setup["loader"], setup["calib"]
    before = snapshot(model)
    r = experiments.prune_and_measure(model, scores, 0.5, example_input=EXAMPLE, loader=loader,
                                      recalibrate_loader=calib, recalibrate_images=32)
    pruned = surgery.apply_plan(model, r["plan"], EXAMPLE)
    as_pruned, by_hand = train.evaluate(pruned, loader), recalibrated_by_hand(pruned, calib, loader, 32)
    assert (r["correct"], r["n"]) == (as_pruned["correct"], 64)
    assert r["recalibrated_correct"] == by_hand["correct"]
    assert r["recalibrated_accuracy"] == by_hand["correct"] / 64
    assert r["recalibrated_loss"] == pytest.approx(by_hand["loss"], rel=1e-5)
    assert r["recalibrate_images"] == 32
    # recalibration did something: the statistics of 32 scaled images are not the initial (0, 1)
    assert abs(r["recalibrated_loss"] - r["loss"]) > 1e-3
    # on all 48 images (recalibrate_images larger than the loader: all of them)
    r48 = experiments.prune_and_measure(model, scores, 0.5, example_input=EXAMPLE, loader=loader,
                                        recalibrate_loader=calib, recalibrate_images=1000)
    assert r48["recalibrate_images"] == 48
    assert r48["recalibrated_loss"] == pytest.approx(recalibrated_by_hand(pruned, calib, loader, 48)["loss"],
                                                     rel=1e-5)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key], atol=0, rtol=0)


def test_recalibration_loader_is_a_fixed_balanced_slice_of_the_training_split():
    from pruning_lib import data

    g = torch.Generator().manual_seed(4)
    x_train = torch.randint(0, 256, (60, 1, 4, 4), dtype=torch.uint8, generator=g)
    y_train, y_test = torch.arange(60) % 3, torch.arange(9) % 3
    images = data.ImageData(x_train, y_train, torch.full((9, 1, 4, 4), 7, dtype=torch.uint8), y_test,
                            "synthetic", ("a", "b", "c"), (0.5,), (0.25,))
    loader = experiments.recalibration_loader(images, 4, seed=1)
    first, again = list(loader), list(loader)
    assert len(first) == 1 and torch.equal(first[0][0], again[0][0])              # fixed, unshuffled
    x, y = first[0]
    assert torch.bincount(y).tolist() == [4, 4, 4]
    idx = data.balanced_indices(y_train, 4, seed=1)
    torch.testing.assert_close(x, (x_train[idx].float() / 255 - 0.5) / 0.25)       # training images
    waves = SimpleNamespace(x_train=torch.randn(30, 80, generator=g), y_train=torch.arange(30) % 5)
    x, y = next(iter(experiments.recalibration_loader(waves, 2)))
    assert x.shape == (10, 80) and torch.bincount(y).tolist() == [2] * 5
    assert torch.equal(x, waves.x_train[data.balanced_indices(waves.y_train, 2)])


def test_prune_and_measure_without_recalibration_loader_has_no_recalibrated_stage(setup):
    model, scores, loader = setup["model"], setup["scores"]["l1"], setup["loader"]
    r = experiments.prune_and_measure(model, scores, 0.25, example_input=EXAMPLE, loader=loader)
    assert r["recalibrated_accuracy"] is r["recalibrated_correct"] is r["recalibrate_images"] is None
    assert "recalibration" not in widgets.readout_text(r, {"macs": r["macs"]})


def test_explorer_callbacks_return_what_prune_and_measure_returns(setup):
    model, scores, loader, calib = setup["model"], setup["scores"], setup["loader"], setup["calib"]
    before = snapshot(model)
    explorer = widgets.pruning_explorer(model, scores, loader, EXAMPLE, ratio=0.5, recalibrate_loader=calib,
                                        recalibrate_images=32)
    measure = {"example_input": EXAMPLE, "loader": loader, "recalibrate_loader": calib,
               "recalibrate_images": 32}

    # built and rendered once: one result (ratio 0.5, first criterion), two points (both stages)
    assert len(explorer.results) == 1
    assert (explorer.results[0]["ratio"], explorer.results[0]["criterion"]) == (0.5, "l1")
    assert explorer.criterion.options == ("l1", "random")
    assert plots.plotted_points(explorer.figure) == 2
    assert "points plotted: 2" in explorer.readout.value

    # the baseline is the unpruned model
    assert explorer.baseline["ratio"] == 0.0
    assert explorer.baseline["macs"] == metrics.count_macs(model, EXAMPLE)
    assert explorer.baseline["params"] == metrics.count_params(model)
    assert list(explorer.baseline["widths"].values()) == VGG_WIDTHS

    # moving the slider prunes again, updates the read-out and adds a point per stage to the plot
    explorer.ratio.value = 0.25
    assert len(explorer.results) == 2
    latest = explorer.results[-1]
    direct = experiments.prune_and_measure(model, scores["l1"], 0.25, **measure)
    assert (latest["ratio"], latest["criterion"]) == (0.25, "l1")
    for key in ("accuracy", "correct", "n", "macs", "params", "widths", "plan", "recalibrated_accuracy",
                "recalibrated_correct", "recalibrate_images"):
        assert latest[key] == direct[key], key
    by_hand = recalibrated_by_hand(surgery.apply_plan(model, direct["plan"], EXAMPLE), calib, loader, 32)
    assert latest["recalibrated_correct"] == by_hand["correct"]
    assert f"{direct['accuracy']:.1%}" in explorer.readout.value
    assert (f"after BatchNorm recalibration on 32 training images <b>{by_hand['accuracy']:.1%}</b> "
            f"({by_hand['correct']}/64)") in explorer.readout.value
    assert explorer.readout.value == widgets.readout_text(latest, explorer.baseline, points=4)
    assert f"{widgets.TIMING_SEPARATOR}{latest['seconds']:.2f} s" in explorer.readout.value
    assert plots.plotted_points(explorer.figure) == 4

    # changing the criterion prunes with the other scores: a new curve
    explorer.criterion.value = "random"
    assert len(explorer.results) == 3
    latest = explorer.results[-1]
    direct = experiments.prune_and_measure(model, scores["random"], 0.25, **measure)
    assert latest["criterion"] == "random"
    assert latest["plan"] == direct["plan"] and latest["accuracy"] == direct["accuracy"]
    assert latest["recalibrated_correct"] == direct["recalibrated_correct"]
    assert latest["plan"] != explorer.results[-2]["plan"]
    assert plots.plotted_points(explorer.figure) == 6

    # back to a visited position: measured again, but no new point
    explorer.criterion.value = "l1"
    assert len(explorer.results) == 4 and plots.plotted_points(explorer.figure) == 6
    assert "points plotted: 6" in explorer.readout.value

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


def test_readout_text_shows_the_recalibrated_stage_and_the_points():
    result = {"ratio": 0.5, "accuracy": 0.1, "correct": 50, "n": 500, "macs": 4_000_000, "params": 1000,
              "seconds": 0.75, "recalibrated_accuracy": 0.324, "recalibrated_correct": 162,
              "recalibrate_images": 300}
    text = widgets.readout_text(result, {"macs": 16_000_000}, points=6)
    assert "accuracy <b>10.0%</b> (50/500 images) · after BatchNorm recalibration on 300 training images " \
           "<b>32.4%</b> (162/500) · MACs <b>4.00 M</b> (25% of baseline)" in text
    assert text.endswith(f" · points plotted: 6{widgets.TIMING_SEPARATOR}0.75 s")


# --- the explorers' accuracy plot -------------------------------------------------------------------------

VISITS = [{"criterion": "l1", "ratio": 0.5, "accuracy": 0.1, "recalibrated_accuracy": 0.3},
          {"criterion": "l1", "ratio": 0.55, "accuracy": 0.1, "recalibrated_accuracy": 0.25},
          {"criterion": "fpgm", "ratio": 0.55, "accuracy": 0.12, "recalibrated_accuracy": None},
          {"criterion": "l1", "ratio": 0.5000000000001, "accuracy": 0.1, "recalibrated_accuracy": 0.31}]


def test_explorer_points_one_per_position_stage_and_series_latest_visit_wins():
    points = plots.explorer_points(VISITS)
    assert [(p["series"], p["x"], p["stage"], p["accuracy"], p["current"]) for p in points] == [
        ("l1", 0.5, "pruned", 0.1, True), ("l1", 0.5, "recalibrated", 0.31, True),
        ("l1", 0.55, "pruned", 0.1, False), ("l1", 0.55, "recalibrated", 0.25, False),
        ("fpgm", 0.55, "pruned", 0.12, False)]
    by_allocation = plots.explorer_points(VISITS, series=lambda r: "all")
    assert [(p["x"], p["stage"], p["accuracy"]) for p in by_allocation] == [       # one series: fpgm's
        (0.5, "pruned", 0.1), (0.5, "recalibrated", 0.31), (0.55, "pruned", 0.12)]  # 0.55 replaces l1's


def test_plot_explorer_gains_points_as_the_student_explores():
    counts = [plots.plotted_points(plots.plot_explorer(VISITS[:k], baseline=0.93)) for k in range(1, 5)]
    assert counts == [2, 4, 5, 5]
    fig = plots.plot_explorer(VISITS, xlabel="fraction of filters removed")
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.lines if line.get_gid() == plots.POINTS_GID}
    assert set(lines) == {"l1, as pruned", "l1, BatchNorm recalibrated", "fpgm, as pruned"}
    recal = lines["l1, BatchNorm recalibrated"]
    assert list(recal.get_xdata()) == [0.5, 0.55] and list(recal.get_ydata()) == [0.31, 0.25]
    rings = [c for c in ax.collections if c.get_gid() == plots.CURRENT_GID]
    assert len(rings) == 1
    assert sorted(map(tuple, rings[0].get_offsets().tolist())) == [(0.5, 0.1), (0.5, 0.31)]
    assert ax.get_xlabel() == "fraction of filters removed"
    plt.close(fig)


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
    readout = box.children[1]
    assert len(results) == 1 and results[0]["layer"] == "a"
    assert "points plotted: 1" in readout.value
    slider = box.children[0].children[1]
    slider.value = 9
    assert results[-1] == {"layer": "a", **similarity.nystrom_compare(weights["a"], 9)}
    assert readout.value == widgets.nystrom_readout_text(results[-1], (20, 4, 3, 3), points=2)
    box.children[0].children[0].value = "b"
    assert results[-1]["layer"] == "b" and slider.max == 6
    assert f"points plotted: {len({(r['layer'], r['m']) for r in results})}" in readout.value


def test_plot_nystrom_explorer_one_point_per_layer_and_m_errors_floored():
    results = [{"layer": "a.conv", "m": 2, "error": 0.5}, {"layer": "a.conv", "m": 9, "error": 0.0},
               {"layer": "b.conv", "m": 2, "error": 0.25}, {"layer": "a.conv", "m": 2, "error": 0.5}]
    fig = plots.plot_nystrom_explorer(results)
    assert plots.plotted_points(fig) == 3
    ax = fig.axes[0]
    line_a = next(line for line in ax.lines if line.get_gid() == plots.POINTS_GID and line.get_label() == "a")
    assert list(line_a.get_xdata()) == [2, 9] and list(line_a.get_ydata()) == [0.5, plots.ERROR_FLOOR]
    ring = next(c for c in ax.collections if c.get_gid() == plots.CURRENT_GID)
    assert ring.get_offsets().tolist() == [[2, 0.5]] and ax.get_yscale() == "log"
    plt.close(fig)


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
    assert explorer.readout.value == widgets.readout_text(latest, explorer.baseline, points=2)  # 1 per curve
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
    calib = 3.0 * torch.randn(32, 1, 16, 16, generator=g) - 1.0
    return {"model": model, "loader": DataLoader(TensorDataset(images, labels), batch_size=16),
            "example": torch.zeros(1, 1, 16, 16),
            "calib": DataLoader(TensorDataset(calib, torch.zeros(32, dtype=torch.long)), batch_size=16)}


def test_truncate_and_measure_matches_the_library_pipeline(depth_setup):
    from pruning_lib import depth, train

    model, loader, x, calib = (depth_setup[k] for k in ("model", "loader", "example", "calib"))
    before = snapshot(model)
    r = experiments.truncate_and_measure(model, "layer2.0", fit_loader=loader, loader=loader, example_input=x,
                                         recalibrate_loader=calib)
    cut = depth.truncate(model, "layer2.0")
    net = depth.fit_head(cut, loader)
    assert (r["block"], r["blocks_kept"]) == ("layer2.0", 2)
    assert (r["macs"], r["params"]) == (metrics.count_macs(net, x), metrics.count_params(net))
    assert r["correct"] == train.evaluate(net, loader)["correct"] and r["n"] == 40
    # recalibrated: BatchNorm re-estimated on the 32 calibration images, then the head fitted
    fixed = depth.fit_head(train.recalibrate_bn(cut, calib, progress=False), loader)
    by_hand = train.evaluate(fixed, loader)
    assert r["recalibrated_correct"] == by_hand["correct"] and r["recalibrate_images"] == 32
    assert r["recalibrated_loss"] == pytest.approx(by_hand["loss"], rel=1e-5)
    assert abs(r["recalibrated_loss"] - r["loss"]) > 1e-4        # the shifted images moved the statistics
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key], atol=0, rtol=0)


def test_depth_explorer_callback_returns_what_truncate_and_measure_returns(depth_setup):
    model, loader, x, calib = (depth_setup[k] for k in ("model", "loader", "example", "calib"))
    box, results = widgets.depth_explorer(model, loader, loader, x, block="layer3.0",
                                          recalibrate_loader=calib)
    slider, readout, _output = box.children
    assert list(slider.options) == ["layer1.0", "layer2.0", "layer3.0"] and len(results) == 1
    assert "cut after layer3.0" in readout.value and "points plotted: 2" in readout.value
    slider.value = "layer1.0"
    assert len(results) == 2 and results[-1]["block"] == "layer1.0"
    expected = experiments.truncate_and_measure(model, "layer1.0", fit_loader=loader, loader=loader,
                                                example_input=x, recalibrate_loader=calib)
    assert {k: v for k, v in results[-1].items() if k != "seconds"} == {
        k: v for k, v in expected.items() if k != "seconds"}
    assert f"({results[-1]['correct']}/40 images)" in readout.value
    recalibrated = f"<b>{expected['recalibrated_accuracy']:.1%}</b> ({expected['recalibrated_correct']}/40)"
    assert recalibrated in readout.value
    assert "(1 residual block kept)" in readout.value and "points plotted: 4" in readout.value


# --- budget explorer (lesson 07) --------------------------------------------------------------------------

def test_budget_and_measure_matches_match_macs(setup):
    model, scores, loader, calib = setup["model"], setup["scores"]["l1"], setup["loader"], setup["calib"]
    before = snapshot(model)
    r = experiments.budget_and_measure(model, scores, 0.4, example_input=EXAMPLE, loader=loader, step=0.05,
                                       recalibrate_loader=calib, recalibrate_images=32)
    ratio, pruned = experiments.match_macs(model, scores, 0.4 * metrics.count_macs(model, EXAMPLE), EXAMPLE,
                                           step=0.05)
    assert r["ratio"] == ratio and r["macs"] == metrics.count_macs(pruned, EXAMPLE)
    assert r["correct"] == train.evaluate(pruned, loader)["correct"] and r["n"] == 64
    assert r["macs_fraction"] == pytest.approx(r["macs"] / metrics.count_macs(model, EXAMPLE))
    assert r["recalibrated_correct"] == recalibrated_by_hand(pruned, calib, loader, 32)["correct"]
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key], atol=0, rtol=0)


def test_budget_explorer_reacts_to_budget_criterion_and_allocation(setup):
    model, scores, loader, calib = setup["model"], setup["scores"], setup["loader"], setup["calib"]
    box, results = widgets.budget_explorer(model, scores, loader, EXAMPLE, budget=0.5, step=0.05,
                                           recalibrate_loader=calib, recalibrate_images=32)
    (dropdown, slider), allocation, readout = box.children[0].children, box.children[1], box.children[2]
    assert len(results) == 1 and results[0]["criterion"] == "l1" and results[0]["allocation"] == "uniform"
    assert "points plotted: 2" in readout.value
    slider.value = 0.3
    assert "points plotted: 4" in readout.value
    allocation.value = "global"
    dropdown.value = "random"
    assert [(r["budget"], r["allocation"], r["criterion"]) for r in results[1:]] == [
        (0.3, "uniform", "l1"), (0.3, "global", "l1"), (0.3, "global", "random")]
    last = results[-1]
    expected = experiments.budget_and_measure(model, scores["random"], 0.3, example_input=EXAMPLE,
                                              loader=loader, plan_fn=selection.plan_global, step=0.05,
                                              recalibrate_loader=calib, recalibrate_images=32)
    keys = ("ratio", "macs", "correct", "recalibrated_correct")
    assert [last[k] for k in keys] == [expected[k] for k in keys]
    assert "budget 30% of the MACs" in readout.value and f"({last['correct']}/64 images)" in readout.value
    assert f"<b>{last['recalibrated_accuracy']:.1%}</b> ({last['recalibrated_correct']}/64)" in readout.value
    assert "points plotted: 8" in readout.value           # one curve per criterion and allocation
