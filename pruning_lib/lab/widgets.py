"""The "Try it" pattern: a ratio slider and a criterion dropdown over precomputed scores.

Moving the slider prunes a fresh copy of the model (selection → surgery → evaluation on a small
evaluation split, before and after BatchNorm recalibration on a few hundred training images); the
scores are computed once, before the widget is built. The logic lives in
``experiments.prune_and_measure`` (and ``budget_and_measure``, ``truncate_and_measure``), plain
functions that return their numbers, so tests (and CI, which cannot see widget output) check exactly
what a student sees in the read-out. Every explorer also plots accuracy against the slider's value
(``plots.plot_explorer``), one point per position and criterion visited, so the curve grows as the
student explores. Widgets only display: they compute nothing of their own.

Introduced in: notebooks/00_tour.ipynb (§Try it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import ipywidgets as W
import matplotlib.pyplot as plt
from IPython.display import display
from matplotlib.figure import Figure
from torch import Tensor, nn
from torch.utils.data import DataLoader

from pruning_lib import experiments, models, selection
from pruning_lib.criteria import similarity
from pruning_lib.lab import plots

TIMING_SEPARATOR = " · computed in "   # what follows it is a wall-clock time, not a result


def readout_text(result: dict, baseline: dict, *, points: int | None = None) -> str:
    """The one-line read-out shown under the sliders (HTML).

    Args:
        result: ``experiments.prune_and_measure``'s dict.
        baseline: The same for the unpruned model (its MACs are the 100%).
        points: How many points the explorer's plot shows (None: not said).
    """
    return (f"<b>{result['ratio']:.0%} of filters removed</b> · accuracy "
            f"<b>{result['accuracy']:.1%}</b> ({result['correct']}/{result['n']} images)"
            f"{recalibrated_text(result)} · "
            f"MACs <b>{result['macs'] / 1e6:.2f} M</b> ({result['macs'] / baseline['macs']:.0%} of "
            f"baseline) · params {result['params']:,}{_layers_text(result)}{_points_text(points)}"
            f"{TIMING_SEPARATOR}{result['seconds']:.2f} s")


def recalibrated_text(result: dict) -> str:
    """" · after BatchNorm recalibration on N training images X% (c/n)" (nothing when not recalibrated)."""
    if result.get("recalibrated_accuracy") is None:
        return ""
    return (f" · after BatchNorm recalibration on {result['recalibrate_images']} training images "
            f"<b>{result['recalibrated_accuracy']:.1%}</b> ({result['recalibrated_correct']}/{result['n']})")


def _points_text(points: int | None) -> str:
    return "" if points is None else f" · points plotted: {points}"


def _show(output: W.Output, figure: Figure) -> None:
    """Replace what ``output`` shows by ``figure`` (then release it from pyplot)."""
    with output:
        output.clear_output(wait=True)
        display(figure)
    plt.close(figure)


def _layers_text(result: dict) -> str:
    """" · in conv1, conv3" when only some scored layers are pruned (else nothing)."""
    layers, scored = result.get("layers"), result.get("widths", {})
    if layers is None or len(layers) == len(scored):
        return ""
    short = ", ".join(name.removesuffix(".conv").rsplit(".", 1)[-1] for name in layers)
    return f" · pruned layers: {short or 'none'}"


@dataclass
class Explorer:
    """A built "Try it" widget and everything it computed.

    Attributes:
        widget: The box to display.
        ratio: The ratio slider.
        criterion: The criterion dropdown.
        layers: One checkbox per scored layer ({conv name: checkbox}); empty unless the explorer
            was built with ``layer_picker=True``.
        readout: HTML read-out of the last result.
        output: Where the accuracy plot and the width plot are drawn.
        baseline: Measurements of the unpruned model (ratio 0).
        results: Every result so far, newest last (what the callback returned).
        figure: The figure drawn last (accuracy against ratio, left; layer widths, right).
    """

    widget: W.VBox
    ratio: W.FloatSlider
    criterion: W.Dropdown
    layers: dict[str, W.Checkbox]
    readout: W.HTML
    output: W.Output
    baseline: dict
    results: list[dict] = field(default_factory=list)
    figure: Figure | None = None


def series_name(result: dict) -> str:
    """A pruning-explorer result's curve: its criterion, and its pruned layers when not all are."""
    layers = _layers_text(result).removeprefix(" · pruned layers: ")
    return f"{result['criterion']} ({layers})" if layers else result["criterion"]


def pruning_explorer(model: nn.Module, scores_by_criterion: dict[str, dict[str, Tensor]],  # noqa: PLR0913 — the explorer's options are keyword-only, with defaults
                     loader: DataLoader, example_input: Tensor, *,
                     recalibrate_loader: DataLoader | None = None, recalibrate_images: int = 1000,
                     groups: Sequence[Sequence[str]] = (), ratio: float = 0.5,
                     layer_picker: bool = False, macs_exclude: Sequence[str] = ()) -> Explorer:
    """Build the ratio × criterion explorer and render it once (so headless runs exercise it).

    Args:
        model: Unpruned model.
        scores_by_criterion: {criterion name: {conv name: (n,)}}, computed once beforehand.
        loader: Small evaluation split (the lessons pass 500 images; the read-out gives each move's time).
        example_input: (1, C, H, W).
        recalibrate_loader: A few hundred *training* images (a fixed, unshuffled loader) on which
            every pruned copy's BatchNorm statistics are re-estimated (``train.recalibrate_bn``);
            None: no recalibrated accuracy.
        recalibrate_images: How many of its images to forward.
        groups: Coupled conv groups.
        ratio: Initial slider value.
        layer_picker: Add one checkbox per scored layer: only ticked layers are pruned (the
            layer-by-layer experiments of the audio lesson).
        macs_exclude: Submodules left out of the MAC count, e.g. ``("frontend",)``.

    Returns:
        An ``Explorer``; display ``explorer.widget``.
    """
    first = next(iter(scores_by_criterion))
    measure = {"example_input": example_input, "loader": loader, "groups": groups,
               "macs_exclude": macs_exclude, "recalibrate_loader": recalibrate_loader,
               "recalibrate_images": recalibrate_images}
    baseline = experiments.prune_and_measure(model, scores_by_criterion[first], 0.0, **measure)
    slider = W.FloatSlider(value=ratio, min=0.0, max=0.95, step=0.05, description="prune ratio",
                           continuous_update=False, readout_format=".2f")
    dropdown = W.Dropdown(options=list(scores_by_criterion), value=first, description="criterion")
    boxes = ({name: W.Checkbox(value=True, description=name.removesuffix(".conv").rsplit(".", 1)[-1],
                               indent=False, layout=W.Layout(width="auto"))
              for name in scores_by_criterion[first]} if layer_picker else {})
    explorer = Explorer(W.VBox(), slider, dropdown, boxes, W.HTML(), W.Output(), baseline)

    def update(_change: object = None) -> dict:
        layers = [name for name, box in boxes.items() if box.value] if boxes else None
        result = experiments.prune_and_measure(model, scores_by_criterion[dropdown.value], slider.value,
                                   layers=layers, **measure)
        result["criterion"] = dropdown.value
        explorer.results.append(result)
        points = plots.explorer_points(explorer.results, x="ratio", series=series_name)
        explorer.readout.value = readout_text(result, baseline, points=len(points))
        figure, (left, right) = plt.subplots(1, 2, figsize=(12, 3.6), width_ratios=(2, 3))
        plots.plot_explorer(explorer.results, x="ratio", series=series_name, baseline=baseline["accuracy"],
                            xlabel="fraction of filters removed", ax=left)
        plots.plot_layer_widths({"baseline": baseline["widths"], "pruned": result["widths"]}, ax=right)
        figure.subplots_adjust(left=0.06, right=0.99, bottom=0.3, top=0.97, wspace=0.15)  # no tight_layout:
        explorer.figure = figure                                                  # it costs ~0.2 s a move
        _show(explorer.output, figure)
        return result

    for control in (slider, dropdown, *boxes.values()):
        control.observe(update, names="value")
    picker = [W.HBox([W.Label("prune layers:"), *boxes.values()])] if boxes else []
    explorer.widget.children = [W.HBox([dropdown, slider]), *picker, explorer.readout, explorer.output]
    update()
    return explorer


def nystrom_readout_text(result: dict, weight_shape: tuple[int, ...], *, points: int | None = None) -> str:
    """The read-out of ``nystrom_explorer`` (HTML) for a ``nystrom_compare`` result."""
    d = weight_shape[2] * weight_shape[3]
    return (f"m = {result['m']} landmarks (kh·kw = {d}) · ‖D − D̃‖₂ = "
            f"<b>{result['error']:.2e}</b> · kept: exact {result['kept_exact']}, "
            f"Nyström {result['kept_nystrom']} · decisions that differ: <b>{result['differ']}</b>"
            f"{_points_text(points)}")


def nystrom_explorer(weights: dict[str, Tensor], *, m: int = 4) -> tuple[W.VBox, list[dict]]:
    """The Nyström explorer: a layer dropdown and an m slider.

    The read-out shows ‖D − D̃‖₂ and how many keep decisions change, and a
    plot of the error against m for every (layer, m) visited (``plots.plot_nystrom_explorer``).

    Args:
        weights: {layer name: conv weight (n, c, kh, kw)}.
        m: Initial number of landmarks.

    Returns:
        (widget to display: controls, read-out, plot; results list: each update appends
        ``nystrom_compare``'s dict + "layer").
    """
    first = next(iter(weights))
    layer = W.Dropdown(options=list(weights), value=first, description="layer")
    slider = W.IntSlider(value=m, min=1, max=min(32, weights[first].shape[0]), description="m",
                         continuous_update=False)
    readout, output, results = W.HTML(), W.Output(), []

    def update(_change: object = None) -> dict:
        slider.max = min(32, weights[layer.value].shape[0])
        result = {"layer": layer.value, **similarity.nystrom_compare(weights[layer.value], slider.value)}
        results.append(result)
        points = plots.explorer_points(results, x="m", series=_layer, stages={"error": "error"})
        readout.value = nystrom_readout_text(result, tuple(weights[layer.value].shape), points=len(points))
        _show(output, plots.plot_nystrom_explorer(results))
        return result

    slider.observe(update, names="value")
    layer.observe(update, names="value")
    update()
    return W.VBox([W.HBox([layer, slider]), readout, output]), results


def _layer(result: dict) -> str:
    return result["layer"]


def depth_readout_text(result: dict, baseline: dict, *, points: int | None = None) -> str:
    """The read-out of ``depth_explorer`` (HTML)."""
    kept = result["blocks_kept"]
    return (f"<b>cut after {result['block']}</b> ({kept} residual block{'s' * (kept != 1)} kept) · "
            f"probe accuracy "
            f"<b>{result['accuracy']:.1%}</b> ({result['correct']}/{result['n']} images)"
            f"{recalibrated_text(result)} · MACs "
            f"<b>{result['macs'] / 1e6:.2f} M</b> ({result['macs'] / baseline['macs']:.0%} of baseline) · "
            f"params {result['params']:,}{_points_text(points)}{TIMING_SEPARATOR}{result['seconds']:.2f} s")


def depth_explorer(model: nn.Module, fit_loader: DataLoader, loader: DataLoader, example_input: Tensor, *,
                   block: str | None = None, recalibrate_loader: DataLoader | None = None,
                   recalibrate_images: int = 1000) -> tuple[W.VBox, list[dict]]:
    """A slider over the residual blocks of a ``ResNetCifar``: where to cut.

    Each position cuts there, fits a probe head, measures,
    and plot probe accuracy against the number of blocks kept.

    Args:
        model: Unpruned ``ResNetCifar`` (untouched).
        fit_loader: Images the new head is fitted on (a few hundred to a few thousand).
        loader: Small evaluation split.
        example_input: (1, C, H, W) for the MAC count.
        block: Initial cut (default: the last block, i.e. the full depth with a refitted head).
        recalibrate_loader: Training images for BatchNorm recalibration before the head is fitted
            (``experiments.truncate_and_measure``); None: no recalibrated accuracy.
        recalibrate_images: How many of them.

    Returns:
        (widget to display: slider, read-out, plot; results list: each update appends
        ``truncate_and_measure``'s dict).
    """
    blocks = models.residual_blocks(model, 1)
    measure = {"fit_loader": fit_loader, "loader": loader, "example_input": example_input,
               "recalibrate_loader": recalibrate_loader, "recalibrate_images": recalibrate_images}
    baseline = experiments.truncate_and_measure(model, blocks[-1], **measure)
    slider = W.SelectionSlider(options=blocks, value=block or blocks[-1], description="cut after",
                               continuous_update=False, layout=W.Layout(width="420px"))
    readout, output, results = W.HTML(), W.Output(), []

    def update(_change: object = None) -> dict:
        result = experiments.truncate_and_measure(model, slider.value, **measure)
        results.append(result)
        points = plots.explorer_points(results, x="blocks_kept", series=_probe)
        readout.value = depth_readout_text(result, baseline, points=len(points))
        figure = plots.plot_explorer(results, x="blocks_kept", series=_probe, xlabel="residual blocks kept")
        _show(output, figure)
        return result

    slider.observe(update, names="value")
    update()
    return W.VBox([slider, readout, output]), results


def _probe(_result: dict) -> str:
    return "probe head"


def budget_readout_text(result: dict, *, points: int | None = None) -> str:
    """The read-out of ``budget_explorer`` (HTML)."""
    return (f"<b>budget {result['budget']:.0%} of the MACs</b> → ratio {result['ratio']:.2f} "
            f"({result['macs_fraction']:.1%} of the MACs kept) · accuracy <b>{result['accuracy']:.1%}</b> "
            f"({result['correct']}/{result['n']} images){recalibrated_text(result)} · params "
            f"{result['params']:,}{_points_text(points)}{TIMING_SEPARATOR}{result['seconds']:.2f} s")


def budget_series(result: dict) -> str:
    """A budget-explorer result's curve: "criterion, uniform" or "criterion, global"."""
    return f"{result['criterion']}, {result['allocation']}"


def budget_explorer(model: nn.Module, scores_by_criterion: dict[str, dict[str, Tensor]], loader: DataLoader,  # noqa: PLR0913 — the explorer's options are keyword-only, with defaults
                    example_input: Tensor, *, groups: Sequence[Sequence[str]] = (), budget: float = 0.5,
                    step: float = 0.01, recalibrate_loader: DataLoader | None = None,
                    recalibrate_images: int = 1000) -> tuple[W.VBox, list[dict]]:
    """A MAC-budget slider, a criterion dropdown and a uniform/global toggle.

    Each change prunes a copy
    of ``model`` to the budget and measures it (before fine-tuning: as pruned and, with a
    ``recalibrate_loader`` of training images, after BatchNorm recalibration), and plots accuracy
    against the budget, one curve per criterion and allocation.

    Returns:
        (widget to display: controls, toggle, read-out, plot; results list: each update appends
        ``budget_and_measure``'s dict plus "criterion" and "allocation").
    """
    first = next(iter(scores_by_criterion))
    slider = W.FloatSlider(value=budget, min=0.1, max=1.0, step=0.05, description="MAC budget",
                           continuous_update=False, readout_format=".2f")
    dropdown = W.Dropdown(options=list(scores_by_criterion), value=first, description="criterion")
    allocation = W.ToggleButtons(options=["uniform", "global"], value="uniform", description="widths")
    plan_fns = {"uniform": selection.plan_uniform, "global": selection.plan_global}
    readout, output, results = W.HTML(), W.Output(), []

    def update(_change: object = None) -> dict:
        result = experiments.budget_and_measure(model, scores_by_criterion[dropdown.value], slider.value,
                                                example_input=example_input, loader=loader, groups=groups,
                                                plan_fn=plan_fns[allocation.value], step=step,
                                                recalibrate_loader=recalibrate_loader,
                                                recalibrate_images=recalibrate_images)
        result.update(criterion=dropdown.value, allocation=allocation.value)
        results.append(result)
        points = plots.explorer_points(results, x="budget", series=budget_series)
        readout.value = budget_readout_text(result, points=len(points))
        figure = plots.plot_explorer(results, x="budget", series=budget_series,
                                     xlabel="MAC budget (fraction of the unpruned MACs)")
        _show(output, figure)
        return result

    for control in (slider, dropdown, allocation):
        control.observe(update, names="value")
    update()
    return W.VBox([W.HBox([dropdown, slider]), allocation, readout, output]), results
