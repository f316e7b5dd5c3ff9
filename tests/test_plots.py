"""Plots draw what they are given: recorded curves, bar colours, one axes per filter, layer widths."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from pruning_lib import models  # noqa: E402
from pruning_lib.criteria import l1_norm  # noqa: E402
from pruning_lib.lab import plots


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_live_curve_records_and_draws_without_display():
    curve = plots.LiveCurve(enabled=False)
    records = [{"epoch": 1, "split": "eval", "loss": 0.9, "accuracy": 0.55},
               {"epoch": 1, "split": "train", "loss": 1.1, "accuracy": 0.5},
               {"epoch": 2, "split": "eval", "loss": 0.6, "accuracy": 0.7},
               {"epoch": 2, "split": "train", "loss": 0.8, "accuracy": 0.65}]
    for i, r in enumerate(records, start=1):
        returned = curve(r)
        assert curve.frames == i
        assert returned is curve.records and len(returned) == i
    assert curve.records == records
    assert curve.line_data("accuracy", "eval") == [0.55, 0.7]
    assert curve.line_data("loss", "train") == [1.1, 0.8]
    assert curve.line_data("accuracy", "test") == []
    # the accuracy axes holds one line per split whose y-data are the recorded accuracies
    acc_ax, loss_ax = curve.axes
    assert acc_ax.get_title() == "accuracy" and loss_ax.get_title() == "loss"
    ys = sorted(tuple(np.round(line.get_ydata(), 6)) for line in acc_ax.get_lines() if len(line.get_ydata()))
    assert ys == [(0.5, 0.65), (0.55, 0.7)]
    assert curve._handle is None                          # nothing displayed when disabled


def test_live_curve_copies_records():
    curve = plots.LiveCurve(metrics=("loss",), enabled=False)
    record = {"epoch": 1, "split": "eval", "loss": 0.5}
    curve(record)
    record["loss"] = 99.0
    assert curve.line_data("loss", "eval") == [0.5]
    assert len(curve.axes) == 1


def test_plot_scores_colours_removed_bars():
    scores = torch.tensor([3.0, 1.0, 2.0, 0.5, 4.0])
    ax = plots.plot_scores(scores, [1, 3], title="conv1")
    bars = ax.patches[:5]
    assert [b.get_height() for b in bars] == pytest.approx([3.0, 1.0, 2.0, 0.5, 4.0])
    colours = [b.get_facecolor() for b in bars]
    pruned, kept = to_rgba(plots.PRUNED), to_rgba(plots.KEPT)
    assert colours == [kept, pruned, kept, pruned, kept]
    assert pruned != kept
    assert ax.get_title() == "conv1"


def test_plot_scores_draws_on_a_given_axes():
    fig, ax = plt.subplots()
    assert plots.plot_scores(torch.ones(3), [], ax=ax) is ax
    assert all(p.get_facecolor() == to_rgba(plots.KEPT) for p in ax.patches[:3])


def test_plot_filters_one_axes_per_filter():
    weight = torch.randn(10, 2, 3, 3)
    fig = plots.plot_filters(weight, ncols=4, title="filters")
    assert isinstance(fig, Figure)
    assert len(fig.axes) >= 10
    assert len(fig.axes) == 12                            # 3 rows of 4
    assert sum(1 for ax in fig.axes if ax.images) == 10
    np.testing.assert_allclose(fig.axes[3].images[0].get_array(), weight[3, 0].numpy())


def test_plot_layer_widths_two_models():
    vgg = models.build("vgg16_slim")
    names = [n for n, m in vgg.named_modules() if isinstance(m, torch.nn.Conv2d)]
    full = {n: len(l1_norm(dict(vgg.named_modules())[n].weight)) for n in names}
    half = {n: w // 2 for n, w in full.items()}
    ax = plots.plot_layer_widths({"baseline": full, "pruned": half})
    heights = sorted(round(p.get_height()) for p in ax.patches if p.get_height() > 0)
    assert heights == sorted(list(full.values()) + list(half.values()))
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == [n.removesuffix(".conv") for n in names]


def test_plot_history_one_line_per_split():
    history = [{"epoch": e, "split": s, "loss": 1.0 / e, "accuracy": 0.5 + 0.1 * e}
               for e in (1, 2, 3) for s in ("train", "eval")]
    axes = plots.plot_history(history, metrics=("accuracy",))
    assert len(axes) == 1 and axes[0].get_title() == "accuracy"
    assert len(axes[0].get_lines()) >= 2


def test_plot_sweep_one_panel_per_model_and_plot_agreement_one_heatmap_per_matrix():
    rows = [{"model": m, "criterion": c, "stage": s, "ratio": r, "accuracy": 0.5}
            for m in ("a", "b") for c in ("l1", "op") for s in ("pruned", "fine-tuned") for r in (0.5, 0.9)]
    grid = plots.plot_sweep(rows)
    assert [ax.get_title() for ax in grid.axes.flat] == ["a", "b"]
    fig = plots.plot_agreement({"rho": torch.eye(2), "overlap": torch.ones(2, 2)}, ["l1", "op"])
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == ["rho", "overlap"]
    plt.close("all")


@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("with_waves", [False, True])
def test_plot_logmels_one_axes_per_clip_and_row(n, with_waves):
    g = torch.Generator().manual_seed(0)
    specs = torch.randn(n, 1, 40, 126, generator=g)
    waves = torch.randn(n, 8000, generator=g) if with_waves else None
    titles = [f"clip {i}" for i in range(n)]
    fig = plots.plot_logmels(specs, titles, waves=waves)
    assert isinstance(fig, Figure)
    rows = 2 if with_waves else 1
    assert len(fig.axes) == rows * n
    top, bottom = fig.axes[:n], fig.axes[-n:]                      # row-major order
    assert [ax.get_title() for ax in top] == titles
    for j, ax in enumerate(bottom):
        (image,) = ax.get_images()
        np.testing.assert_array_equal(image.get_array(), specs[j, 0].numpy())
        assert image.origin == "lower"
        assert ax.get_xlim() == pytest.approx((0, 126 * 64 / 8000))   # frames → seconds
    if with_waves:
        for j, ax in enumerate(top):
            (line,) = ax.get_lines()
            np.testing.assert_allclose(line.get_ydata(), waves[j].numpy())
            assert line.get_xdata()[-1] == pytest.approx(7999 / 8000)


def test_plot_logmels_accepts_three_dimensional_specs():
    specs = torch.zeros(2, 40, 10)
    fig = plots.plot_logmels(specs, ["a", "b"])
    assert len(fig.axes) == 2
    assert fig.axes[0].get_images()[0].get_array().shape == (40, 10)


def test_plot_bn_mismatch_draws_one_point_per_channel_and_model():
    def records(scale: float) -> list[dict]:
        return [{"layer": layer, "channel": k, "running_mean": 0.0, "running_var": 1.0 + k, "mean": 0.0,
                 "var": scale * (1.0 + k)} for layer in ("a.bn", "b.bn") for k in range(3)]

    fig = plots.plot_bn_mismatch({"unpruned": records(1.0), "pruned": records(10.0)}, layer="b.bn")
    left, right = fig.axes
    assert [len(c.get_offsets()) for c in left.collections] == [3, 3]
    gaps = [list(line.get_ydata()) for line in right.lines]
    assert gaps == [pytest.approx([0.0, 0.0]), pytest.approx([1.0, 1.0])]     # |log10(10)| = 1


def test_plot_paired_differences_one_axes_per_budget_and_one_bar_per_record():
    comparisons = [{"budget": b, "stage": s, "criterion": c, "reference": "random", "difference": d,
                    "low": d - 0.01, "high": d + 0.01, "verdict": v}
                   for b in (0.5, 0.25) for s in ("recalibrated", "fine-tuned")
                   for c, d, v in (("l1", 0.02, "better"), ("fpgm", 0.0, "tie"))]
    fig = plots.plot_paired_differences(comparisons)
    assert len(fig.axes) == 2
    bars = [line for line in fig.axes[0].lines if len(line.get_xdata()) == 2 and line.get_linestyle() == "-"]
    ends = sorted(tuple(round(float(v), 6) for v in line.get_xdata()) for line in bars)
    assert ends == [(-1.0, 1.0), (-1.0, 1.0), (1.0, 3.0), (1.0, 3.0)]     # points: difference ± 1
