"""The instructors' solutions (issue #14): every exercise of every lesson has a solution in solutions/.

For each lesson ``notebooks/NN_name.ipynb`` with an "## Exercises" section there must be
``solutions/NN_name_solutions.ipynb`` with one "## Exercise k: Title" heading per exercise (same number, same
bold title as the lesson's "k. **Title.**"), and every checker the lesson calls (``checks.check_…(``) must be
called in the solution as ``assert checks.check_…(``, so that CI, which executes the solutions in FAST mode
(``make test``), fails when a checker rejects a model solution. A new exercise without a solution, a renamed
one, or a solution left over for a removed exercise fails here. The parser is tested on notebooks built in
memory, so this test cannot pass by finding nothing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSON_DIR = ROOT / "notebooks"
SOLUTION_DIR = ROOT / "solutions"
LESSONS = sorted(LESSON_DIR.glob("[0-9][0-9]_*.ipynb"))

EXERCISE_ITEM = re.compile(r"^ {0,3}(\d+)\.\s+\*\*(.+?)\*\*", re.M)       # "3. **Find the coupling.**"
SOLUTION_HEADING = re.compile(r"^## Exercise (\d+): (.+?)\s*$", re.M)     # "## Exercise 3: Find the coupling"
CHECKER_CALL = re.compile(r"\bchecks\.(check_\w+)\s*\(")
ASSERTED_CHECKER = re.compile(r"\bassert\s+checks\.(check_\w+)\s*\(")


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _cells(nb: dict | Path) -> list[dict]:
    if isinstance(nb, Path):
        nb = json.loads(nb.read_text(encoding="utf-8"))
    return nb["cells"]


def _title(text: str) -> str:
    return text.strip().rstrip(".:").strip()


def exercise_text(nb: dict | Path) -> str:
    """The markdown of the "## Exercises" section: from that heading to the next level-2 heading."""
    lines, inside = [], False
    for cell in _cells(nb):
        if cell["cell_type"] != "markdown":
            continue
        for line in _source(cell).splitlines():
            if line.startswith("## "):
                inside = line.strip() == "## Exercises"
                continue
            if inside:
                lines.append(line)
    return "\n".join(lines)


def lesson_exercises(nb: dict | Path) -> dict[int, str]:
    """{number: title} of the lesson's numbered, bold-titled exercises."""
    found: dict[int, str] = {}
    for number, title in EXERCISE_ITEM.findall(exercise_text(nb)):
        assert int(number) not in found, f"exercise {number} is numbered twice"
        found[int(number)] = _title(title)
    return found


def solution_exercises(nb: dict | Path) -> dict[int, str]:
    """{number: title} of the solution's "## Exercise k: Title" headings."""
    text = "\n".join(_source(c) for c in _cells(nb) if c["cell_type"] == "markdown")
    return {int(n): _title(t) for n, t in SOLUTION_HEADING.findall(text)}


def checkers_called(nb: dict | Path, *, asserted: bool = False) -> set[str]:
    pattern = ASSERTED_CHECKER if asserted else CHECKER_CALL
    return {name for c in _cells(nb) if c["cell_type"] == "code" for name in pattern.findall(_source(c))}


def solution_path(lesson: Path) -> Path:
    return SOLUTION_DIR / f"{lesson.stem}_solutions.ipynb"


def problems(lesson: dict | Path, solution: dict | Path | None, lesson_name: str = "lesson") -> list[str]:
    """What is missing or wrong in ``solution`` for ``lesson``; empty when it solves every exercise."""
    wanted = lesson_exercises(lesson)
    if not wanted:
        return []
    if solution is None:
        return [f"{lesson_name}: no solution notebook for exercises {sorted(wanted)}"]
    given = solution_exercises(solution)
    out = [f"{lesson_name}: exercise {n} ({t!r}) has no '## Exercise {n}: {t}' heading"
           for n, t in wanted.items() if given.get(n) != t]
    out += [f"{lesson_name}: the solution has exercise {n} ({t!r}), which the lesson does not"
            for n, t in given.items() if wanted.get(n) != t]
    missing = checkers_called(lesson) - checkers_called(solution, asserted=True)
    out += [f"{lesson_name}: checker {name} is not called as 'assert checks.{name}(' in the solution"
            for name in sorted(missing)]
    return out


# The repository's lessons and solutions -----------------------------------------------------------------

def test_lessons_have_exercises_to_solve():
    assert LESSONS, f"no lessons in {LESSON_DIR}"
    with_exercises = [p.name for p in LESSONS if lesson_exercises(p)]
    assert len(with_exercises) >= 8, f"the exercise parser found exercises only in {with_exercises}"


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_every_exercise_has_a_solution(lesson):
    path = solution_path(lesson)
    assert not problems(lesson, path if path.exists() else None, lesson.name)


@pytest.mark.parametrize("lesson", [p for p in LESSONS if solution_path(p).exists()],
                         ids=[p.stem for p in LESSONS if solution_path(p).exists()])
def test_solution_notebook_is_marked_fast_and_clean(lesson):
    cells = _cells(solution_path(lesson))
    first = _source(cells[0])
    assert cells[0]["cell_type"] == "markdown" and "instructors" in first.lower() and lesson.name in first
    parameters = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(parameters) == 1 and "repro.fast_mode()" in _source(parameters[0])
    for cell in cells:
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, "commit without outputs"


def test_no_solution_without_a_lesson():
    stems = {p.stem for p in LESSONS}
    orphans = [p.name for p in SOLUTION_DIR.glob("*.ipynb") if p.stem.removesuffix("_solutions") not in stems]
    assert not orphans


# The rules, on notebooks built in memory ------------------------------------------------------------------

def _nb(*cells: tuple[str, str]) -> dict:
    return {"cells": [{"cell_type": kind, "metadata": {}, "source": text} for kind, text in cells]}


LESSON = _nb(("markdown", "## Exercises\n\n1. **Count by hand.** How many?"),
             ("code", "answer = 0\nchecks.check_conv_params(answer, pruned, 'x');"),
             ("markdown", "2. **Think.** Why?\n\n## Summary\n\n1. **Not an exercise.** A summary list."))
SOLVED = _nb(("markdown", "# Solutions"), ("markdown", "## Exercise 1: Count by hand"),
             ("code", "assert checks.check_conv_params(576, pruned, 'x')"),
             ("markdown", "## Exercise 2: Think\n\nModel answer."))


def test_parser_reads_numbered_bold_titles_of_the_exercise_section_only():
    assert lesson_exercises(LESSON) == {1: "Count by hand", 2: "Think"}
    assert solution_exercises(SOLVED) == {1: "Count by hand", 2: "Think"}
    assert problems(LESSON, SOLVED) == []


def test_a_new_exercise_without_a_solution_fails():
    grown = _nb(*[(c["cell_type"], c["source"]) for c in LESSON["cells"]],
                ("markdown", "## Exercises\n\n3. **A new one.** Do it."))
    assert any("exercise 3" in p for p in problems(grown, SOLVED))
    assert any("no solution notebook" in p for p in problems(LESSON, None))


def test_a_checker_must_be_asserted():
    unasserted = _nb(*[(c["cell_type"], c["source"].replace("assert ", "")) for c in SOLVED["cells"]])
    assert any("check_conv_params" in p for p in problems(LESSON, unasserted))


def test_a_renamed_or_extra_exercise_fails():
    renamed = _nb(*[(c["cell_type"], c["source"].replace("Think", "Ponder")) for c in SOLVED["cells"]])
    found = problems(LESSON, renamed)
    assert any("exercise 2 ('Think')" in p for p in found) and any("'Ponder'" in p for p in found)
