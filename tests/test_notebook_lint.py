"""Structure and cleanliness rules for notebooks/*.ipynb, the lesson skeleton included.

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
GOALS = "**What you'll learn**"
SHOW_SOURCE = "display.show_source("

# The skeleton of a lesson, part by part. Sections are markdown headings that start with the part's
# title ("## Check: equal budgets" counts as "## Check"); the first four may sit one level lower, as
# the tour's "### Intuition" does. Goals, code and runtime are recognised by their content.
SECTION_TITLES = {"intuition": "Intuition", "math": "The math", "check": "Check", "plot": "Plot",
                  "try it": "Try it", "exercises": "Exercises", "summary": "Summary",
                  "references": "References"}
MAY_BE_SUBSECTION = ("intuition", "math", "check", "plot")
SECTION_HEADINGS = {
    part: re.compile(("^#{2,3} " if part in MAY_BE_SUBSECTION else "^## ") + re.escape(title) + r"\b",
                     re.MULTILINE)
    for part, title in SECTION_TITLES.items()}
SKELETON = ("goals", "intuition", "math", "code", "check", "plot", "try it", "exercises", "summary",
            "references", "runtime")
WHAT_IS_MISSING = {
    "goals": f"the first cell has no {GOALS} list",
    "code": f"no code cell shows the library's source with `{SHOW_SOURCE}...)`",
    "runtime": "no markdown cell mentions the Runtime",
    **{part: f"missing markdown heading '## {title}' ({part})" for part, title in SECTION_TITLES.items()},
}

# Documented exceptions: lesson number -> {skeleton part: why the lesson has no section for it}.
SKELETON_EXCEPTIONS = {
    "00": {
        "check": "the tour checks inside the sections it tours (the pruned model's shapes, masked ≡ "
                 "pruned, the reloaded model's logits) rather than in a section of its own",
        "plot": "the tour's figures (images, filters, the live fine-tuning curve) sit in the sections "
                "they illustrate",
    },
    "06": {
        "intuition": "lesson 06 applies lessons 01 and 02 to audio: '## The three criteria, recalled' "
                     "restates their intuition and points back to them",
        "math": "the formulas are those of lessons 01 and 02, recalled in '## The three criteria, "
                "recalled' and '## Nyström on 7×7 filters'",
        "plot": "its figures (log-mels, the configuration bars, the VGGish sweep) sit in the data and "
                "experiment sections they belong to",
    },
}
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


def skeleton_parts(cells: list[nbformat.NotebookNode]) -> set[str]:
    """The parts of ``SKELETON`` that ``cells`` contain."""
    markdown = [c.source for c in cells if c.cell_type == "markdown"]
    text = "\n".join(markdown)
    found = {part for part, pattern in SECTION_HEADINGS.items() if pattern.search(text)}
    if markdown and GOALS in markdown[0]:
        found.add("goals")
    if any(SHOW_SOURCE in c.source for c in cells if c.cell_type == "code"):
        found.add("code")
    if "Runtime" in text:
        found.add("runtime")
    return found


def _skeleton_problems(cells: list[nbformat.NotebookNode], name: str) -> list[str]:
    excused = SKELETON_EXCEPTIONS.get(name[:2], {})
    present = skeleton_parts(cells)
    return [WHAT_IS_MISSING[part] for part in SKELETON if part not in present and part not in excused]


def notebook_problems(nb: nbformat.NotebookNode, name: str) -> list[str]:
    """Every lint rule ``nb`` (file name ``name``) breaks; empty when it is clean."""
    problems = [] if NAME_PATTERN.match(name) else [f"file name {name!r} is not NN_lowercase_words.ipynb"]
    if "widgets" in nb.metadata:
        problems.append("notebook metadata holds widget state")
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            problems += _code_cell_problems(i, cell)
    return problems + _parameters_problems(nb.cells) + _skeleton_problems(nb.cells, name)


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
        new_markdown_cell("# 01 · Norms\n\n**What you'll learn**\n- ℓ2\n\n"
                          "**Runtime** (CPU): FAST ≈ 30 s, full ≈ 5 min"),
        new_code_cell("from pruning_lib import repro\n\nFAST = repro.fast_mode()\nRATIO = 0.5",
                      metadata={"tags": ["parameters"]}),
        new_code_cell("from pruning_lib import data, models\n\nrepro.seed_everything(0)"),
        new_markdown_cell("## Intuition\nBig filters matter.\n\n## The math\n$s_i = \\lVert W_i\\rVert_2$"),
        new_code_cell("display.show_source(criteria.l2_norm)"),
        new_markdown_cell("## Check\nA hand case."),
        new_markdown_cell("## Plot: the scores\nOne bar per filter."),
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
    (lambda nb: nb.cells[9].metadata.update(tags=[]), "outside an `exercise` cell"),
    (lambda nb: nb.cells[1].metadata.update(tags=[]), "exactly one code cell tagged `parameters`, found 0"),
    (lambda nb: nb.cells[2].metadata.update(tags=["parameters"]), "found 2"),
    (_set_source(1, "FAST = True"), "does not read `repro.fast_mode()`"),
    (_set_source(2, "from pruning_lib import data"), "does not call `repro.seed_everything`"),
    (lambda nb: nb.cells.pop(2), "does not call `repro.seed_everything`"),
    (_set_source(7, "### Try it"), "'## Try it'"),
    (_set_source(8, "Exercises: ## Exercises"), "'## Exercises'"),
    (_set_source(10, "## Conclusion\n\n## References"), "'## Summary'"),
    (_set_source(10, "## Summary\n- one"), "'## References' (references)"),
    (_set_source(0, "# 01 · Norms\n\n**What you'll learn**\n- ℓ2"), "Runtime"),
    (_set_source(0, "# 01 · Norms\n\n**Runtime**: 1 min"), "What you'll learn"),
    (_set_source(3, "## The math\n$s$"), "(intuition)"),
    (_set_source(3, "## Intuition\nBig filters matter."), "(math)"),
    (_set_source(4, "criteria.l2_norm"), "display.show_source"),
    (_set_source(5, "## Checks\nplural is another word"), "(check)"),
    (_set_source(6, "#### Plot: too deep"), "(plot)"),
])
def test_rules_reject_each_broken_rule(change, expected):
    problems = _broken(change)
    assert len(problems) == 1 and expected in problems[0], problems


def test_rules_allow_the_words_def_and_class_inside_lines():
    nb = good_notebook()
    nb.cells[2].source += "\nundefined = 'a class of filters'  # default"
    assert notebook_problems(nb, "01_norms.ipynb") == []


@pytest.mark.parametrize(("lesson", "part", "heading_cell"), [("00", "check", 5), ("00", "plot", 6),
                                                              ("06", "intuition", 3), ("06", "plot", 6)])
def test_an_exception_excuses_its_part_in_its_lesson_only(lesson, part, heading_cell):
    nb = good_notebook()
    text = nb.cells[heading_cell].source
    nb.cells[heading_cell].source = re.sub(rf"#+ {re.escape(SECTION_TITLES[part])}\b", "Some text", text)
    assert notebook_problems(nb, f"{lesson}_lesson.ipynb") == []
    assert notebook_problems(nb, "01_lesson.ipynb") == [WHAT_IS_MISSING[part]]


def test_exceptions_are_documented_parts_of_the_skeleton():
    for lesson, parts in SKELETON_EXCEPTIONS.items():
        assert lesson in {p.name[:2] for p in NOTEBOOKS}, lesson
        for part, why in parts.items():
            assert part in SKELETON and len(why.split()) >= 8, (lesson, part, why)


def test_every_lesson_but_the_documented_exceptions_has_the_whole_skeleton():
    for path in NOTEBOOKS:
        present = skeleton_parts(nbformat.read(path, as_version=4).cells)
        excused = set(SKELETON_EXCEPTIONS.get(path.name[:2], {}))
        assert set(SKELETON) - present <= excused, path.name
