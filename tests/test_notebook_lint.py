"""Structure and cleanliness rules for notebooks/*.ipynb (house style §4, §10, §13).

``notebook_problems`` lists every broken rule of one notebook; the rules themselves are tested on
small notebooks built in memory, so this lint cannot pass by checking nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from pruning_lib import repro

NOTEBOOK_DIR = repro.REPO_ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
NAME_PATTERN = re.compile(r"^\d\d_[a-z0-9_]+\.ipynb$")
REQUIRED_HEADINGS = ("## Try it", "## Exercises", "## Summary")
DEF_OR_CLASS = re.compile(r"^[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]", re.MULTILINE)
STAR_IMPORT = re.compile(r"^[ \t]*from[ \t]+\S+[ \t]+import[ \t]+\*", re.MULTILINE)


def _tags(cell: nbformat.NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _code_cell_problems(i: int, cell: nbformat.NotebookNode) -> list[str]:
    problems = []
    if cell.get("outputs"):
        problems.append(f"code cell {i} has committed outputs")
    if cell.get("execution_count") is not None:
        problems.append(f"code cell {i} has an execution count")
    if STAR_IMPORT.search(cell.source):
        problems.append(f"code cell {i} uses `import *`")
    if "sys.path" in cell.source:
        problems.append(f"code cell {i} touches sys.path")
    if DEF_OR_CLASS.search(cell.source) and "exercise" not in _tags(cell):
        problems.append(f"code cell {i} defines a function or class outside an `exercise` cell")
    return problems


def _parameters_problems(cells: list[nbformat.NotebookNode]) -> list[str]:
    code = [c for c in cells if c.cell_type == "code"]
    tagged = [i for i, c in enumerate(code) if "parameters" in _tags(c)]
    if len(tagged) != 1:
        return [f"expected exactly one code cell tagged `parameters`, found {len(tagged)}"]
    problems = []
    if "repro.fast_mode()" not in code[tagged[0]].source:
        problems.append("the `parameters` cell does not read `repro.fast_mode()`")
    following = code[tagged[0] + 1] if tagged[0] + 1 < len(code) else None
    if following is None or "repro.seed_everything(" not in following.source:
        problems.append("the first code cell after `parameters` does not call `repro.seed_everything`")
    return problems


def _markdown_problems(cells: list[nbformat.NotebookNode]) -> list[str]:
    lines = [line for c in cells if c.cell_type == "markdown" for line in c.source.splitlines()]
    problems = [f"missing markdown heading {h!r}" for h in REQUIRED_HEADINGS
                if not any(line.startswith(h) for line in lines)]
    if not any("Runtime" in c.source for c in cells if c.cell_type == "markdown"):
        problems.append("no markdown cell mentions the Runtime")
    return problems


def notebook_problems(nb: nbformat.NotebookNode, name: str) -> list[str]:
    """Every lint rule ``nb`` (file name ``name``) breaks; empty when it is clean."""
    problems = [] if NAME_PATTERN.match(name) else [f"file name {name!r} is not NN_lowercase_words.ipynb"]
    if "widgets" in nb.metadata:
        problems.append("notebook metadata holds widget state")
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            problems += _code_cell_problems(i, cell)
    return problems + _parameters_problems(nb.cells) + _markdown_problems(nb.cells)


# The repository's notebooks ---------------------------------------------------------------------

def test_there_are_notebooks_to_lint():
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_clean_and_follows_the_skeleton(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert notebook_problems(nb, path.name) == []


def test_notebook_numbers_are_unique():
    numbers = [p.name[:2] for p in NOTEBOOKS]
    assert sorted(n for n in set(numbers) if numbers.count(n) > 1) == []


# The rules, on notebooks built in memory --------------------------------------------------------

def good_notebook() -> nbformat.NotebookNode:
    return new_notebook(cells=[
        new_markdown_cell("# 01 · Norms\n\n**Runtime** (CPU): FAST ≈ 30 s, full ≈ 5 min"),
        new_code_cell("from pruning_lib import repro\n\nFAST = repro.fast_mode()\nRATIO = 0.5",
                      metadata={"tags": ["parameters"]}),
        new_code_cell("from pruning_lib import data, models\n\nrepro.seed_everything(0)"),
        new_markdown_cell("## Try it\n✏️ Move the slider."),
        new_markdown_cell("## Exercises\n1. Write `l2`."),
        new_code_cell("def my_l2(conv):\n    return conv.weight.norm()", metadata={"tags": ["exercise"]}),
        new_markdown_cell("## Summary\n- one\n\n## References"),
    ])


def test_rules_accept_a_good_notebook():
    assert notebook_problems(good_notebook(), "01_norms.ipynb") == []


@pytest.mark.parametrize("name", ["1_norms.ipynb", "01-norms.ipynb", "01_Norms.ipynb", "01 norms.ipynb"])
def test_rules_reject_bad_file_names(name):
    assert notebook_problems(good_notebook(), name) == [
        f"file name {name!r} is not NN_lowercase_words.ipynb"]


def _broken(change) -> list[str]:
    nb = good_notebook()
    change(nb)
    return notebook_problems(nb, "01_norms.ipynb")


def _set_source(index: int, source: str):
    return lambda nb: nb.cells[index].update(source=source)


@pytest.mark.parametrize(("change", "expected"), [
    (lambda nb: nb.cells[2].outputs.append(nbformat.v4.new_output("stream", text="x")), "committed outputs"),
    (lambda nb: nb.cells[2].update(execution_count=3), "execution count"),
    (lambda nb: nb.metadata.update(widgets={"state": {}}), "widget state"),
    (_set_source(2, "from pruning_lib.models import *\nrepro.seed_everything(0)"), "import *"),
    (_set_source(2, "import sys\nsys.path.append('..')\nrepro.seed_everything(0)"), "sys.path"),
    (_set_source(2, "repro.seed_everything(0)\ndef helper():\n    pass"), "defines a function"),
    (_set_source(2, "repro.seed_everything(0)\nclass Net:\n    pass"), "defines a function or class"),
    (_set_source(2, "repro.seed_everything(0)\nif True:\n    def f(): pass"), "defines a function"),
    (lambda nb: nb.cells[5].metadata.update(tags=[]), "outside an `exercise` cell"),
    (lambda nb: nb.cells[1].metadata.update(tags=[]), "exactly one code cell tagged `parameters`, found 0"),
    (lambda nb: nb.cells[2].metadata.update(tags=["parameters"]), "found 2"),
    (_set_source(1, "FAST = True"), "does not read `repro.fast_mode()`"),
    (_set_source(2, "from pruning_lib import data"), "does not call `repro.seed_everything`"),
    (lambda nb: nb.cells.pop(2), "does not call `repro.seed_everything`"),
    (_set_source(3, "### Try it"), "'## Try it'"),
    (_set_source(4, "Exercises: ## Exercises"), "'## Exercises'"),
    (_set_source(6, "## Conclusion"), "'## Summary'"),
    (_set_source(0, "# 01 · Norms"), "Runtime"),
])
def test_rules_reject_each_broken_rule(change, expected):
    problems = _broken(change)
    assert len(problems) == 1 and expected in problems[0], problems


def test_rules_allow_the_words_def_and_class_inside_lines():
    nb = good_notebook()
    nb.cells[2].source += "\nundefined = 'a class of filters'  # default"
    assert notebook_problems(nb, "01_norms.ipynb") == []
