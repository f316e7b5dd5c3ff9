"""What a student sees: open each lesson in JupyterLab, run it, move the slider, read the result.

For every lesson with a "Try it" widget: run all cells (FAST mode), find the slider, move it one
step with the keyboard, and check that the read-out now shows the values the library computes for
the new position (accuracy as pruned and after BatchNorm recalibration, MACs, params), that the
explorer's plot gained a point per stage ("points plotted: N" in the read-out) and that its figure
was redrawn. For lesson 00 also check that the live fine-tuning figure changes while it trains;
for lesson 06 also untick a layer's checkbox and check the read-out for the other two layers.
Screenshots go to build/e2e/.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from pruning_lib import criteria, data, experiments, models, surgery
from pruning_lib.criteria import similarity

pytestmark = pytest.mark.e2e
EXAMPLE = torch.zeros(1, 1, 28, 28)
RUN_TIMEOUT_MS = int(os.environ.get("PRUNING_E2E_TIMEOUT_S", "900")) * 1000   # raise it on a busy machine
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "e2e"


def visible_text(html: str) -> str:
    """The text a browser shows for a read-out's HTML (tags dropped, spaces collapsed)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html)).strip()


ERROR_OUTPUT = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]'


def dismiss_dialogs(page: object) -> None:
    """Accept JupyterLab's "Select Kernel" dialog and decline the news notification, if shown."""
    dialog = page.locator(".jp-Dialog .jp-mod-accept")
    if dialog.count():
        dialog.first.click()
        page.wait_for_function("() => !document.querySelector('.jp-Dialog')", timeout=30_000)
    news = page.locator(".jp-toast-button[title='No']")
    if news.count():
        news.first.click()


def fail_on_cell_error(page: object) -> None:
    errors = page.locator(ERROR_OUTPUT)
    if errors.count():
        raise AssertionError(f"a notebook cell raised: {errors.first.inner_text()[:2000]}")


def wait_for_readout(page: object, marker: str) -> object:
    """Wait until the widget read-out containing ``marker`` shows, failing early on a cell error."""
    box = readout(page, marker)
    deadline = time.monotonic() + RUN_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        fail_on_cell_error(page)
        if box.count() and box.is_visible():
            box.scroll_into_view_if_needed()          # off-screen cells may render no text (windowing)
            if marker in visible_text(box.inner_text()):
                return box
        time.sleep(0.25)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "failure.png"), full_page=True)
    raise AssertionError(f"no widget read-out containing {marker!r} after {RUN_TIMEOUT_MS / 1000:.0f} s "
                         f"(screenshot: {SCREENSHOTS / 'failure.png'})")


def open_and_run(page: object, lab_url: str, notebook: str) -> None:
    """Open a notebook, handle JupyterLab's dialogs, and run all cells."""
    page.goto(f"{lab_url}/lab/tree/{notebook}?reset")        # ?reset: no tabs from earlier tests
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.locator(".jp-StatusBar-TextItem", has_text="| Idle").wait_for(timeout=60_000)  # kernel ready
    dismiss_dialogs(page)
    page.locator(".jp-Notebook >> visible=true").first.click()
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()


def readout(page: object, marker: str) -> object:
    return page.locator(".widget-html-content", has_text=marker).first


def move_slider_right(page: object) -> None:
    handle = page.locator(".widget-slider .noUi-handle").first
    handle.scroll_into_view_if_needed()
    handle.focus()
    page.keyboard.press("ArrowRight")


def wait_for_change(locator: object, before: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = locator.inner_text()
        if now != before:
            return now
        time.sleep(0.2)
    raise AssertionError(f"the read-out did not change within {timeout:.0f} s: {before!r}")


READOUT = re.compile(r"(?P<ratio>\d+)% of filters removed · accuracy (?P<acc>[\d.]+)% "
                     r"\((?P<correct>\d+)/(?P<n>\d+) images\) · after BatchNorm recalibration on "
                     r"(?P<calib>\d+) training images (?P<racc>[\d.]+)% \((?P<rcorrect>\d+)/(?P<rn>\d+)\) · "
                     r"MACs (?P<macs>[\d.]+) M .*params (?P<params>[\d,]+).* points plotted: (?P<points>\d+)")
RECALIBRATED = re.compile(r"after BatchNorm recalibration on (\d+) training images ([\d.]+)% \((\d+)/(\d+)\)")
POINTS = re.compile(r"points plotted: (\d+)")


def parse_readout(text: str) -> dict:
    """The numbers a student reads under the slider (independent of the library's formatter)."""
    found = READOUT.search(visible_text(text))
    assert found, f"unexpected read-out: {text!r}"
    return {"ratio": int(found["ratio"]) / 100, "accuracy": float(found["acc"]) / 100,
            "correct": int(found["correct"]), "n": int(found["n"]),
            "recalibrate_images": int(found["calib"]), "recalibrated_accuracy": float(found["racc"]) / 100,
            "recalibrated_correct": int(found["rcorrect"]), "recalibrated_n": int(found["rn"]),
            "macs_m": float(found["macs"]), "params": int(found["params"].replace(",", "")),
            "points": int(found["points"])}


def parse_recalibrated(text: str) -> dict:
    """The recalibrated stage and the plot's point count of any explorer's read-out."""
    text = visible_text(text)
    found, points = RECALIBRATED.search(text), POINTS.search(text)
    assert found and points, f"no recalibrated accuracy or point count in the read-out: {text!r}"
    return {"recalibrate_images": int(found[1]), "recalibrated_accuracy": float(found[2]) / 100,
            "recalibrated_correct": int(found[3]), "n": int(found[4]), "points": int(points[1])}


def check_recalibrated(shown: dict, truth: dict) -> None:
    """The read-out's recalibrated stage is the library's (``train.recalibrate_bn`` then ``evaluate``)."""
    assert truth["recalibrated_correct"] is not None, "the library was asked without a recalibration loader"
    assert (shown["recalibrated_correct"], shown["recalibrate_images"]) == (
        truth["recalibrated_correct"], truth["recalibrate_images"])
    assert shown["recalibrated_accuracy"] == pytest.approx(truth["recalibrated_accuracy"], abs=0.0005)


def figure_source(box: object) -> str:
    """The ``src`` of the figure drawn in the explorer's cell (empty when there is none)."""
    image = box.locator("xpath=ancestor::div[contains(@class, 'jp-Cell')][1]").locator(
        ".jp-OutputArea-output img")
    return (image.first.get_attribute("src") or "") if image.count() else ""


def wait_for_figure_change(box: object, before: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = figure_source(box)
        if now and now != before:
            return now
        time.sleep(0.2)
    raise AssertionError("the explorer's plot was not redrawn after the move")


def parse_recalibrated_points(text: str) -> int:
    """The "points plotted: N" of any explorer's read-out."""
    found = POINTS.search(visible_text(text))
    assert found, f"no point count in the read-out: {text!r}"
    return int(found[1])


def check_plot_grew(box: object, figure_before: str, points_before: int, points_after: int, *,
                    per_move: int = 2) -> None:
    """A move to a new position adds one point per stage (two: pruned, recalibrated), and the figure
    is redrawn."""
    assert points_after == points_before + per_move, (points_before, points_after)
    wait_for_figure_change(box, figure_before)


def check_pruning_slider(page: object, notebook: str, expected: Callable[[float], dict],
                         step: float = 0.05) -> None:
    box = wait_for_readout(page, "of filters removed")
    before = parse_readout(box.inner_text())
    figure = figure_source(box)
    move_slider_right(page)
    shown = parse_readout(wait_for_change(box, box.inner_text()))
    truth = expected(round(before["ratio"] + step, 2))
    assert shown["ratio"] == pytest.approx(truth["ratio"])
    assert (shown["correct"], shown["n"], shown["params"]) == (truth["correct"], truth["n"], truth["params"])
    assert shown["accuracy"] == pytest.approx(truth["accuracy"], abs=0.0005)
    assert shown["macs_m"] == pytest.approx(truth["macs"] / 1e6, abs=0.005)
    check_recalibrated(shown, truth)
    check_plot_grew(box, figure, before["points"], shown["points"])
    page.screenshot(path=str(SCREENSHOTS / f"{notebook.removesuffix('.ipynb')}.png"), full_page=False)


def fashion_recalibration() -> object:
    """The 200 training images the Fashion-MNIST lessons' explorers recalibrate on (seed 0)."""
    return experiments.recalibration_loader(data.load_fashion_mnist(), 20, seed=0)


def pruning_expectation(model_loader: Callable[[], object], loader: object, ratio_scores: str | dict, *,
                        example: torch.Tensor = EXAMPLE, **measure: object):
    """The read-out the library computes for the lesson's explorer at a given ratio.

    ``ratio_scores``: a passive criterion's name, or precomputed {conv name: scores}. ``measure``:
    more arguments of ``experiments.prune_and_measure`` (``recalibrate_loader``, ``macs_exclude``).
    """
    model = model_loader()
    scores = (criteria.score_model(model, criteria.PASSIVE_CRITERIA[ratio_scores])
              if isinstance(ratio_scores, str) else ratio_scores)
    groups = surgery.coupled_groups(model, example)

    def expected(ratio: float, layers: list[str] | None = None) -> dict:
        return experiments.prune_and_measure(model, scores, ratio, example_input=example, loader=loader,
                                         groups=groups, layers=layers, **measure)

    return expected


def test_lesson_00_slider_and_live_curve(page, lab_url):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    open_and_run(page, lab_url, "00_tour.ipynb")
    curve_cell = page.locator(".jp-Cell", has_text="plots.LiveCurve()").first
    curve_cell.wait_for(timeout=RUN_TIMEOUT_MS)
    frames: set[str] = set()
    deadline = time.monotonic() + RUN_TIMEOUT_MS / 1000
    while time.monotonic() < deadline and not readout(page, "of filters removed").count():
        fail_on_cell_error(page)
        images = curve_cell.locator(".jp-OutputArea-output img")
        if images.count():
            frames.add(images.first.get_attribute("src") or "")
        time.sleep(0.1)
    assert len(frames) >= 2, "the live training figure never changed while fine-tuning ran"
    fashion = data.fashion_mnist_loaders(fast=True, seed=0).data
    expected = pruning_expectation(lambda: models.load_pretrained("vgg16_slim"),
                                   data.subset_loader(fashion, "test", 50, seed=1), "l1",
                                   recalibrate_loader=experiments.recalibration_loader(fashion, 20, seed=0))
    check_pruning_slider(page, "00_tour.ipynb", expected)


def test_lesson_01_slider(page, lab_url):
    open_and_run(page, lab_url, "01_norms_and_operator_norm.ipynb")
    loader = data.subset_loader(data.load_fashion_mnist(), "test", 50, seed=0)
    expected = pruning_expectation(lambda: models.load_pretrained("vgg16_slim"), loader, "l1",
                                   recalibrate_loader=fashion_recalibration())
    check_pruning_slider(page, "01_norms_and_operator_norm.ipynb", expected)


def test_lesson_02_landmark_slider(page, lab_url):
    open_and_run(page, lab_url, "02_similarity_and_nystrom.ipynb")
    box = wait_for_readout(page, "landmarks (kh·kw")
    before = box.inner_text()
    found = re.search(r"m = (\d+) landmarks", visible_text(before))
    assert found, f"unexpected read-out: {before!r}"
    m, points = int(found[1]), parse_recalibrated_points(before)
    figure = figure_source(box)
    move_slider_right(page)
    after = wait_for_change(box, before)
    vgg = models.load_pretrained("vgg16_slim")
    weight = vgg.features.conv1.conv.weight.detach()
    truth = similarity.nystrom_compare(weight, m + 1)
    shown = re.search(r"m = (\d+) landmarks .* = ([\d.e+-]+) · kept: exact (\d+), Nyström (\d+) · "
                      r"decisions that differ: (\d+)", visible_text(after))
    assert shown, f"unexpected read-out: {after!r}"
    assert int(shown[1]) == truth["m"] == m + 1
    assert float(shown[2]) == pytest.approx(truth["error"], rel=0.01, abs=1e-12)
    assert (int(shown[3]), int(shown[4]), int(shown[5])) == (
        truth["kept_exact"], truth["kept_nystrom"], truth["differ"])
    check_plot_grew(box, figure, points, parse_recalibrated_points(after), per_move=1)  # one stage: error
    page.screenshot(path=str(SCREENSHOTS / "02_similarity_and_nystrom.png"), full_page=False)


def test_lesson_06_slider_and_layer_checkboxes(page, lab_url):
    from pruning_lib.audio import data as audio_data
    from pruning_lib.audio import models as audio_models

    open_and_run(page, lab_url, "06_audio_pruning.ipynb")
    fsdd = audio_data.fsdd_loaders("speaker:theo", fast=True, seed=0)
    clip, frontend = audio_models.example_input(), ("frontend",)
    recalibrate_on = experiments.recalibration_loader(fsdd.data, 20, seed=0)      # the notebook's 200 clips
    expected = pruning_expectation(lambda: models.load_pretrained("dcase21_net_speaker-theo"), fsdd.eval,
                                   "l1", example=clip, macs_exclude=frontend,
                                   recalibrate_loader=recalibrate_on)
    check_pruning_slider(page, "06_audio_pruning.ipynb", expected)
    # untick conv1: only conv2 and conv3 are pruned now, at the slider's new ratio (0.55)
    box = wait_for_readout(page, "of filters removed")
    before = box.inner_text()
    page.locator(".widget-checkbox", has_text="conv1").locator("input").first.click()
    shown_text = visible_text(wait_for_change(box, before))
    assert "pruned layers: conv2, conv3" in shown_text
    shown = parse_readout(shown_text)
    truth = expected(0.55, layers=["features.conv2.conv", "features.conv3.conv"])
    assert (shown["correct"], shown["n"], shown["params"]) == (truth["correct"], truth["n"], truth["params"])
    assert shown["macs_m"] == pytest.approx(truth["macs"] / 1e6, abs=0.005)
    check_recalibrated(shown, truth)
    assert shown["points"] == parse_readout(before)["points"] + 2         # a new curve: l1 (conv2, conv3)


def test_lesson_05_depth_slider(page, lab_url):
    from pruning_lib import models

    open_and_run(page, lab_url, "05_pls_layer_pruning.ipynb")
    box = wait_for_readout(page, "cut after")
    before = visible_text(box.inner_text())
    figure = figure_source(box)
    block = re.search(r"cut after (layer\d\.\d+)", before)[1]
    move_slider_right(page)
    after = visible_text(wait_for_change(box, box.inner_text()))
    shown = re.search(r"cut after (\S+) \((\d+) residual blocks? kept\) · probe accuracy ([\d.]+)% "
                      r"\((\d+)/(\d+) images\) · after .* MACs ([\d.]+) M .* params ([\d,]+)", after)
    assert shown, f"unexpected read-out: {after!r}"
    resnet = models.load_pretrained("resnet20")
    blocks = models.residual_blocks(resnet, 1)
    fashion = data.load_fashion_mnist()
    truth = experiments.truncate_and_measure(
        resnet, blocks[blocks.index(block) + 1], example_input=EXAMPLE,
        fit_loader=data.subset_loader(fashion, "train", 100, seed=0, batch_size=256),
        loader=data.subset_loader(fashion, "test", 50, seed=0), recalibrate_loader=fashion_recalibration())
    assert shown[1] == truth["block"] and int(shown[2]) == truth["blocks_kept"]
    assert (int(shown[4]), int(shown[5])) == (truth["correct"], truth["n"])
    assert float(shown[6]) == pytest.approx(truth["macs"] / 1e6, abs=0.005)
    assert int(shown[7].replace(",", "")) == truth["params"]
    check_recalibrated(parse_recalibrated(after), truth)
    check_plot_grew(box, figure, parse_recalibrated(before)["points"], parse_recalibrated(after)["points"])
    page.screenshot(path=str(SCREENSHOTS / "05_pls_layer_pruning.png"), full_page=False)


def test_lesson_07_budget_slider(page, lab_url):
    open_and_run(page, lab_url, "07_comparison.ipynb")
    box = wait_for_readout(page, "of the MACs")
    before = visible_text(box.inner_text())
    figure = figure_source(box)
    budget = int(re.search(r"budget (\d+)% of the MACs", before)[1]) / 100
    move_slider_right(page)
    after = visible_text(wait_for_change(box, box.inner_text()))
    shown = re.search(r"budget (\d+)% of the MACs → ratio ([\d.]+) \(([\d.]+)% of the MACs kept\) · accuracy "
                      r"([\d.]+)% \((\d+)/(\d+) images\) · after .* params ([\d,]+)", after)
    assert shown, f"unexpected read-out: {after!r}"
    vgg = models.load_pretrained("vgg16_slim")
    loader = data.subset_loader(data.load_fashion_mnist(), "test", 50, seed=0)
    truth = experiments.budget_and_measure(vgg, criteria.score_model(vgg, criteria.l1_norm),
                                           round(budget + 0.05, 2), example_input=EXAMPLE, loader=loader,
                                           recalibrate_loader=fashion_recalibration())
    assert int(shown[1]) / 100 == pytest.approx(truth["budget"])
    assert float(shown[2]) == pytest.approx(truth["ratio"])
    assert (int(shown[5]), int(shown[6]), int(shown[7].replace(",", ""))) == (
        truth["correct"], truth["n"], truth["params"])
    check_recalibrated(parse_recalibrated(after), truth)
    check_plot_grew(box, figure, parse_recalibrated(before)["points"], parse_recalibrated(after)["points"])
    page.screenshot(path=str(SCREENSHOTS / "07_comparison.png"), full_page=False)


def _fast_game_batch(per_class: int, seed: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed evaluation batch lessons 03 and 04 build in FAST mode."""
    from pruning_lib.criteria import ensembles

    loader = data.subset_loader(data.load_fashion_mnist(), "train", per_class, seed=seed, batch_size=256)
    return ensembles.first_batch(loader, n)


def test_lesson_03_slider_with_ensemble_scores(page, lab_url):
    from pruning_lib.criteria import ensembles

    open_and_run(page, lab_url, "03_linear_filter_ensembles.ipynb")
    vgg = models.load_pretrained("vgg16_slim")
    config = ensembles.EnsembleConfig(n_masks=256, keep_prob=0.8, ridge=1.0, seed=0)    # the FAST parameters
    scores = ensembles.ensemble_scores(vgg, _fast_game_batch(3, 3, 32), layers=models.prunable_convs(vgg),
                                       config=config)
    loader = data.subset_loader(data.load_fashion_mnist(), "test", 50, seed=0)
    expected = pruning_expectation(lambda: vgg, loader, scores, recalibrate_loader=fashion_recalibration())
    check_pruning_slider(page, "03_linear_filter_ensembles.ipynb", expected)


def test_lesson_04_slider_with_shapley_scores(page, lab_url):
    from pruning_lib.criteria import snpfi

    open_and_run(page, lab_url, "04_filter_interaction.ipynb")
    vgg = models.load_pretrained("vgg16_slim")
    layers = ["features.conv9.conv", "features.conv13.conv"]                         # the FAST parameters
    phi, _ = snpfi.snpfi_scores(vgg, _fast_game_batch(3, 4, 30), layers=layers,
                                config=snpfi.SNPFIConfig(n_permutations=2, share=0.95, seed=0))
    loader = data.subset_loader(data.load_fashion_mnist(), "test", 50, seed=0)
    expected = pruning_expectation(lambda: vgg, loader, phi, recalibrate_loader=fashion_recalibration())
    check_pruning_slider(page, "04_filter_interaction.ipynb", expected)
