"""The course site (`make book`) as a reader sees it offline: headless Chromium, every request to a
host outside the site blocked and counted as a failure.

Open build/book/index.html from disk, follow the link to lesson 01, check that its mathematics is
typeset (MathJax output elements, no visible ``$$``), that its plots are embedded and that its nav
bar leads back to the index; then the same lesson through a static web server on loopback.
Screenshots: build/e2e/book_index.png and build/e2e/book_01_norms_and_operator_norm.png.

The site checked is build/book (or PRUNING_BOOK_DIR). When it does not exist, the test builds a
two-lesson site (00 and 01, FAST mode, a few minutes on two cores) in build/e2e/book-site rather
than the full book: what is checked here (local MathJax, links, nav, no network) does not depend on
how many lessons the site has, and `make test` already executes every lesson in FAST mode.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "build" / "e2e"
LESSON = "01_norms_and_operator_norm"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}
TYPESET = "mjx-container, .MathJax, .MathJax_Display, .katex"
# True once MathJax 2 has finished its start-up typesetting: "End" signalled and its queue empty.
# (A StartupHook that queues a callback would deadlock MathJax's queue: poll instead.)
MATHJAX_DONE = """() => window.MathJax !== undefined && MathJax.Hub !== undefined
    && MathJax.Hub.Startup.signal.posted.some(message => String(message) === "End")
    && MathJax.Hub.queue.pending === 0 && !MathJax.Hub.queue.running"""


@pytest.fixture(scope="module")
def site() -> Path:
    book = Path(os.environ.get("PRUNING_BOOK_DIR", REPO / "build" / "book"))
    if (book / "index.html").is_file() and (book / f"{LESSON}.html").is_file():
        return book
    small = SCREENSHOTS / "book-site"
    subprocess.run([sys.executable, str(REPO / "scripts" / "build_book.py"), "--fast", "--only", "00", "01",
                    "--out", str(small), "--times", str(SCREENSHOTS / "book-site_times.txt")],
                   check=True, cwd=REPO, timeout=1200)
    return small


@pytest.fixture
def offline_page(browser: object) -> Iterator[tuple[object, list[str]]]:
    """A page whose requests outside file:// and loopback are aborted and recorded."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    blocked: list[str] = []

    def route(route: object) -> None:
        url = route.request.url
        parsed = urlparse(url)
        if parsed.scheme in ("file", "data", "blob", "about") or parsed.hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            blocked.append(url)
            route.abort()
    context.route("**/*", route)
    try:
        yield context.new_page(), blocked
    finally:
        context.close()


def check_lesson(page: object) -> None:
    """Math typeset by MathJax, no raw $$ left, plots embedded, nav bar back to the index."""
    page.wait_for_function(MATHJAX_DONE, timeout=60_000, polling=250)
    typeset = page.locator(TYPESET).count()
    assert typeset > 0, "no typeset math (MathJax/KaTeX output elements) on the lesson page"
    assert page.locator(".MathJax_Error, merror, .mjx-merror").count() == 0, "MathJax reported an error"
    text = "\n".join(page.locator(".jp-RenderedMarkdown").all_inner_texts())
    assert "$$" not in text, "raw $$ visible on the page: MathJax did not typeset it"
    raw = re.search(r"\$[^$\n]*\\[A-Za-z]+[^$\n]*\$", text)    # e.g. $\lVert W_i\rVert$ left as text
    assert raw is None, f"raw TeX visible on the page: {raw.group(0) if raw else ''}"
    assert page.locator("text=Math Processing Error").count() == 0
    assert page.locator('img[src^="data:image/png"]').count() > 0, "no embedded plot"
    nav = page.locator("nav.book-nav").first
    assert nav.locator("a.book-index").get_attribute("href") == "index.html"
    assert nav.locator("a.book-prev").get_attribute("href") == "00_tour.html"


def test_index_to_lesson_01_from_disk_typesets_math_offline(offline_page, site):
    page, blocked = offline_page
    page.goto((site / "index.html").as_uri())
    links = page.locator("tbody a")
    assert links.count() >= 2 and links.first.get_attribute("href") == "00_tour.html"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "book_index.png"), full_page=True)

    page.locator(f'tbody a[href="{LESSON}.html"]').click()
    page.wait_for_url(f"**/{LESSON}.html")
    check_lesson(page)
    page.locator(".MathJax").nth(2).scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / f"book_{LESSON}.png"), full_page=False)

    page.locator("nav.book-nav a.book-index").first.click()
    page.wait_for_url("**/index.html")
    assert not blocked, f"requests outside the site: {blocked[:5]}"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def test_lesson_01_through_a_static_web_server(offline_page, site):
    page, blocked = offline_page
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/{LESSON}.html")
        check_lesson(page)
    finally:
        server.shutdown()
        server.server_close()
    assert not blocked, f"requests outside the site: {blocked[:5]}"
