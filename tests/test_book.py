"""scripts/build_book.py: a site built from a tiny fake lesson (no kernel, no lesson executed)."""

from __future__ import annotations

import base64
import doctest
import importlib.util
import re
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("build_book", REPO / "scripts" / "build_book.py")
build_book = importlib.util.module_from_spec(spec)
sys.modules["build_book"] = build_book          # dataclasses look their module up there
spec.loader.exec_module(build_book)

# A 1x1 PNG: the "plot" the fake executor adds.
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc00000030101005b1bb6bf0000000049454e44ae426082")).decode()


def fake_lesson(path: Path, number: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(f"# {number} · Fake lesson {number}\n\n"
                                      f"*A one-line summary {number}.*\n\n"
                                      "$$x^2$$ and inline $a_i$; see [notation](../docs/notation.md)."),
        nbformat.v4.new_code_cell("print('hello')"),
    ])
    nbformat.write(nb, path)
    return path


def fake_execute(repo: Path):
    """Stand-in for the kernel: outputs with a plot, a widget and this machine's absolute paths."""
    calls = []

    def execute(nb: nbformat.NotebookNode, fast: bool, cwd: Path) -> None:
        calls.append(fast)
        text = f"loaded {repo}/data/x.npz, {repo.parent}/shared/fsdd, {Path.home()}/.cache\n"
        nb.cells[1].outputs = [
            nbformat.v4.new_output("stream", name="stdout", text=text),
            nbformat.v4.new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"}),
            nbformat.v4.new_output("display_data", data={
                "application/vnd.jupyter.widget-view+json": {"model_id": "box", "version_major": 2},
                "text/plain": "VBox()"}),
        ]
        nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"version_major": 2, "state": {
            "box": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_slider", "IPY_MODEL_out"]}},
            "slider": {"model_name": "FloatSliderModel", "state": {"value": 0.5}},
            "out": {"model_name": "OutputModel", "state": {"outputs": [
                {"output_type": "stream", "name": "stdout", "text": f"readout at 0.5 from {repo}/x\n"}]}}}}}
    execute.calls = calls
    return execute


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list, Path, object]:
    root = tmp_path_factory.mktemp("book")
    repo = root / "repo"
    (repo / "notebooks").mkdir(parents=True)
    (repo / "docs").mkdir()
    (repo / "docs" / "notation.md").write_text("# Notation\n\nA filter $W \\in \\mathbb{R}^{C}$.\n\n"
                                               "See [the syllabus](syllabus.md).\n")
    (repo / "README.md").write_text("# fake\n\nA fake course about *pruning*.\n")
    notebooks = [fake_lesson(repo / "notebooks" / f"{n}_fake.ipynb", n) for n in ("00", "01", "02")]
    execute = fake_execute(repo)
    out = root / "out" / "book"
    lessons = build_book.build(out, notebooks, repo / "docs", fast=True, times=root / "times.txt",
                               execute=execute, repo=repo)
    return out, lessons, root, execute


def read(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def hrefs(text: str) -> list[str]:
    return re.findall(r'href="([^"]+)"', text)


def first_nav(page: str) -> str:
    return re.search(r'<nav class="book-nav">(.*?)</nav>', page).group(1)


def test_index_lists_lessons_in_order_with_times_and_existing_docs(site):
    out, lessons, _, execute = site
    assert execute.calls == [True, True, True]            # every lesson executed, FAST mode
    index = read(out / "index.html")
    links = hrefs(index)
    table = re.search(r"<tbody>(.*?)</tbody>", index, re.S).group(1)
    assert hrefs(table) == ["00_fake.html", "01_fake.html", "02_fake.html"]
    assert "notation.html" in links and "syllabus.html" not in links   # only documents that exist
    assert "A fake course about pruning." in index
    assert "A one-line summary 01." in index and "01 · Fake lesson 01" in index
    assert index.count('class="book-time"') == 3 and "not run" not in index
    assert all(lesson.seconds is not None for lesson in lessons)
    for href in links:                                     # every local link resolves inside the site
        if not href.startswith(("http:", "https:", "#")):
            assert (out / href.split("#")[0]).is_file(), href


def test_lesson_pages_load_mathjax_relatively_and_nowhere_else(site):
    out, *_ = site
    page = read(out / "01_fake.html")
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', page)
    assert scripts == ["_static/mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"]
    assert (out / "_static" / "mathjax" / "MathJax.js").is_file()
    assert (out / "_static" / "mathjax" / "config" / "TeX-AMS-MML_HTMLorMML-full.js").is_file()
    assert "$$x^2$$" in page                               # left for MathJax to typeset
    assert not re.search(r'<link[^>]+href="https?:', page)  # no stylesheet from elsewhere
    assert "cdnjs" not in page and "unpkg" not in page and "jsdelivr" not in page


def test_plots_embedded_and_widgets_replaced_by_a_note(site):
    out, *_ = site
    page = read(out / "01_fake.html")
    assert f"data:image/png;base64,{PNG}" in page
    assert "make lab" in page and "widget-view" not in page and "widget-state" not in page
    assert "what it showed when this page was built" in page
    assert "readout at 0.5 from x" in page                  # the Output widget's snapshot, path scrubbed


def test_nav_bar_prev_index_next(site):
    out, *_ = site
    first, middle, last = (read(out / f"{n}_fake.html") for n in ("00", "01", "02"))
    assert hrefs(first_nav(middle)) == ["00_fake.html", "index.html", "02_fake.html"]
    assert middle.count('<nav class="book-nav">') == 2      # top and bottom
    assert hrefs(first_nav(first)) == ["index.html", "01_fake.html"]
    assert hrefs(first_nav(last)) == ["01_fake.html", "index.html"]
    notation = read(out / "notation.html")
    assert "index.html" in hrefs(notation) and "_static/mathjax/MathJax.js" in notation


def test_links_to_docs_and_notebooks_point_into_the_site(site):
    out, *_ = site
    assert 'href="notation.html"' in read(out / "01_fake.html")
    assert 'href="syllabus.md"' in read(out / "notation.html")   # not in the site: left as written


def test_no_absolute_paths_of_the_build_machine(site):
    out, _, root, _ = site
    repo = root / "repo"
    for page in out.glob("*.html"):
        text = read(page)
        for needle in (str(repo.parent), str(Path.home()) + "/", "/work/", "/root/"):
            assert needle not in text, (page.name, needle)
    assert "loaded data/x.npz, ../shared/fsdd, ~/.cache" in read(out / "00_fake.html")


def test_times_table_names_every_lesson(site):
    _, _, root, _ = site
    table = (root / "times.txt").read_text()
    assert "FAST mode" in table
    assert [line.split()[0] for line in table.splitlines()[2:]] == [
        "00_fake.ipynb", "01_fake.ipynb", "02_fake.ipynb", "total"]


def test_without_mathjax_the_build_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(build_book, "DEBIAN_MATHJAX", tmp_path / "none")
    monkeypatch.setitem(sys.modules, "jupyter_server_mathjax", None)
    with pytest.raises(SystemExit, match="jupyter-server-mathjax"):
        build_book.find_mathjax()


def test_pages_only_rewrites_index_and_docs_and_keeps_lessons_and_times(site, tmp_path):
    out, _, root, _ = site
    repo = root / "repo"
    lesson_page = read(out / "01_fake.html")
    before = read(out / "index.html")
    (repo / "docs" / "syllabus.md").write_text("# Syllabus\n\nTwo lessons a day.\n")
    try:
        build_book.rebuild_pages(out, sorted((repo / "notebooks").glob("*.ipynb")), repo / "docs",
                                 root / "times.txt", repo=repo)
        index = read(out / "index.html")
        assert "syllabus.html" in hrefs(index) and (out / "syllabus.html").is_file()
        assert re.findall(r'class="book-time">([^<]*)<', index) == re.findall(
            r'class="book-time">([^<]*)<', before)
        assert read(out / "01_fake.html") == lesson_page
    finally:
        (repo / "docs" / "syllabus.md").unlink()
    with pytest.raises(SystemExit, match="make book"):
        build_book.rebuild_pages(tmp_path, [repo / "notebooks" / "00_fake.ipynb"], repo / "docs",
                                 root / "times.txt", repo=repo)


def test_make_book_runs_the_builder_and_the_project_installs_its_mathjax():
    makefile = (REPO / "Makefile").read_text()
    book = makefile.split("\nbook: venv\n", 1)[1].split("\n\n", 1)[0]
    assert "scripts/build_book.py $(if $(filter 1 yes true,$(FAST)),--fast,)" in book
    assert "python -m pruning_lib.data --which" in book and "|| true" in book
    extras = (REPO / "pyproject.toml").read_text().split("[project.optional-dependencies]", 1)[1]
    notebooks = extras.split("notebooks = [", 1)[1].split("]", 1)[0]
    assert '"jupyter-server-mathjax"' in notebooks and '"nbconvert' in notebooks


def test_a_build_that_stops_leaves_the_lessons_done_so_far_and_their_times(tmp_path, capsys):
    notebooks = [fake_lesson(tmp_path / f"{n}_fake.ipynb", n) for n in ("00", "01", "02")]

    def execute(nb: nbformat.NotebookNode, fast: bool, cwd: Path) -> None:
        if "01" in nb.cells[0].source.splitlines()[0]:
            raise RuntimeError("cell failed")

    out = tmp_path / "book"
    with pytest.raises(RuntimeError, match="cell failed"):
        build_book.build(out, notebooks, tmp_path / "no-docs", fast=False, times=tmp_path / "t.txt",
                         execute=execute, repo=tmp_path)
    index = read(out / "index.html")
    assert hrefs(re.search(r"<tbody>(.*?)</tbody>", index, re.S).group(1)) == ["00_fake.html"]
    assert "01 · Fake lesson 01 (not built yet)" in index and "1 of 3 lessons are built so far" in index
    assert [line.split()[0] for line in (tmp_path / "t.txt").read_text().splitlines()[2:]] == [
        "00_fake.ipynb", "total"]
    assert "01_fake.ipynb: FAILED after" in capsys.readouterr().err


def test_the_builders_doctests_pass():
    """scripts/ is not among pytest's testpaths, so the builder's doctests run here."""
    assert doctest.testmod(build_book).failed == 0
