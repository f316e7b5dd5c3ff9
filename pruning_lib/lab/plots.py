"""Pictures: images, filters, scores, layer widths, training curves (matplotlib + seaborn).

Every function draws arrays it is given and returns the matplotlib ``Figure`` or ``Axes``; nothing
here computes anything expensive. ``LiveCurve`` is a training callback that redraws one figure
as records arrive; ``plot_explorer`` is the "Try it" explorers' accuracy-against-slider plot.

Introduced in: notebooks/00_tour.ipynb.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import pandas as pd
import seaborn as sns
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from torch import Tensor

KEPT, PRUNED = "#2a9d8f", "#e76f51"


def plot_images(images: Tensor, labels: Tensor, classes: Sequence[str], *, ncols: int = 10,
                nrows: int = 2) -> Figure:
    """A grid of the first ``ncols·nrows`` images with their class names.

    Args:
        images: (N, 1, H, W) uint8 or float images.
        labels: (N,) int labels.
        classes: Class names, index = label.
        ncols: Images per row.
        nrows: Rows.
    """
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.2 * ncols, 1.4 * nrows))
    for ax, img, y in zip(axes.flat, images, labels, strict=False):
        ax.imshow(img[0].numpy(), cmap="gray_r")
        ax.set_title(classes[int(y)], fontsize=7)
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_logmels(specs: Tensor, titles: Sequence[str], *, waves: Tensor | None = None,
                 sample_rate: int = 8000, hop_length: int = 64) -> Figure:
    """Log-mel spectrograms side by side (low bands at the bottom), optionally above their waveforms.

    Args:
        specs: (N, 1, n_mels, frames) or (N, n_mels, frames), e.g. ``model.frontend(waves)``.
        titles: One title per clip.
        waves: Optional (N, T) waveforms drawn in a row above.
        sample_rate: Samples per second of ``waves``.
        hop_length: Samples per spectrogram frame; with ``sample_rate`` it gives seconds on the x axes.
    """
    specs = specs[:, 0] if specs.ndim == 4 else specs
    n, rows = len(specs), 1 if waves is None else 2
    fig, axes = plt.subplots(rows, n, figsize=(2.6 * n, 2.0 * rows + 0.4), squeeze=False,
                             sharex="col", gridspec_kw={"height_ratios": [1, 2][-rows:]})
    for j in range(n):
        ax = axes[-1, j]
        frames = specs.shape[-1]
        ax.imshow(specs[j].detach().cpu().numpy(), origin="lower", aspect="auto", cmap="magma",
                  extent=(0, frames * hop_length / sample_rate, 0, specs.shape[-2]))
        ax.set_xlabel("time (s)")
        ax.set_ylabel("mel band" if j == 0 else "")
        if waves is not None:
            t = torch.arange(waves.shape[-1]) / sample_rate
            axes[0, j].plot(t.numpy(), waves[j].detach().cpu().numpy(), lw=0.4, color="#264653")
            axes[0, j].set_yticks([])
        axes[0, j].set_title(titles[j], fontsize=9)
    fig.tight_layout()
    return fig


def plot_filters(weight: Tensor, *, ncols: int = 8, title: str = "") -> Figure:
    """Draw each filter's first input channel as a small heatmap (shared, symmetric colour scale).

    Args:
        weight: (n, c, kh, kw) conv weight.
        ncols: Filters per row.
        title: Figure title.
    """
    w = weight.detach().cpu()[:, 0]                             # (n, kh, kw)
    n = len(w)
    nrows = -(-n // ncols)
    lim = float(w.abs().max())
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.0 * ncols, 1.0 * nrows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(w[i].numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_title(str(i), fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_scores(scores: Tensor, removed: Sequence[int], *, ax: Axes | None = None,
                title: str = "") -> Axes:
    """Bar plot of one layer's filter scores; removed filters in orange, kept in green."""
    ax = ax or plt.subplots(figsize=(8, 2.5))[1]
    removed_set = set(int(i) for i in removed)
    colours = [PRUNED if i in removed_set else KEPT for i in range(len(scores))]
    ax.bar(range(len(scores)), scores.detach().cpu().numpy(), color=colours)
    ax.set(xlabel="filter index", ylabel="score (higher = keep)", title=title)
    ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=KEPT), plt.Rectangle((0, 0), 1, 1, color=PRUNED)],
              labels=["kept", "removed"], loc="upper right", fontsize=8)
    return ax


def plot_layer_widths(widths: dict[str, dict[str, int]], *, ax: Axes | None = None) -> Axes:
    """Grouped bars of filters per layer for several models, e.g. {"baseline": {...}, "pruned": {...}}.

    Plain matplotlib bars (no seaborn): the explorers redraw this after every slider move.
    """
    ax = ax or plt.subplots(figsize=(10, 3))[1]
    layers = list(dict.fromkeys(layer for per_layer in widths.values() for layer in per_layer))
    width = 0.8 / max(len(widths), 1)
    for i, (name, per_layer) in enumerate(widths.items()):
        xs = [j + (i - (len(widths) - 1) / 2) * width for j, layer in enumerate(layers) if layer in per_layer]
        ax.bar(xs, [per_layer[layer] for layer in layers if layer in per_layer], width=width, label=name,
               color=sns.color_palette()[i % 10])
    ax.set_xticks(range(len(layers)), [layer.removesuffix(".conv") for layer in layers])
    ax.set(xlabel="layer", ylabel="filters")
    ax.tick_params(axis="x", rotation=70, labelsize=7)
    ax.legend(title="model", fontsize=8)
    return ax


def plot_history(history: Sequence[dict], *, metrics: Sequence[str] = ("accuracy", "loss"),
                 axes: Sequence[Axes] | None = None) -> Sequence[Axes]:
    """Line plots of history records (``train.train``'s output) per metric, one line per split."""
    if axes is None:
        axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3))[1]
        axes = [axes] if len(metrics) == 1 else list(axes)
    frame = pd.DataFrame(list(history))
    for ax, metric in zip(axes, metrics, strict=True):
        ax.clear()
        if len(frame):
            sns.lineplot(frame, x="epoch", y=metric, hue="split", marker="o", ax=ax)
        ax.set_title(metric)
    return axes


def plot_sweep(rows: Sequence[dict], *, x: str = "ratio", y: str = "accuracy"):  # noqa: ANN201
    """Accuracy against pruning ratio.

    One panel per model, one colour per criterion, one line
    style per stage ("pruned" / "fine-tuned"). ``rows`` come from ``experiments.ratio_sweep``.

    Returns:
        The seaborn ``FacetGrid``.
    """
    frame = pd.DataFrame(list(rows))
    grid = sns.relplot(frame, x=x, y=y, hue="criterion", style="stage", col="model", kind="line",
                       marker="o", height=3.4, aspect=1.15, facet_kws={"sharey": False})
    grid.set_titles("{col_name}")
    return grid


def plot_config_bars(rows: Sequence[dict], *, x: str = "config", y: str = "accuracy"):  # noqa: ANN201
    """Accuracy per pruned-layer configuration: bars per criterion, one panel per stage.

    ``rows`` come from ``experiments.plan_table`` (keys "config", "criterion", "stage", ``y``).

    Returns:
        The seaborn ``FacetGrid``.
    """
    frame = pd.DataFrame(list(rows))
    grid = sns.catplot(frame, x=x, y=y, hue="criterion", col="stage", kind="bar", height=3.2,
                       aspect=1.6, sharey=False)
    grid.set_titles("{col_name}")
    grid.tick_params(axis="x", rotation=30)
    return grid


def plot_agreement(matrices: dict[str, Tensor], labels: Sequence[str]) -> Figure:
    """Side-by-side heatmaps of (K, K) criterion-agreement matrices, e.g. {"Spearman ρ": rho}."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(5.2 * len(matrices), 4.2))
    axes = [axes] if len(matrices) == 1 else list(axes)
    for ax, (title, matrix) in zip(axes, matrices.items(), strict=True):
        sns.heatmap(matrix.numpy(), annot=True, fmt=".2f", xticklabels=labels, yticklabels=labels,
                    vmin=-1 if float(matrix.min()) < 0 else 0, vmax=1, cmap="vlag", ax=ax,
                    annot_kws={"fontsize": 7})
        ax.set_title(title)
    fig.tight_layout()
    return fig


class LiveCurve:
    """A training callback that redraws one accuracy/loss figure as each record arrives.

    Pass it in ``callbacks=[curve]`` to ``train.train`` or ``train.fine_tune``. With
    ``enabled=False`` (or outside IPython) it only records. ``frames`` counts redraws.

    Example:
        >>> curve = LiveCurve(enabled=False)
        >>> _ = curve({"epoch": 1, "split": "eval", "loss": 0.5, "accuracy": 0.8})
        >>> curve.records[-1]["accuracy"], curve.frames
        (0.8, 1)
    """

    def __init__(self, metrics: Sequence[str] = ("accuracy", "loss"), *, enabled: bool = True) -> None:
        self.metrics = tuple(metrics)
        self.records: list[dict] = []
        self.frames = 0
        self.enabled = enabled
        self.figure, axes = plt.subplots(1, len(self.metrics), figsize=(4.5 * len(self.metrics), 3))
        self.axes = [axes] if len(self.metrics) == 1 else list(axes)
        plt.close(self.figure)            # shown through the display handle only
        self._handle = None

    def __call__(self, record: dict) -> list[dict]:
        """Add a record, redraw, and return all records so far."""
        self.records.append(dict(record))
        plot_history(self.records, metrics=self.metrics, axes=self.axes)
        self.figure.tight_layout()
        self.frames += 1
        if self.enabled:
            self._show()
        return self.records

    def _show(self) -> None:
        try:
            from IPython.display import display
        except ImportError:
            return
        if self._handle is None:
            self._handle = display(self.figure, display_id=True)
        else:
            self._handle.update(self.figure)

    def line_data(self, metric: str, split: str) -> list[float]:
        """The y values currently recorded for ``metric`` and ``split`` (for tests and checks)."""
        return [float(r[metric]) for r in self.records if r.get("split") == split]




# --- the "Try it" explorers' accuracy plot (pruning_lib.lab.widgets draws it after every move) -----------

EXPLORER_STAGES = {"pruned": "accuracy", "recalibrated": "recalibrated_accuracy"}
EXPLORER_STAGE_STYLE = {"pruned": {"linestyle": "--", "markerfacecolor": "white", "label": "as pruned"},
                        "recalibrated": {"linestyle": "-", "label": "BatchNorm recalibrated"}}
POINTS_GID, CURRENT_GID = "explorer-points", "explorer-current"


def explorer_points(results: Sequence[dict], *, x: str = "ratio", series: Callable[[dict], str] | None = None,
                    stages: dict[str, str] | None = None) -> list[dict]:
    """The points an explorer plot shows: one per visited (series, x value, stage).

    A position visited again shows its latest measurement; the newest result is the current one.
    A stage whose accuracy is None (no recalibration) is left out.

    Args:
        results: The explorer's results, oldest first (each has ``x`` and the keys of
            ``EXPLORER_STAGES``).
        x: The result key on the horizontal axis (the slider's value, e.g. "ratio" or "budget").
        series: Names a result's curve (default: its "criterion", or "" without one).
        stages: {stage name: result key of its y value} (default ``EXPLORER_STAGES``: accuracy as
            pruned and recalibrated).

    Returns:
        [{"series", "x", "stage", "accuracy", "current"}], in order of first visit ("accuracy" holds
        the stage's y value, whatever its key).

    Example:
        >>> rs = [{"criterion": "l1", "ratio": 0.5, "accuracy": 0.1, "recalibrated_accuracy": 0.3},
        ...       {"criterion": "l1", "ratio": 0.5, "accuracy": 0.1, "recalibrated_accuracy": None}]
        >>> [(p["stage"], p["accuracy"], p["current"]) for p in explorer_points(rs)]
        [('pruned', 0.1, True)]
    """
    series = series or (lambda r: str(r.get("criterion", "")))
    stages = EXPLORER_STAGES if stages is None else stages
    latest: dict[tuple[str, float], tuple[int, dict]] = {}
    for i, result in enumerate(results):
        value = result[x]
        key = (series(result), round(value, 9) if isinstance(value, float) else value)
        latest[key] = (latest[key][0] if key in latest else i, result)
    current = len(results) - 1
    points = []
    for (name, value), (_first, result) in sorted(latest.items(), key=lambda item: item[1][0]):
        for stage, key in stages.items():
            if result.get(key) is not None:
                points.append({"series": name, "x": value, "stage": stage, "accuracy": result[key],
                               "current": result is results[current]})
    return points


def plot_explorer(results: Sequence[dict], *, x: str = "ratio", series: Callable[[dict], str] | None = None,
                  xlabel: str | None = None, baseline: float | None = None, ax: Axes | None = None) -> Figure:
    """Accuracy against the slider's value for every position an explorer has visited.

    One colour per series (criterion), dashed hollow markers as pruned, solid filled markers after
    BatchNorm recalibration; the current position is ringed. The point lines carry the gid
    ``POINTS_GID`` (one marker per point of ``explorer_points``), the rings ``CURRENT_GID``.

    Args:
        results: The explorer's results, oldest first (see ``explorer_points``).
        x: As ``explorer_points``.
        series: As ``explorer_points``.
        xlabel: Horizontal axis label (default: ``x``).
        baseline: Accuracy of the unpruned model, drawn as a grey dotted line (None: no line).
        ax: Where to draw (default: a new figure).

    Returns:
        The Figure.
    """
    ax = ax or plt.subplots(figsize=(5, 3.4))[1]
    points = explorer_points(results, x=x, series=series)
    names = list(dict.fromkeys(p["series"] for p in points))
    colours = dict(zip(names, sns.color_palette("tab10", max(len(names), 1)), strict=False))
    for name, stage in itertools.product(names, EXPLORER_STAGES):
        mine = sorted((p["x"], p["accuracy"]) for p in points if (p["series"], p["stage"]) == (name, stage))
        if mine:
            xs, ys = zip(*mine, strict=True)
            style = dict(EXPLORER_STAGE_STYLE[stage])
            label = f"{name}, {style.pop('label')}" if name else style.pop("label")
            ax.plot(xs, ys, marker="o", color=colours[name], label=label, gid=POINTS_GID, **style)
    now = [p for p in points if p["current"]]
    if now:
        ax.scatter([p["x"] for p in now], [p["accuracy"] for p in now], s=160, facecolors="none",
                   edgecolors="black", linewidths=1.5, zorder=5, gid=CURRENT_GID, label="current")
    if baseline is not None:
        ax.axhline(baseline, color="grey", linestyle=":", linewidth=1, label="unpruned")
    ax.set(xlabel=xlabel or x, ylabel="accuracy", ylim=(0, 1.22),          # the legend sits above 100%
           yticks=[0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0))
    ax.legend(handles=_explorer_legend(names, colours, baseline is not None), fontsize=7, loc="upper right",
              ncols=2)
    return ax.figure


def _explorer_legend(names: Sequence[str], colours: dict, with_baseline: bool) -> list[Line2D]:
    """One entry per series (its colour) and one per stage (its line style), instead of one per line."""
    handles = [Line2D([], [], color=colours[name], linewidth=3, label=name) for name in names if name]
    handles += [Line2D([], [], color="black", marker="o", **EXPLORER_STAGE_STYLE[stage])
                for stage in EXPLORER_STAGES]
    handles.append(Line2D([], [], marker="o", markersize=10, markerfacecolor="none", markeredgecolor="black",
                          linestyle="", label="current"))
    if with_baseline:
        handles.append(Line2D([], [], color="grey", linestyle=":", label="unpruned"))
    return handles


def plotted_points(figure: Figure) -> int:
    """How many explorer points ``plot_explorer`` drew on ``figure`` (markers of ``POINTS_GID`` lines)."""
    return sum(len(line.get_xdata()) for ax in figure.axes for line in ax.lines
               if line.get_gid() == POINTS_GID)


def plot_bn_mismatch(stats_by_model: dict[str, Sequence[dict]], *, layer: str) -> Figure:
    """What BatchNorm expects against what it gets, for several versions of one network.

    Left: each channel of ``layer`` as a point (running variance, variance of the BatchNorm's input
    on real images); on the diagonal the two agree. Right: for every BatchNorm layer, the median over
    channels of |log10(input variance / running variance)|; 0 means matched.

    Args:
        stats_by_model: {label, e.g. "pruned": records of ``activations.batchnorm_statistics``}.
        layer: The BatchNorm shown on the left, e.g. "features.conv8.bn".

    Returns:
        The Figure (two axes).
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    colours = dict(zip(stats_by_model, sns.color_palette("tab10", len(stats_by_model)), strict=False))
    low, high = float("inf"), 0.0
    for label, records in stats_by_model.items():
        frame = pd.DataFrame(list(records))
        mine = frame[(frame.layer == layer) & (frame.running_var > 0) & (frame["var"] > 0)]
        left.scatter(mine.running_var, mine["var"], s=14, alpha=0.7, color=colours[label], label=label)
        if len(mine):
            low = min(low, mine.running_var.min(), mine["var"].min())
            high = max(high, mine.running_var.max(), mine["var"].max())
        kept = frame[(frame.running_var > 0) & (frame["var"] > 0)].copy()
        kept["gap"] = (kept["var"] / kept.running_var).map(math.log10).abs()
        per_layer = kept.groupby("layer", sort=False)["gap"].median()
        right.plot(range(len(per_layer)), per_layer.values, marker="o", color=colours[label], label=label)
        short = [name.removesuffix(".bn").split(".")[-1] for name in per_layer.index]
        right.set_xticks(range(len(per_layer)), short, rotation=45, fontsize=7)
    if high > 0:
        left.plot([low, high], [low, high], color="grey", linestyle=":", linewidth=1, label="equal")
    left.set(xscale="log", yscale="log", xlabel="running variance (what BatchNorm expects)",
             ylabel="variance of its input (what it gets)", title=layer)
    right.set(ylabel="median |log10(input var / running var)|", title="every BatchNorm, in forward order")
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    fig.tight_layout()
    return fig


VERDICT_MARKERS = {"better": "^", "tie": "o", "worse": "v"}


def plot_paired_differences(comparisons: Sequence[dict], *, col: str = "budget",
                            hue: str = "stage") -> Figure:
    """Each criterion's accuracy difference to the reference, with its interval (``stats.compare_to``).

    One axes per value of ``col``; one row per criterion, one colour per value of ``hue``; the marker
    shows the verdict (▲ better, ● tie, ▼ worse); the vertical line is "no difference".

    Args:
        comparisons: Records with "criterion", "reference", "difference", "low", "high", "verdict",
            ``col`` and ``hue`` (fractions; drawn in percentage points).
        col: Key that splits the axes, e.g. "budget".
        hue: Key that sets the colour, e.g. "stage".

    Returns:
        The Figure.
    """
    frame = pd.DataFrame(list(comparisons))
    panels = list(dict.fromkeys(frame[col]))
    hues = list(dict.fromkeys(frame[hue]))
    names = list(dict.fromkeys(frame.criterion))
    colours = dict(zip(hues, sns.color_palette("tab10", len(hues)), strict=False))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 0.35 * len(names) * len(hues) + 1.6),
                             sharey=True, squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        for j, h in enumerate(hues):
            offset = (j - (len(hues) - 1) / 2) * 0.8 / max(len(hues), 1)
            for _, r in frame[(frame[col] == panel) & (frame[hue] == h)].iterrows():
                y = names.index(r.criterion) + offset
                ax.plot([100 * r.low, 100 * r.high], [y, y], color=colours[h], linewidth=2)
                ax.scatter([100 * r.difference], [y], color=colours[h], marker=VERDICT_MARKERS[r.verdict],
                           s=40, zorder=3, label=h)
        ax.axvline(0, color="grey", linestyle=":", linewidth=1)
        ax.set(title=f"{col} {panel}", xlabel=f"accuracy − {frame.reference.iloc[0]} (points)")
        ax.set_yticks(range(len(names)), names)
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles, strict=True))
        ax.legend(unique.values(), unique.keys(), fontsize=7)
    axes[0][0].invert_yaxis()
    fig.tight_layout()
    return fig


SENSITIVITY_STAGES = {"accuracy": "as pruned", "recalibrated_accuracy": "BatchNorm recalibrated"}


def plot_sensitivity(scan: Sequence[dict], *, stages: Sequence[str] = ("accuracy", "recalibrated_accuracy"),
                     tolerance: float | None = None) -> Figure:
    """A sensitivity scan (``experiments.sensitivity_scan``): accuracy against ratio, one line per layer.

    One axes per stage (as pruned, recalibrated), one line per scanned layer (or coupled group, named
    by its first member), darker for deeper layers; the grey dashed line is the unpruned accuracy and,
    with ``tolerance``, the dotted one is that accuracy minus the tolerance (what
    ``selection.plan_from_sensitivity`` accepts).

    Args:
        scan: Records with "layer", "ratio", "baseline_accuracy" and the ``stages`` keys (fractions;
            drawn in %).
        stages: Accuracy keys to draw, one axes each.
        tolerance: Accepted drop as a fraction (0.02 = two points); None: no tolerance line.

    Returns:
        The Figure.
    """
    frame = pd.DataFrame(list(scan))
    layers = list(dict.fromkeys(frame.layer))
    colours = dict(zip(layers, sns.color_palette("viridis", len(layers)), strict=True))
    fig, axes = plt.subplots(1, len(stages), figsize=(5.2 * len(stages), 3.8), sharey=True, squeeze=False)
    baseline = 100 * float(frame.baseline_accuracy.iloc[0])
    for ax, stage in zip(axes[0], stages, strict=True):
        for layer in layers:
            rows = frame[frame.layer == layer].sort_values("ratio")
            short = layer.removesuffix(".conv").split(".")[-1] if "." in layer else layer
            ax.plot(rows.ratio, 100 * rows[stage], marker="o", color=colours[layer], label=short)
        ax.axhline(baseline, color="grey", linestyle="--", linewidth=1, label="unpruned")
        if tolerance is not None:
            ax.axhline(baseline - 100 * tolerance, color="grey", linestyle=":", linewidth=1,
                       label=f"unpruned − {100 * tolerance:g} points")
        ax.set(xlabel="ratio ρ removed from this layer only", title=SENSITIVITY_STAGES.get(stage, stage))
    axes[0][0].set_ylabel("accuracy (%)")
    axes[0][-1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


ERROR_FLOOR = 1e-12      # Nyström errors below this (exact up to round-off) are drawn at it


def plot_nystrom_explorer(results: Sequence[dict], *, ax: Axes | None = None) -> Figure:
    """‖D − D̃‖₂ against the number of landmarks m for every (layer, m) the Nyström explorer visited.

    One line per layer on a log scale; errors below ``ERROR_FLOOR`` (exact up to round-off) are drawn
    at it; the current point is ringed. Lines carry the gid ``POINTS_GID`` (``plotted_points`` counts
    them), the ring ``CURRENT_GID``.

    Args:
        results: ``nystrom_explorer``'s results ("layer", "m", "error"), oldest first.
        ax: Where to draw (default: a new figure).
    """
    ax = ax or plt.subplots(figsize=(5, 3.2))[1]
    points = explorer_points(results, x="m", series=lambda r: r["layer"], stages={"error": "error"})
    names = list(dict.fromkeys(p["series"] for p in points))
    colours = sns.color_palette("tab10", max(len(names), 1))
    for name, colour in zip(names, colours, strict=False):
        mine = sorted((p["x"], max(p["accuracy"], ERROR_FLOOR)) for p in points if p["series"] == name)
        xs, ys = zip(*mine, strict=True)
        ax.plot(xs, ys, marker="o", color=colour, label=name.removesuffix(".conv"), gid=POINTS_GID)
    now = [p for p in points if p["current"]]
    ax.scatter([p["x"] for p in now], [max(p["accuracy"], ERROR_FLOOR) for p in now], s=160,
               facecolors="none", edgecolors="black", linewidths=1.5, zorder=5, gid=CURRENT_GID)
    ax.set(xlabel="landmarks m", ylabel="‖D − D̃‖₂", yscale="log")
    ax.axhline(ERROR_FLOOR, color="grey", linestyle=":", linewidth=1, label=f"≤ {ERROR_FLOOR:.0e} (exact)")
    ax.legend(fontsize=7)
    return ax.figure


def plot_coupled_groups(widths: dict[str, int], groups: Sequence[Sequence[str]], *,
                        ax: Axes | None = None) -> Figure:
    """Every prunable conv in forward order, its bar as tall as its filter count, coloured by group.

    Convs that share a colour lose the same channels (a residual add, a concatenation, a depthwise
    chain); grey convs are coupled to nothing and get their own width. Convs outside every group
    (refused, e.g. the output layer) are hatched.

    Args:
        widths: {conv name: filters}, e.g. ``models.conv_widths(model)``, in forward order.
        groups: ``surgery.coupled_groups(model, example_input)``.
        ax: Where to draw (default: a new, wide figure).
    """
    ax = ax or plt.subplots(figsize=(min(16, 2 + 0.22 * len(widths)), 3.2))[1]
    multi = [g for g in groups if len(g) > 1]
    colours = sns.color_palette("tab20", max(len(multi), 1))
    colour_of = {name: colours[i % len(colours)] for i, g in enumerate(multi) for name in g}
    grouped = {name for g in groups for name in g}
    for i, (name, n) in enumerate(widths.items()):
        ax.bar(i, n, color=colour_of.get(name, "#bbbbbb"), edgecolor="black", linewidth=0.3,
               hatch="//" if name not in grouped else None)
    ax.set_xticks(range(len(widths)), [n.removesuffix(".weight") for n in widths], rotation=90, fontsize=6)
    ax.set(ylabel="filters", title=f"{len(widths)} prunable convs, {len(multi)} coupled groups "
                                   "(same colour = same channels removed)")
    return ax.figure


def plot_latency_vs_macs(rows: Sequence[dict]):  # noqa: ANN201  (seaborn FacetGrid)
    """Speed-up (baseline latency / pruned latency) against the share of MACs kept, one panel per batch.

    Args:
        rows: ``deploy.latency_table`` records ("macs_ratio", "speedup", "batch", "round_to", ...).

    Returns:
        The seaborn ``FacetGrid``; the dotted line is the speed-up MACs alone would promise (1 / share).
    """
    frame = pd.DataFrame(rows).assign(widths=lambda f: f["round_to"].map(
        lambda k: "any width" if k is None or pd.isna(k) else f"multiples of {int(k)}"))
    grid = sns.relplot(data=frame, x="macs_ratio", y="speedup", hue="widths", col="batch", kind="line",
                       marker="o", height=3, aspect=1.1, facet_kws={"sharey": False})
    share = sorted(frame["macs_ratio"].unique())
    for ax in grid.axes.flat:
        ax.plot(share, [1 / s for s in share], ":", color="grey", label="1 / MACs share")
        ax.axhline(1.0, color="black", linewidth=0.6)
        ax.set(xlabel="MACs kept (share of baseline)", ylabel="speed-up ×")
    return grid
