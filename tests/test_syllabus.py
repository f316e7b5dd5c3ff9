"""docs/syllabus.md covers every lesson in notebooks/ and the README links it."""

from __future__ import annotations

import re

from pruning_lib import repro

SYLLABUS = repro.REPO_ROOT / "docs" / "syllabus.md"
ROW = re.compile(r"^\| (\d\d) · [^|]+\| [^|]+\| ([^|]+) \|", re.MULTILINE)


def lesson_rows() -> dict[str, str]:
    """{lesson number: study-time cell} from the syllabus's lesson table."""
    return dict(ROW.findall(SYLLABUS.read_text(encoding="utf-8")))


def test_every_lesson_has_objectives_and_a_study_time():
    rows = lesson_rows()
    lessons = sorted(p.name[:2] for p in (repro.REPO_ROOT / "notebooks").glob("*.ipynb"))
    assert lessons and set(lessons) <= set(rows), sorted(set(lessons) - set(rows))
    for number in lessons:
        assert re.fullmatch(r"\d+(\.\d)? h", rows[number].strip()), (number, rows[number])


def test_lessons_not_written_yet_are_marked_planned():
    text = SYLLABUS.read_text(encoding="utf-8")
    written = {p.name[:2] for p in (repro.REPO_ROOT / "notebooks").glob("*.ipynb")}
    for number in set(lesson_rows()) - written:
        row = next(line for line in text.splitlines() if line.startswith(f"| {number} ·"))
        assert "planned" in row, row


def test_the_plans_and_ways_to_run_are_there():
    text = SYLLABUS.read_text(encoding="utf-8")
    for heading in ("## Audience", "## Prerequisites", "## A one-day plan", "## A one-week plan",
                    "### On a laptop", "### On a hosted notebook runtime", "### Offline"):
        assert f"\n{heading}" in text, heading
    for topic in ("Singular value decomposition", "Eigenvectors", "Ridge regression", "Partial least squares",
                  "Shapley values"):
        assert f"**{topic}" in text, topic


def test_the_readme_links_the_syllabus():
    assert "(docs/syllabus.md)" in (repro.REPO_ROOT / "README.md").read_text(encoding="utf-8")
