"""Build the course site in build/book/: every lesson executed, an index, the course documents.

    python scripts/build_book.py            # default mode: what `make book` runs (long)
    python scripts/build_book.py --fast     # PRUNING_FAST=1: the same site in a few minutes

The site is static and self-contained: lessons are exported with nbconvert's JupyterLab template
less its CDN scripts (scripts/book_template/book), plots are embedded as data URIs, and the
mathematics is typeset by the MathJax 2.7 that the Jupyter package ``jupyter-server-mathjax`` ships
(Debian's ``libjs-mathjax`` is the fallback), copied into ``_static/mathjax`` and loaded with a
relative URL, so the pages work from ``file://`` and from any static web server with no network.
Interactive widgets cannot run without a kernel: each is replaced by a note pointing to ``make lab``.

The script prints each lesson as it starts and its wall time when it ends, and a wall-time table
at the end (also written to ``--times``, build/book_times.txt by default).
"""

from __future__ import annotations

import argparse
import copy
import html
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = Path(__file__).resolve().parent / "book_template"
MATHJAX_DIR = "_static/mathjax"
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"   # the configs jupyter-server-mathjax ships
DEBIAN_MATHJAX = Path("/usr/share/javascript/mathjax")
DOCS_PAGES = (("syllabus", "Syllabus", "audience, prerequisites, objectives and study time, course plans"),
              ("notation", "Notation", "the symbols the lessons use"),
              ("reproduction", "Reproduction", "how to reproduce the course's numbers"))
COURSE_TITLE = "pruning-lab: structured filter pruning of CNNs"
COURSE_FALLBACK = ("A literate, tested course on structured pruning of convolutional neural networks: "
                   "filters scored, selected and physically removed, on networks trained on real data.")
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = ('<div class="book-widget-note">Interactive widget (“Try it”): it needs a running kernel. '
               'Open this lesson with <code>make lab</code> to move it.{}</div>')
WIDGET_SNAPSHOT = " Below: what it showed when this page was built."

# MathJax 2.7 configured as the classic Jupyter Notebook did for this MathJax build (HTML-CSS output
# with the STIX-Web fonts it ships), with nbconvert's delimiters.
MATHJAX_HEAD = """<script type="text/x-mathjax-config">
MathJax.Hub.Config({{
  tex2jax: {{inlineMath: [['$', '$'], ['\\\\(', '\\\\)']], displayMath: [['$$', '$$'], ['\\\\[', '\\\\]']],
            processEscapes: true, processEnvironments: true}},
  TeX: {{equationNumbers: {{autoNumber: "AMS", useLabelIds: true}}}},
  displayAlign: "center",
  messageStyle: "none",
  menuSettings: {{zoom: "None"}},
  "HTML-CSS": {{availableFonts: [], imageFont: null, preferredFont: null, webFont: "STIX-Web",
               linebreaks: {{automatic: true}}}}
}});
</script>
<script src="{mathjax}/MathJax.js?config={config}"></script>"""

CSS = """<style type="text/css">
.book-nav { display: flex; justify-content: space-between; align-items: center; gap: 1em;
  font-family: system-ui, -apple-system, "Segoe UI", sans-serif; font-size: 15px;
  padding: 0.6em 1em; margin: 0 0 1em 0; background: #f3f5f8; border: 1px solid #d8dde6;
  border-radius: 6px; }
.book-nav a { color: #1a5fb4; text-decoration: none; }
.book-nav a:hover { text-decoration: underline; }
.book-nav .book-prev, .book-nav .book-next { flex: 1; }
.book-nav .book-next { text-align: right; }
.book-nav .book-index { font-weight: 600; }
.book-widget-note { padding: 0.5em 0.8em; border-left: 4px solid #e5a50a; background: #fdf6e3;
  font-family: system-ui, sans-serif; font-size: 14px; }
</style>"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{title}</title>
{css}
<style type="text/css">
body {{ max-width: 60em; margin: 1.5em auto; padding: 0 1.5em; line-height: 1.5;
  font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; }}
table {{ border-collapse: collapse; }}
th, td {{ text-align: left; vertical-align: top; padding: 0.35em 0.8em; border-bottom: 1px solid #e1e4e8; }}
td.book-time {{ white-space: nowrap; text-align: right; font-variant-numeric: tabular-nums; }}
code, pre {{ background: #f6f8fa; border-radius: 4px; }}
pre {{ padding: 0.6em; overflow-x: auto; }}
</style>
{head}
</head>
<body>
{nav}
<main>
{body}
</main>
{nav}
</body>
</html>
"""


@dataclass
class Lesson:
    """One notebook of the course: where it is, what the index says about it, how long it ran."""

    path: Path
    title: str
    summary: str
    seconds: float | None = None
    built: bool = True          # False until its page is written (a build that stops leaves it False)

    @property
    def page(self) -> str:
        return self.path.stem + ".html"


Executor = Callable[[nbformat.NotebookNode, bool, Path], None]


# ---------------------------------------------------------------------------------------------
# reading the lessons

def lesson_info(nb: nbformat.NotebookNode, fallback: str) -> tuple[str, str]:
    """Title (the first ``# `` heading) and one line (the italic tagline under it) of a lesson.

    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
    ...     "# 01 · Norms\\n\\n*Which filters can a layer lose?*\\n\\n**What you'll learn**")])
    >>> lesson_info(nb, "x")
    ('01 · Norms', 'Which filters can a layer lose?')
    """
    text = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
    title, summary = fallback, ""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    for paragraph in paragraphs:
        if paragraph.startswith("# ") and title == fallback:
            title = paragraph.splitlines()[0][2:].strip()
        elif not paragraph.startswith("#") and not summary:
            summary = " ".join(line.strip() for line in paragraph.splitlines())
    return title, summary.strip("*_ ")


def course_description(readme: Path) -> str:
    """The README's first paragraph (what the course is), as plain text."""
    if readme.exists():
        for paragraph in re.split(r"\n\s*\n", readme.read_text(encoding="utf-8")):
            paragraph = paragraph.strip()
            if paragraph and not paragraph.startswith(("#", "```", "|", "!")):
                return re.sub(r"[*`]", "", " ".join(paragraph.split()))
    return COURSE_FALLBACK


# ---------------------------------------------------------------------------------------------
# executing

def execute_notebook(nb: nbformat.NotebookNode, fast: bool, cwd: Path) -> None:
    """Run every cell in a fresh kernel started in ``cwd``, in FAST mode or in default mode."""
    from nbclient import NotebookClient

    saved = os.environ.get("PRUNING_FAST")
    if fast:
        os.environ["PRUNING_FAST"] = "1"
    else:
        os.environ.pop("PRUNING_FAST", None)
    try:
        # store_widget_state stays True: with False, nbclient 0.11 fails on Output widgets (KeyError);
        # prepare_for_html drops the stored state anyway.
        NotebookClient(nb, timeout=1800, kernel_name="python3",
                       resources={"metadata": {"path": str(cwd)}}).execute()
    finally:
        if saved is None:
            os.environ.pop("PRUNING_FAST", None)
        else:
            os.environ["PRUNING_FAST"] = saved


def format_seconds(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``.

    >>> format_seconds(42.4), format_seconds(185)
    ('42 s', '3 min 05 s')
    """
    seconds = round(seconds)
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60:02d} s"


# ---------------------------------------------------------------------------------------------
# making the outputs fit for a static, machine-independent page

def path_replacements(repo: Path) -> list[tuple[str, str]]:
    """Absolute paths of this machine, longest first, and what a reader sees instead."""
    home = str(Path.home())
    pairs = [(str(repo) + "/", ""), (str(repo), "."), (str(repo.parent) + "/", "../")]
    if home not in ("/", ""):
        pairs.append((home + "/", "~/"))
        pairs.append((home, "~"))
    return pairs


def scrub(text: str, repo: Path) -> str:
    """Replace this machine's absolute paths by relative ones.

    >>> scrub("read /w/main/data/a.npz and /w/shared/x", Path("/w/main"))
    'read data/a.npz and ../shared/x'
    """
    for old, new in path_replacements(repo):
        text = text.replace(old, new)
    return text


def widget_snapshot(model_id: str, state: dict, seen: set[str] | None = None) -> list[dict]:
    """What a widget showed when the lesson ran, as static outputs: the outputs captured by its Output
    widgets and the values of its HTML widgets, in order (a slider itself cannot be shown).

    >>> state = {"a": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_b", "IPY_MODEL_c"]}},
    ...          "b": {"model_name": "HTMLModel", "state": {"value": "<b>acc 91%</b>"}},
    ...          "c": {"model_name": "OutputModel", "state": {"outputs": [{"output_type": "stream",
    ...                                                                    "name": "stdout", "text": "hi"}]}}}
    >>> [o["output_type"] for o in widget_snapshot("a", state)]
    ['display_data', 'stream']
    """
    seen = set() if seen is None else seen
    model = state.get(model_id)
    if model is None or model_id in seen:
        return []
    seen.add(model_id)
    name, values = model.get("model_name", ""), model.get("state", {})
    if name == "OutputModel":
        return [copy.deepcopy(output) for output in values.get("outputs", [])]
    if name in ("HTMLModel", "HTMLMathModel") and values.get("value"):
        return [{"output_type": "display_data", "metadata": {},
                 "data": {"text/html": values["value"], "text/plain": ""}}]
    children = values.get("children", [])
    return [output for child in children if isinstance(child, str)
            for output in widget_snapshot(child.removeprefix("IPY_MODEL_"), state, seen)]


def scrub_output(output: dict, repo: Path) -> None:
    if "text" in output:
        output["text"] = scrub(output["text"], repo)
    if "traceback" in output:
        output["traceback"] = [scrub(line, repo) for line in output["traceback"]]
    data = output.get("data", {})
    for mime, value in data.items():
        if isinstance(value, str) and (not mime.startswith("image/") or mime == "image/svg+xml"):
            data[mime] = scrub(value, repo)


def prepare_for_html(nb: nbformat.NotebookNode, repo: Path) -> nbformat.NotebookNode:
    """A copy with each widget replaced by a note and what it showed when the lesson ran, and absolute
    paths removed from text."""
    nb = copy.deepcopy(nb)
    widgets = nb.metadata.pop("widgets", {})
    state = widgets.get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    for cell in nb.cells:
        cell.source = scrub(cell.source, repo)
        outputs = []
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_MIME)
            if view is None:
                outputs.append(output)
                continue
            snapshot = [nbformat.from_dict(o) for o in widget_snapshot(view.get("model_id", ""), state)]
            note = WIDGET_NOTE.format(WIDGET_SNAPSHOT if snapshot else "")
            outputs.append(nbformat.v4.new_output("display_data", data={
                "text/html": note, "text/plain": "[interactive widget: use make lab]"}))
            outputs += snapshot
        for output in outputs:
            scrub_output(output, repo)
        if "outputs" in cell:
            cell.outputs = outputs
    return nb


# ---------------------------------------------------------------------------------------------
# pages

def nav_html(prev: tuple[str, str] | None, nxt: tuple[str, str] | None) -> str:
    """The bar at the top and bottom of every page: previous · index · next."""
    left = (f'<a class="book-prev" rel="prev" href="{prev[0]}">← {html.escape(prev[1])}</a>' if prev
            else '<span class="book-prev"></span>')
    right = (f'<a class="book-next" rel="next" href="{nxt[0]}">{html.escape(nxt[1])} →</a>' if nxt
             else '<span class="book-next"></span>')
    return (f'<nav class="book-nav">{left}<a class="book-index" href="index.html">Index</a>'
            f'{right}</nav>')


def mathjax_head() -> str:
    return MATHJAX_HEAD.format(mathjax=MATHJAX_DIR, config=MATHJAX_CONFIG)


def export_lesson(nb: nbformat.NotebookNode, title: str, nav: str) -> str:
    from nbconvert import HTMLExporter

    nb.metadata["title"] = title
    exporter = HTMLExporter(template_name="book", extra_template_basedirs=[str(TEMPLATES)])
    resources = {"book": {"mathjax_head": mathjax_head(), "css": CSS, "nav": nav}}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    return body


def site_links(body: str, pages: dict[str, str]) -> str:
    """Point links to course documents and lessons at their pages in the site."""
    def fix(match: re.Match[str]) -> str:
        target = match.group(2)
        name = Path(target.split("#")[0]).name
        anchor = target[len(target.split("#")[0]):]
        return f'{match.group(1)}"{pages[name]}{anchor}"' if name in pages else match.group(0)
    return re.sub(r'(href=)"([^"]+)"', fix, body)


def render_markdown_page(source: Path, title: str, nav: str, pages: dict[str, str], out: Path) -> str:
    """A course document (docs/*.md) as a page of the site, with its math and local images."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    body = site_links(markdown2html_mistune(source.read_text(encoding="utf-8")), pages)

    def copy_image(match: re.Match[str]) -> str:
        src = match.group(1)
        image = (source.parent / src).resolve()
        if re.match(r"^[a-z]+:", src) or not image.is_file():
            return match.group(0)
        (out / "_static" / "docs").mkdir(parents=True, exist_ok=True)
        shutil.copy2(image, out / "_static" / "docs" / image.name)
        return f'src="_static/docs/{image.name}"'
    body = re.sub(r'src="([^"]+)"', copy_image, body)
    return PAGE.format(title=html.escape(title), css=CSS, head=mathjax_head(), nav=nav, body=body)


def index_page(lessons: list[Lesson], docs: list[tuple[str, str, str]], description: str, mode: str,
               built: str) -> str:
    rows = "\n".join(
        (f'<tr><td><a href="{lesson.page}">{html.escape(lesson.title)}</a></td>' if lesson.built else
         f"<tr><td>{html.escape(lesson.title)} (not built yet)</td>")
        + f"<td>{html.escape(lesson.summary)}</td>"
        f'<td class="book-time">{format_seconds(lesson.seconds) if lesson.seconds is not None else "not run"}'
        f"</td></tr>" for lesson in lessons)
    docs_list = "".join(f'<li><a href="{page}">{html.escape(label)}</a>: {html.escape(what)}</li>'
                        for page, label, what in docs)
    if any(lesson.seconds is not None for lesson in lessons):
        how = (f"Every lesson below was executed for this site, in {mode}; the runtime column is its "
               f"wall time measured in this build ({built}).")
        done = sum(lesson.built for lesson in lessons)
        if done < len(lessons):
            how += f" {done} of {len(lessons)} lessons are built so far."
    else:
        how = "The lessons below are shown as committed, without outputs (built with --no-execute)."
    body = f"""<h1>{html.escape(COURSE_TITLE)}</h1>
<p>{html.escape(description)}</p>
<p>{how} To run a lesson yourself and move its “Try it” widgets, open it with <code>make lab</code>.</p>
{"<h2>Course documents</h2><ul>" + docs_list + "</ul>" if docs else ""}
<h2>Lessons</h2>
<table>
<thead><tr><th>lesson</th><th>what it is about</th><th>runtime</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>"""
    first = (lessons[0].page, lessons[0].title) if lessons else None
    return PAGE.format(title=html.escape(COURSE_TITLE), css=CSS, head="", nav=nav_html(None, first),
                       body=body)


def copy_mathjax(out: Path) -> Path:
    """Copy a MathJax 2.7 that a package installed into ``out/_static/mathjax``."""
    source = find_mathjax()
    target = out / MATHJAX_DIR
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.md", "__pycache__"))
    return source


def find_mathjax() -> Path:
    try:
        import jupyter_server_mathjax
        candidates = [Path(jupyter_server_mathjax.__file__).parent / "static"]
    except ImportError:
        candidates = []
    candidates.append(DEBIAN_MATHJAX)
    for candidate in candidates:
        if (candidate / "MathJax.js").is_file() and (candidate / "config" / "Safe.js").is_file():
            return candidate
    raise SystemExit("build_book: no local MathJax: `pip install -e '.[notebooks]'` (jupyter-server-mathjax) "
                     "or `apt-get install libjs-mathjax`")


def absolute_paths_in(out: Path, repo: Path) -> list[str]:
    """Pages that still name an absolute path of this machine (should be none)."""
    needles = [old.rstrip("/") for old, _ in path_replacements(repo) if old.rstrip("/")]
    return [page.name for page in sorted(out.glob("*.html"))
            if any(needle in page.read_text(encoding="utf-8") for needle in needles)]


# ---------------------------------------------------------------------------------------------
# the build

def times_table(lessons: list[Lesson], mode: str) -> str:
    lines = [f"# make book: {mode}, {os.cpu_count()} CPU threads, "
             f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
             f"{'notebook':<45} {'wall time':>12}"]
    lines += [f"{lesson.path.name:<45} {format_seconds(lesson.seconds or 0):>12}" for lesson in lessons]
    lines.append(f"{'total':<45} {format_seconds(sum(lesson.seconds or 0 for lesson in lessons)):>12}")
    return "\n".join(lines) + "\n"


def documents(docs_dir: Path) -> list[tuple[str, str, str, Path]]:
    """(page, label, one line, source) of each course document that exists."""
    return [(f"{name}.html", label, what, docs_dir / f"{name}.md") for name, label, what in DOCS_PAGES
            if (docs_dir / f"{name}.md").is_file()]


def write_index_and_docs(out: Path, lessons: list[Lesson], docs: list[tuple[str, str, str, Path]],
                         pages: dict[str, str], mode: str, built: str, repo: Path) -> None:
    for page, label, _, source in docs:
        text = render_markdown_page(source, label, nav_html(None, None), pages, out)
        (out / page).write_text(scrub(text, repo), encoding="utf-8")
    index = index_page(lessons, [(page, label, what) for page, label, what, _ in docs],
                       course_description(repo / "README.md"), mode, built)
    (out / "index.html").write_text(scrub(index, repo), encoding="utf-8")
    leaked = absolute_paths_in(out, repo)
    if leaked:
        raise SystemExit(f"build_book: absolute paths of this machine left in {', '.join(leaked)}")


def read_times(times: Path) -> tuple[dict[str, float], bool, str]:
    """Seconds per notebook, FAST or not, and the date, from a times table this script wrote.

    >>> import tempfile; f = Path(tempfile.mkdtemp()) / "t.txt"
    >>> _ = f.write_text("# make book: FAST mode, 2 CPU threads, 2026-12-04 17:50 UTC\\n"
    ...                  "notebook  wall time\\na.ipynb  3 min 05 s\\nb.ipynb  42 s\\ntotal  3 min 47 s\\n")
    >>> read_times(f)
    ({'a.ipynb': 185.0, 'b.ipynb': 42.0}, True, '2026-12-04')
    """
    lines = times.read_text(encoding="utf-8").splitlines()
    seconds = {}
    for line in lines[2:]:
        match = re.fullmatch(r"(\S+)\s+(?:(\d+) min )?(\d+) s", line.strip())
        if match and match.group(1) != "total":
            seconds[match.group(1)] = 60.0 * int(match.group(2) or 0) + int(match.group(3))
    date = re.search(r"\d{4}-\d\d-\d\d", lines[0])
    return seconds, "FAST" in lines[0], date.group(0) if date else "date unknown"


def rebuild_pages(out: Path, notebooks: list[Path], docs_dir: Path, times: Path, repo: Path = REPO) -> None:
    """Rewrite the index and the course documents (after editing docs/*.md) and keep the lesson pages
    and their measured runtimes from the last build (lessons without a page: "not built yet")."""
    if not times.is_file() or not any((out / (nb.stem + ".html")).is_file() for nb in notebooks):
        raise SystemExit(f"build_book: run `make book` first (no lesson pages in {out} or no {times})")
    seconds, fast, date = read_times(times)
    lessons = [Lesson(path, *lesson_info(nbformat.read(path, as_version=4), path.stem),
                      seconds.get(path.name), built=(out / (path.stem + ".html")).is_file())
               for path in notebooks]
    docs = documents(docs_dir)
    pages = {source.name: page for page, _, _, source in docs}
    pages.update({lesson.path.name: lesson.page for lesson in lessons})
    mode = "FAST mode (PRUNING_FAST=1: fewer images and epochs)" if fast else "default mode"
    write_index_and_docs(out, lessons, docs, pages, mode, f"{date}, {os.cpu_count()} CPU threads", repo)
    print(f"book: index and {len(docs)} documents rewritten in {out}", flush=True)


def build(out: Path, notebooks: list[Path], docs_dir: Path, *, fast: bool, times: Path | None = None,
          execute: Executor | None = execute_notebook, repo: Path = REPO) -> list[Lesson]:
    """Execute and export ``notebooks`` and write the whole site to ``out``; return the lessons."""
    short = "FAST mode (PRUNING_FAST=1)" if fast else "default mode"
    mode = "FAST mode (PRUNING_FAST=1: fewer images and epochs)" if fast else "default mode"
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.html"):
        stale.unlink()
    copy_mathjax(out)
    docs = documents(docs_dir)
    notebooks_read = [nbformat.read(path, as_version=4) for path in notebooks]
    lessons = [Lesson(path, *lesson_info(nb, path.stem), built=False)
               for path, nb in zip(notebooks, notebooks_read, strict=True)]
    pages = {source.name: page for page, _, _, source in docs}
    pages.update({lesson.path.name: lesson.page for lesson in lessons})
    built = f"{datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} CPU threads"

    def write_times() -> str:
        table = times_table([lesson for lesson in lessons if lesson.seconds is not None], short)
        if times is not None:
            times.parent.mkdir(parents=True, exist_ok=True)
            times.write_text(table, encoding="utf-8")
        return table

    # The index and the times are rewritten after every lesson: a long build that stops (an error,
    # Ctrl-C) leaves a site with the lessons done so far and their times.
    write_index_and_docs(out, lessons, docs, pages, mode, built, repo)
    for i, (lesson, nb) in enumerate(zip(lessons, notebooks_read, strict=True)):
        tag = f"[{i + 1}/{len(lessons)}] {lesson.path.name}"
        if execute is not None:
            print(f"{tag}: executing, {short} ...", flush=True)
            start = time.perf_counter()
            try:
                execute(nb, fast, lesson.path.parent)
            except BaseException:
                print(f"{tag}: FAILED after {format_seconds(time.perf_counter() - start)}; "
                      f"the site has the lessons before it.\n{write_times()}", end="", file=sys.stderr)
                raise
            lesson.seconds = time.perf_counter() - start
            print(f"{tag}: done in {format_seconds(lesson.seconds)}", flush=True)
        prev = (lessons[i - 1].page, lessons[i - 1].title) if i > 0 else None
        nxt = (lessons[i + 1].page, lessons[i + 1].title) if i + 1 < len(lessons) else None
        page = export_lesson(prepare_for_html(nb, repo), lesson.title, nav_html(prev, nxt))
        (out / lesson.page).write_text(site_links(page, pages), encoding="utf-8")
        lesson.built = True
        write_index_and_docs(out, lessons, docs, pages, mode, built, repo)
        if execute is not None:
            write_times()

    if execute is not None:
        print(f"\nWall time per lesson ({short}):\n{write_times()}", end="", flush=True)
    print(f"book: {len(lessons)} lessons, {len(docs)} documents -> {out}/index.html", flush=True)
    return lessons


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="execute with PRUNING_FAST=1")
    parser.add_argument("--no-execute", action="store_true", help="export the notebooks as committed")
    parser.add_argument("--pages-only", action="store_true",
                        help="rewrite only the index and docs pages (lessons and times: the last build's)")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "book")
    parser.add_argument("--times", type=Path, default=REPO / "build" / "book_times.txt")
    parser.add_argument("--only", nargs="*", default=None,
                        help="lesson name prefixes to include (default: every notebook)")
    args = parser.parse_args(argv)
    notebooks = sorted((REPO / "notebooks").glob("*.ipynb"))
    if args.only:
        notebooks = [nb for nb in notebooks if nb.name.startswith(tuple(args.only))]
    if not notebooks:
        print("build_book: no notebooks in notebooks/", file=sys.stderr)
        return 1
    if args.pages_only:
        rebuild_pages(args.out, notebooks, REPO / "docs", args.times)
    else:
        build(args.out, notebooks, REPO / "docs", fast=args.fast, times=args.times,
              execute=None if args.no_execute else execute_notebook)
    return 0


if __name__ == "__main__":
    sys.exit(main())
