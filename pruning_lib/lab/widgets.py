"""The "Try it" pattern: a ratio slider and a criterion dropdown over precomputed scores.

Moving the slider prunes a fresh copy of the model (selection → surgery → evaluation on a small
evaluation split); the scores are computed once, before the widget is built. The logic lives in
``prune_and_measure``, a plain function that returns its numbers, so tests (and CI, which cannot
see widget output) check exactly what a student sees in the read-out.

Introduced in: notebooks/00_tour.ipynb (§Try it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import ipywidgets as W
import matplotlib.pyplot as plt
from IPython.display import display
from torch import Tensor, nn
from torch.utils.data import DataLoader

from pruning_lib import experiments, models, selection
from pruning_lib.criteria import similarity
from pruning_lib.lab import plots

TIMING_SEPARATOR = " · computed in "   # what follows it is a wall-clock time, not a result


def readout_text(result: dict, baseline: dict) -> str:
    """The one-line read-out shown under the sliders (HTML)."""
    return (f"<b>{result['ratio']:.0%} of filters removed</b> · accuracy "
            f"<b>{result['accuracy']:.1%}</b> ({result['correct']}/{result['n']} images) · "
            f"MACs <b>{result['macs'] / 1e6:.2f} M</b> ({result['macs'] / baseline['macs']:.0%} of "
            f"baseline) · params {result['params']:,}{_layers_text(result)}"
            f"{TIMING_SEPARATOR}{result['seconds']:.2f} s")


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
        output: Where the width plot is drawn.
        baseline: Measurements of the unpruned model (ratio 0).
        results: Every result so far, newest last (what the callback returned).
    """

    widget: W.VBox
    ratio: W.FloatSlider
    criterion: W.Dropdown
    layers: dict[str, W.Checkbox]
    readout: W.HTML
    output: W.Output
    baseline: dict
    results: list[dict] = field(default_factory=list)


def pruning_explorer(model: nn.Module, scores_by_criterion: dict[str, dict[str, Tensor]],
                     loader: DataLoader, example_input: Tensor, *,
                     groups: Sequence[Sequence[str]] = (), ratio: float = 0.5,
                     layer_picker: bool = False, macs_exclude: Sequence[str] = ()) -> Explorer:
    """Build the ratio × criterion explorer and render it once (so headless runs exercise it).

    Args:
        model: Unpruned model.
        scores_by_criterion: {criterion name: {conv name: (n,)}}, computed once beforehand.
        loader: Small evaluation split (a few hundred images keeps each update under 1 s).
        example_input: (1, C, H, W).
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
               "macs_exclude": macs_exclude}
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
        explorer.readout.value = readout_text(result, baseline)
        with explorer.output:
            explorer.output.clear_output(wait=True)
            ax = plots.plot_layer_widths({"baseline": baseline["widths"], "pruned": result["widths"]})
            display(ax.figure)
            plt.close(ax.figure)
        return result

    for control in (slider, dropdown, *boxes.values()):
        control.observe(update, names="value")
    picker = [W.HBox([W.Label("prune layers:"), *boxes.values()])] if boxes else []
    explorer.widget.children = [W.HBox([dropdown, slider]), *picker, explorer.readout, explorer.output]
    update()
    return explorer


def nystrom_readout_text(result: dict, weight_shape: tuple[int, ...]) -> str:
    """The read-out of ``nystrom_explorer`` (HTML) for a ``nystrom_compare`` result."""
    d = weight_shape[2] * weight_shape[3]
    return (f"m = {result['m']} landmarks (kh·kw = {d}) · ‖D − D̃‖₂ = "
            f"<b>{result['error']:.2e}</b> · kept: exact {result['kept_exact']}, "
            f"Nyström {result['kept_nystrom']} · decisions that differ: <b>{result['differ']}</b>")


def nystrom_explorer(weights: dict[str, Tensor], *, m: int = 4) -> tuple[W.VBox, list[dict]]:
    """A layer dropdown and an m slider showing ‖D − D̃‖₂ and how many keep decisions change.

    Args:
        weights: {layer name: conv weight (n, c, kh, kw)}.
        m: Initial number of landmarks.

    Returns:
        (widget to display, results list: each update appends ``nystrom_compare``'s dict + "layer").
    """
    first = next(iter(weights))
    layer = W.Dropdown(options=list(weights), value=first, description="layer")
    slider = W.IntSlider(value=m, min=1, max=min(32, weights[first].shape[0]), description="m",
                         continuous_update=False)
    readout, results = W.HTML(), []

    def update(_change: object = None) -> dict:
        slider.max = min(32, weights[layer.value].shape[0])
        result = {"layer": layer.value, **similarity.nystrom_compare(weights[layer.value], slider.value)}
        results.append(result)
        readout.value = nystrom_readout_text(result, tuple(weights[layer.value].shape))
        return result

    slider.observe(update, names="value")
    layer.observe(update, names="value")
    update()
    return W.VBox([W.HBox([layer, slider]), readout]), results


def depth_readout_text(result: dict, baseline: dict) -> str:
    """The read-out of ``depth_explorer`` (HTML)."""
    kept = result["blocks_kept"]
    return (f"<b>cut after {result['block']}</b> ({kept} residual block{'s' * (kept != 1)} kept) · "
            f"probe accuracy "
            f"<b>{result['accuracy']:.1%}</b> ({result['correct']}/{result['n']} images) · MACs "
            f"<b>{result['macs'] / 1e6:.2f} M</b> ({result['macs'] / baseline['macs']:.0%} of baseline) · "
            f"params {result['params']:,}{TIMING_SEPARATOR}{result['seconds']:.2f} s")


def depth_explorer(model: nn.Module, fit_loader: DataLoader, loader: DataLoader, example_input: Tensor, *,
                   block: str | None = None) -> tuple[W.VBox, list[dict]]:
    """A slider over the residual blocks of a ``ResNetCifar``: cut there, fit a probe head, measure.

    Args:
        model: Unpruned ``ResNetCifar`` (untouched).
        fit_loader: Images the new head is fitted on (a few hundred to a few thousand).
        loader: Small evaluation split.
        example_input: (1, C, H, W) for the MAC count.
        block: Initial cut (default: the last block, i.e. the full depth with a refitted head).

    Returns:
        (widget to display, results list: each update appends ``truncate_and_measure``'s dict).
    """
    blocks = models.residual_blocks(model, 1)
    measure = {"fit_loader": fit_loader, "loader": loader, "example_input": example_input}
    baseline = experiments.truncate_and_measure(model, blocks[-1], **measure)
    slider = W.SelectionSlider(options=blocks, value=block or blocks[-1], description="cut after",
                               continuous_update=False, layout=W.Layout(width="420px"))
    readout, results = W.HTML(), []

    def update(_change: object = None) -> dict:
        result = experiments.truncate_and_measure(model, slider.value, **measure)
        results.append(result)
        readout.value = depth_readout_text(result, baseline)
        return result

    slider.observe(update, names="value")
    update()
    return W.VBox([slider, readout]), results


def budget_readout_text(result: dict) -> str:
    """The read-out of ``budget_explorer`` (HTML)."""
    return (f"<b>budget {result['budget']:.0%} of the MACs</b> → ratio {result['ratio']:.2f} "
            f"({result['macs_fraction']:.1%} of the MACs kept) · accuracy <b>{result['accuracy']:.1%}</b> "
            f"({result['correct']}/{result['n']} images) · params {result['params']:,}"
            f"{TIMING_SEPARATOR}{result['seconds']:.2f} s")


def budget_explorer(model: nn.Module, scores_by_criterion: dict[str, dict[str, Tensor]], loader: DataLoader,
                    example_input: Tensor, *, groups: Sequence[Sequence[str]] = (), budget: float = 0.5,
                    step: float = 0.01) -> tuple[W.VBox, list[dict]]:
    """A MAC-budget slider, a criterion dropdown and a uniform/global toggle; each change prunes a copy
    of ``model`` to the budget and measures it (before fine-tuning).

    Returns:
        (widget to display, results list: each update appends ``budget_and_measure``'s dict plus
        "criterion" and "allocation").
    """
    first = next(iter(scores_by_criterion))
    slider = W.FloatSlider(value=budget, min=0.1, max=1.0, step=0.05, description="MAC budget",
                           continuous_update=False, readout_format=".2f")
    dropdown = W.Dropdown(options=list(scores_by_criterion), value=first, description="criterion")
    allocation = W.ToggleButtons(options=["uniform", "global"], value="uniform", description="widths")
    plan_fns = {"uniform": selection.plan_uniform, "global": selection.plan_global}
    readout, results = W.HTML(), []

    def update(_change: object = None) -> dict:
        result = experiments.budget_and_measure(model, scores_by_criterion[dropdown.value], slider.value,
                                    example_input=example_input, loader=loader, groups=groups,
                                    plan_fn=plan_fns[allocation.value], step=step)
        result.update(criterion=dropdown.value, allocation=allocation.value)
        results.append(result)
        readout.value = budget_readout_text(result)
        return result

    for control in (slider, dropdown, allocation):
        control.observe(update, names="value")
    update()
    return W.VBox([W.HBox([dropdown, slider]), allocation, readout]), results
