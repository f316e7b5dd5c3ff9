"""Showing the library's real code and small tables in notebooks (no copy-pasted code).

Introduced in: notebooks/00_tour.ipynb (§The pipeline).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from pathlib import Path

from pruning_lib.repro import REPO_ROOT

NOTATION_PAGE = REPO_ROOT / "docs" / "notation.md"
LESSON_00_SECTIONS = ("Convolutions and filters", "Scores, plans and cost")


def source_text(obj: Callable | type) -> str:
    """The source code of a library function or class, as text."""
    return inspect.getsource(obj)


def show_source(obj: Callable | type):  # noqa: ANN201  (IPython is optional)
    """Render the real source of ``obj`` with syntax highlighting in a notebook.

    Returns:
        An ``IPython.display.Code`` object (displayed when it is the cell's last expression).
    """
    from IPython.display import Code

    return Code(source_text(obj), language="python")


def show_markdown(path: str | Path):  # noqa: ANN201  (IPython is optional)
    """Render a Markdown file of the repository (e.g. docs/reproduction.md) in a notebook.

    Nothing is computed: the file is shown as it was saved.

    Returns:
        An ``IPython.display.Markdown`` object with the file's text.

    Raises:
        FileNotFoundError: ``path`` does not exist (the message says how the file is made, if known).
    """
    from IPython.display import Markdown

    path = Path(path)
    if not path.is_file():
        hint = " (made by `python benchmarks/reproduction.py`)" if path.name == "reproduction.md" else ""
        raise FileNotFoundError(f"no file {path}{hint}")
    return Markdown(path.read_text(encoding="utf-8"))


def notation_sections(page: Path = NOTATION_PAGE) -> dict[str, str]:
    """The ``## `` sections of the notation page, by title, each with its heading line.

    Raises:
        FileNotFoundError: ``page`` does not exist (the repository's docs/ folder is needed).
    """
    sections: dict[str, str] = {}
    title = None
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            title = line[3:].strip()
            sections[title] = ""
        if title is not None:
            sections[title] += line + "\n"
    return sections


def glossary(sections: Sequence[str] | None = None, page: Path = NOTATION_PAGE):  # noqa: ANN201
    """The notation used across the lessons (docs/notation.md), rendered as Markdown in a notebook.

    Args:
        sections: Titles of the ``## `` sections to show, in this order; default: the whole page.
        page: The Markdown file to read.

    Returns:
        An ``IPython.display.Markdown`` object.

    Raises:
        KeyError: a title in ``sections`` is not a section of the page.
    """
    from IPython.display import Markdown

    if sections is None:
        return Markdown(page.read_text(encoding="utf-8"))
    found = notation_sections(page)
    missing = [t for t in sections if t not in found]
    if missing:
        raise KeyError(f"no section {missing} in {page.name}; sections: {list(found)}")
    return Markdown("\n".join(found[t] for t in sections))


def notation_table():  # noqa: ANN201
    """The first two sections of the glossary (filters, scores, plans and cost), as lesson 00 shows."""
    return glossary(LESSON_00_SECTIONS)
