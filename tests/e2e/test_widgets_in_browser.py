"""What a student sees: open each lesson in JupyterLab, run it, move the slider, read the result.

For every lesson with a "Try it" widget: run all cells (FAST mode), find the slider, move it one
step with the keyboard, and check that the read-out now shows the value the library computes for
the new position. For lesson 00 also check that the live fine-tuning figure changes while it trains.
Screenshots go to build/e2e/.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from pruning_lib import criteria, data, models, surgery, widgets

pytestmark = pytest.mark.e2e
EXAMPLE = torch.zeros(1, 1, 28, 28)
RUN_TIMEOUT_MS = 240_000
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "e2e"


def visible_text(html: str) -> str:
    """The text a browser shows for a read-out's HTML (tags dropped, spaces collapsed)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html)).strip()


def without_timing(text: str) -> str:
    return text.split(widgets.TIMING_SEPARATOR.strip())[0].strip().rstrip("·").strip()


def open_and_run(page: object, lab_url: str, notebook: str) -> None:
    """Open a notebook, accept the kernel dialog if JupyterLab asks, and run all cells."""
    page.goto(f"{lab_url}/lab/tree/{notebook}")
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    dialog = page.locator(".jp-Dialog .jp-mod-accept")
    if dialog.count():
        dialog.first.click()
    page.wait_for_function("() => !document.querySelector('.jp-Dialog')", timeout=30_000)
    page.locator(".jp-Notebook").click()
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


def check_pruning_slider(page: object, notebook: str, expected: Callable[[float], str],
                         step: float = 0.05) -> None:
    box = readout(page, "of filters removed")
    box.wait_for(timeout=RUN_TIMEOUT_MS)
    before = box.inner_text()
    ratio = float(re.search(r"(\d+)% of filters removed", before).group(1)) / 100
    move_slider_right(page)
    after = wait_for_change(box, before)
    new_ratio = round(ratio + step, 2)
    assert without_timing(visible_text(after)) == without_timing(expected(new_ratio))
    page.screenshot(path=str(SCREENSHOTS / f"{notebook.removesuffix('.ipynb')}.png"), full_page=False)


def pruning_expectation(model_loader: Callable[[], object], loader: object, ratio_scores: str):
    """The read-out the library computes for the lesson's explorer at a given ratio."""
    model = model_loader()
    scores = criteria.score_model(model, criteria.PASSIVE_CRITERIA[ratio_scores])
    groups = surgery.coupled_groups(model, EXAMPLE)

    def expected(ratio: float) -> str:
        measure = lambda r: widgets.prune_and_measure(  # noqa: E731
            model, scores, r, example_input=EXAMPLE, loader=loader, groups=groups)
        return visible_text(widgets.readout_text(measure(ratio), measure(0.0)))

    return expected


def test_lesson_00_slider_and_live_curve(page, lab_url):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    open_and_run(page, lab_url, "00_tour.ipynb")
    curve_cell = page.locator(".jp-Cell", has_text="plots.LiveCurve()").first
    curve_cell.wait_for(timeout=RUN_TIMEOUT_MS)
    frames: set[str] = set()
    deadline = time.monotonic() + RUN_TIMEOUT_MS / 1000
    while time.monotonic() < deadline and not readout(page, "of filters removed").count():
        images = curve_cell.locator(".jp-OutputArea-output img")
        if images.count():
            frames.add(images.first.get_attribute("src") or "")
        time.sleep(0.1)
    assert len(frames) >= 2, "the live training figure never changed while fine-tuning ran"
    loaders = data.fashion_mnist_loaders(fast=True, seed=0)
    expected = pruning_expectation(lambda: models.load_pretrained("vgg16_slim"), loaders.eval, "l1")
    check_pruning_slider(page, "00_tour.ipynb", expected)


def test_lesson_01_slider(page, lab_url):
    open_and_run(page, lab_url, "01_norms_and_operator_norm.ipynb")
    loader = data.subset_loader(data.load_fashion_mnist(), "test", 50, seed=0)
    expected = pruning_expectation(lambda: models.load_pretrained("vgg16_slim"), loader, "l1")
    check_pruning_slider(page, "01_norms_and_operator_norm.ipynb", expected)


def test_lesson_02_landmark_slider(page, lab_url):
    open_and_run(page, lab_url, "02_similarity_and_nystrom.ipynb")
    box = readout(page, "landmarks")
    box.wait_for(timeout=RUN_TIMEOUT_MS)
    before = box.inner_text()
    m = int(re.search(r"m = (\d+) landmarks", before).group(1))
    move_slider_right(page)
    after = wait_for_change(box, before)
    vgg = models.load_pretrained("vgg16_slim")
    weight = vgg.features.conv1.conv.weight.detach()
    result = widgets.nystrom_compare(weight, m + 1)
    assert visible_text(after) == visible_text(widgets.nystrom_readout_text(result, tuple(weight.shape)))
    page.screenshot(path=str(SCREENSHOTS / "02_similarity_and_nystrom.png"), full_page=False)
